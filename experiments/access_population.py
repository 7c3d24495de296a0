"""Scenario: a population of access networks in Mininet (`topologies.access_paths`): N clients,
each behind its own middlebox node whose chain is drawn from a profile (by default
"paper-2010", the middlebox survey of the tcpcrypt talk) with the run's seed, and one server.
tcpcryptd runs on the server and on every client; the server runs one program (the
`testbed.apps.exchange` protocol, one thread per connection) and every client makes a few
two-way transfers through its own path, clients in parallel, SHA-256 checked both ways.

Covers: what share of a population of access networks gets tcpcrypt, falls back to plain TCP,
or breaks. Per client the outcome is
  - `encrypted`: every transfer intact, and for every connection both daemons' records (the
    client's, role A, and the server's record of the same wire addresses, role B) say
    encrypted;
  - `fallback`: every transfer intact and both records of every connection say fallback;
  - `broken`: a transfer failed, was corrupted, or hung past `client_timeout_s` (the client is
    killed, the run goes on), or a daemon has no record of a connection, or the two daemons
    (or two connections of one client) disagree.
The prediction comes from the drawn chains alone, through the predictor middlebox-matrix
shares (`middleboxes.outcomes`): each model declares its effect on ENO, so a chain with a
model that strips ENO (kind 69) from the SYN or the SYN-ACK on the server's port should fall
back, one that blocks it should break, every other chain should encrypt. Outcomes are
deterministic per chain, so the measured shares must equal the predicted ones exactly
(`access.unexpected_clients` = 0).
"""

from __future__ import annotations

import hashlib
import statistics
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from testbed.apps import exchange
from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param, RunContext

OUTCOMES = ("encrypted", "fallback", "broken")
PORT = 8000
MAX_CLIENTS = 50  # x MAX_CONNECTIONS stays within the 256 ended records a daemon keeps
MAX_CONNECTIONS = 5


def _known_profile(value: object) -> None:
    from topologies.access_paths import PROFILES

    if str(value) not in PROFILES:
        raise ValueError(f"unknown profile {value!r}; known: {', '.join(PROFILES)}")


SPEC = ExperimentSpec(
    name="access-population",
    description="a population of access paths drawn from a middlebox profile, tcpcryptd on "
                "every host: share encrypted, fallen back, broken vs the share predicted "
                "(Mininet)",
    runtime="emulation",
    params=(
        Param("clients", 48, quick=16, help=f"access networks (clients), 1..{MAX_CLIENTS}",
              low=1, high=MAX_CLIENTS),
        Param("profile", "paper-2010", help="middlebox profile the chains are drawn from "
              "(topologies.access_paths.PROFILES)", validate=_known_profile),
        Param("megabytes", 1.0, quick=0.5, help="bytes each way per transfer, in MB",
              low=0.001, high=64),
        Param("connections", 2, quick=1, help=f"transfers per client, 1..{MAX_CONNECTIONS}",
              low=1, high=MAX_CONNECTIONS),
        Param("parallel", 12, help="clients transferring at the same time (2 cores here)",
              low=1, high=MAX_CLIENTS),
        Param("client_timeout_s", 60.0, quick=30.0,
              help="a client still transferring after this is killed and counted broken",
              low=1, high=600),
    ),
    expectations=(
        Expectation("no client is broken", lhs="access.broken_clients", op="<=", rhs="",
                    offset=0, source="RFC 8547: without ENO on both SYNs, plain TCP"),
        Expectation("every client has the outcome its chain predicts (stripping the SYN or "
                    "SYN-ACK option: fallback; the rest: encrypted)",
                    lhs="access.unexpected_clients", op="<=", rhs="", offset=0,
                    source="RFC 8547 fallback; outcomes are deterministic per chain"),
        Expectation("encrypted share at least the predicted share",
                    lhs="access.share.encrypted", op=">=",
                    rhs="access.predicted_share.encrypted", source="drawn chains"),
        Expectation("encrypted share at most the predicted share",
                    lhs="access.share.encrypted", op="<=",
                    rhs="access.predicted_share.encrypted", source="drawn chains"),
    ),
    bench=True,
)


# -- prediction -----------------------------------------------------------------------------------

def predicted_outcome(chain: str, port: int = PORT) -> str:
    """tcpcrypt's outcome across `chain` on `port`, from the models' declared effect on ENO
    (`middleboxes.outcomes`, the predictor middlebox-matrix shares)."""
    from middleboxes.outcomes import predicted_outcome as predict

    return predict(chain, "tcpcrypt-x25519", port)


# -- running the clients --------------------------------------------------------------------------

def _start_all(hosts: list[Any], start: Any) -> list[subprocess.Popen[str]]:
    """`start(host)` for every host at once (each waits for its program's first line)."""
    with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
        return list(pool.map(start, hosts))


def _fetch(client: Any, server_ip: str, seed: int, size: int, count: int,
           timeout_s: float) -> tuple[list[dict[str, Any]], str | None, float]:
    """One client's transfers: its reports, a problem text, wall time in seconds."""
    started = time.monotonic()
    results, problem = exchange.run_fetch(client, server_ip, PORT, seed, size, count, False,
                                          timeout_s)
    return results, problem, time.monotonic() - started


def _sessions(host: Any) -> tuple[list[dict[str, Any]], str | None]:
    from testbed.apps.tcpcryptd_host import tcpcrypt_cli

    try:
        return list(tcpcrypt_cli(host, "sessions", timeout=20)), None
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
        return [], f"{host.name}: {error}"


# -- judging one client ---------------------------------------------------------------------------

def classify(results: list[dict[str, Any]], problem: str | None, count: int,
             expected_up: str, expected_down: str, client_records: list[dict[str, Any]],
             server_records: list[dict[str, Any]]) -> dict[str, Any]:
    """outcome, integrity_ok, silent_corruption, latency_ms, reason of one client."""
    intact = [bool(r.get("completed")) and r.get("upload_sha256") == expected_up
              and r.get("download_sha256") == expected_down for r in results]
    integrity_ok = problem is None and len(results) == count and all(intact)
    silent = any(r.get("completed") and not ok for r, ok in zip(results, intact, strict=True))
    latencies = [float(r["latency_ms"]) for r in results if "latency_ms" in r]
    verdict: dict[str, Any] = {
        "integrity_ok": integrity_ok, "silent_corruption": silent,
        "latency_ms": round(statistics.median(latencies), 2) if latencies else None,
    }
    if not integrity_ok:
        reason = problem or next((str(r["error"]) for r in results if r.get("error")), None)
        if silent:
            reason = "digest mismatch on a transfer that completed"
        verdict.update(outcome="broken", reason=reason or f"{len(results)} of {count} transfers")
        return verdict
    mine = [r for r in client_records if r.get("role") == "A"]
    by_wire = {str(r.get("wire_remote")): r for r in server_records if r.get("role") == "B"}
    states: set[str] = set()
    reasons: set[str] = set()
    for record in mine:
        partner = by_wire.get(str(record.get("wire_local")))
        if partner is None:
            verdict.update(outcome="broken", reason="the server daemon has no record of "
                           f"connection {record.get('wire_local')}")
            return verdict
        for side in (record, partner):
            states.add("encrypted" if side.get("encrypted") else str(side.get("state")))
            if side.get("reason"):
                reasons.add(str(side["reason"]))
    if len(mine) != count:
        verdict.update(outcome="broken",
                       reason=f"the client daemon has {len(mine)} records for {count} transfers")
    elif states == {"encrypted"}:
        verdict.update(outcome="encrypted", reason=None)
    elif states == {"fallback"}:
        verdict.update(outcome="fallback", reason=",".join(sorted(reasons)) or None)
    else:
        verdict.update(outcome="broken", reason=f"daemons disagree: states {sorted(states)} "
                       f"reasons {sorted(reasons)}")
    return verdict


# -- the figure -----------------------------------------------------------------------------------

def _figure(chain_rows: list[dict[str, Any]], profile: str, metrics: dict[str, float],
            path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"encrypted": "#2e7d32", "fallback": "#f9a825", "broken": "#c62828"}
    labels = [row["chain"].replace(",", ",\n") for row in chain_rows]
    figure, axes = plt.subplots(figsize=(2.0 + 1.9 * len(chain_rows), 4.8))
    bottoms = [0] * len(chain_rows)
    for outcome in OUTCOMES:
        heights = [int(row[outcome]) for row in chain_rows]
        axes.bar(range(len(chain_rows)), heights, bottom=bottoms, color=colours[outcome],
                 label=outcome)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    top = max(bottoms + [1])
    for index, row in enumerate(chain_rows):
        weight = row.get("profile_weight")
        note = f"predicted {row['predicted']}"
        if weight is not None:
            note = f"{profile} weight {100 * float(weight):.0f}%\n" + note
        axes.text(index, bottoms[index] + 0.02 * top, note, ha="center", va="bottom",
                  fontsize=7)
    axes.set_xticks(range(len(chain_rows)), labels, fontsize=7)
    axes.set_ylabel("clients")
    axes.set_ylim(0, top * 1.3)
    axes.legend(fontsize=8, loc="upper right")
    axes.set_title(
        f"{int(metrics['access.clients'])} access paths drawn from {profile}: "
        f"encrypted {100 * metrics['access.share.encrypted']:.0f}% "
        f"(predicted {100 * metrics['access.predicted_share.encrypted']:.0f}%), "
        f"fallback {100 * metrics['access.share.fallback']:.0f}%, "
        f"broken {100 * metrics['access.share.broken']:.0f}%\n(the {profile} weights "
        f"predict {100 * metrics['access.profile_share.encrypted']:.0f}% encrypted for a "
        f"large population)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


# -- the experiment -------------------------------------------------------------------------------

def run(ctx: RunContext) -> ExperimentOutput:
    from middleboxes.registry import parse_chain
    from testbed.apps.hosts import start_module
    from testbed.apps.tcpcryptd_host import start_tcpcryptd, stop_tcpcryptd
    from testbed.emulation.middlebox_nodes import engine_warnings, stop_middleboxes
    from testbed.emulation.network import emulated_network
    from topologies.access_paths import PROFILES, AccessPathsTopo, draw_paths

    clients = int(ctx.params["clients"])
    profile = str(ctx.params["profile"])
    size = int(float(ctx.params["megabytes"]) * 1_000_000)
    count = int(ctx.params["connections"])
    parallel = int(ctx.params["parallel"])
    timeout_s = float(ctx.params["client_timeout_s"])
    paths = draw_paths(profile, clients, ctx.seed)
    server_seed = ctx.seed * 1000
    seeds = {f"c{k}": server_seed + 1 + k for k in range(1, clients + 1)}

    fetched: dict[str, tuple[list[dict[str, Any]], str | None, float]] = {}
    records: dict[str, tuple[list[dict[str, Any]], str | None]] = {}
    timings: dict[str, float] = {}
    clock = time.monotonic()
    with ctx.progress(clients, f"access population ({profile})") as progress, \
            emulated_network(AccessPathsTopo(clients=clients, profile=profile,
                                             seed=ctx.seed)) as net:
        timings["network_s"] = time.monotonic() - clock
        server = net.get("server")
        hosts = [net.get(name) for name in seeds]
        daemons: list[subprocess.Popen[str]] = []
        server_process = None
        try:
            clock = time.monotonic()
            daemons = _start_all([server, *hosts],
                                 lambda host: start_tcpcryptd(host, ports=[PORT]))
            server_process = start_module(server, "testbed.apps.exchange", "serve", "--port",
                                          str(PORT), "--seed", str(server_seed), "--idle-s",
                                          str(min(20.0, timeout_s)))
            timings["daemons_s"] = time.monotonic() - clock
            clock = time.monotonic()

            def one(host: Any) -> None:
                fetched[host.name] = _fetch(host, server.IP(), seeds[host.name], size, count,
                                            timeout_s)
                progress.advance()

            with ThreadPoolExecutor(max_workers=parallel) as pool:
                list(pool.map(one, hosts))
            timings["transfers_s"] = time.monotonic() - clock
            time.sleep(0.3)  # the daemons close their records once both relays have ended
            with ThreadPoolExecutor(max_workers=8) as pool:
                for host, answer in zip([server, *hosts], pool.map(_sessions, [server, *hosts]),
                                        strict=True):
                    records[host.name] = answer
        finally:
            if server_process is not None:
                server_process.kill()
                server_process.wait()
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(stop_tcpcryptd, daemons))
        reports = stop_middleboxes(net)
        ctx.add_environment("offloads", dict(net.offload_settings))
    for text in engine_warnings(reports):
        ctx.warn(text)
    for _, problem in records.values():
        if problem:
            ctx.warn(f"tcpcrypt sessions failed: {problem}")
    ran = {report.node: report.path for report in reports}
    for index, path in enumerate(paths, start=1):
        canonical = parse_chain(path).describe()
        if ran.get(f"mb{index}", canonical) != canonical:
            ctx.warn(f"mb{index} ran {ran[f'mb{index}']!r}, drawn {canonical!r}")

    expected_down = hashlib.sha256(exchange.data(server_seed + 1, size)).hexdigest()
    server_records = records.get("server", ([], None))[0]
    rows: list[dict[str, Any]] = []
    silent = 0
    for index, path in enumerate(paths, start=1):
        name = f"c{index}"
        results, problem, wall_s = fetched.get(name, ([], "never ran", 0.0))
        expected_up = hashlib.sha256(exchange.data(seeds[name], size)).hexdigest()
        verdict = classify(results, problem, count, expected_up, expected_down,
                           records.get(name, ([], None))[0], server_records)
        rows.append({"client": name, "path": path, "predicted": predicted_outcome(path),
                     "outcome": verdict["outcome"], "integrity_ok": verdict["integrity_ok"],
                     "latency_ms": verdict["latency_ms"], "client_s": round(wall_s, 2),
                     "reason": verdict["reason"]})
        silent += bool(verdict["silent_corruption"])

    counts = Counter(row["outcome"] for row in rows)
    predicted = Counter(row["predicted"] for row in rows)
    unexpected = [row for row in rows if row["outcome"] != row["predicted"]]
    for row in unexpected:
        ctx.warn(f"{row['client']} ({row['path']}): {row['outcome']}, predicted "
                 f"{row['predicted']} ({row['reason']})")
    weights = dict(PROFILES[profile])
    metrics: dict[str, float] = {
        "access.clients": float(clients),
        "access.broken_clients": float(counts["broken"]),
        "access.unexpected_clients": float(len(unexpected)),
        "access.silent_corruption_clients": float(silent),
        "access.profile_share.encrypted": sum(
            w for chain, w in weights.items() if predicted_outcome(chain) == "encrypted"
        ) / sum(weights.values()),
    }
    for outcome in OUTCOMES:
        metrics[f"access.share.{outcome}"] = counts[outcome] / clients
    for outcome in ("encrypted", "fallback"):
        metrics[f"access.predicted_share.{outcome}"] = predicted[outcome] / clients
    latencies = [row["latency_ms"] for row in rows if row["latency_ms"] is not None]
    if latencies:
        metrics["access.latency_ms.median"] = statistics.median(latencies)
    for name, seconds in timings.items():
        metrics[f"access.time.{name}"] = round(seconds, 2)

    chain_rows: list[dict[str, Any]] = []
    for chain in dict.fromkeys([*weights, *paths]):
        mine = [row for row in rows if row["path"] == chain]
        times = [row["latency_ms"] for row in mine if row["latency_ms"] is not None]
        chain_rows.append({
            "chain": chain, "profile_weight": weights.get(chain),
            "predicted": predicted_outcome(chain), "clients": len(mine),
            **{outcome: sum(row["outcome"] == outcome for row in mine) for outcome in OUTCOMES},
            "median_latency_ms": round(statistics.median(times), 2) if times else None,
        })
    figure = _figure(chain_rows, profile, metrics, ctx.out_dir / "access-population.png")
    ctx.add_environment("topology", f"access-paths: {clients} x (cK - mbK) - server, "
                        f"profile {profile}, seed {ctx.seed}")
    return ExperimentOutput([*rows, *chain_rows], metrics, [figure])
