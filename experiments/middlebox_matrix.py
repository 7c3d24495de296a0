"""Scenario: a client and a server in Mininet with one middlebox node between them (the
AF_PACKET bridge engine running a model chain), for each middlebox condition and each
protocol: plain TCP, TLS 1.3, tcpcrypt (X25519) through tcpcryptd on both end hosts under the
same plain-TCP programs (`tcpcryptd-x25519`), and tcpcrypt through the in-process library with
TCP-ENO in the kernel (`tcpcrypt-x25519`; there each connection reports what it got).

Covers: what each middlebox does to each protocol. Per cell the outcome is
  - `encrypted`: TLS finished its handshake, or both tcpcrypt daemons' session records say
    encrypted; and the data is intact;
  - `fallback`: tcpcrypt fell back to plain TCP (both daemons' records say fallback) and the
    data is intact;
  - `plaintext`: plain TCP (the `tcp` protocol), data intact (tcp's fallback-equivalent);
  - `broken`: the transfer failed, hung past the cell timeout, or its data was corrupted, or
    the two daemons disagree about the connection.
The transfer goes both ways on each connection: the server greets at once (the latency is the
time from connect() to that first byte, handshakes included), the client uploads N bytes, the
server answers with the SHA-256 of what it received and then N bytes of its own, whose SHA-256
the client computes; both digests are compared with those of the data that was sent. A cell
whose transfer looked complete to the application (no error, every byte) yet has a wrong
digest is a silent corruption: the one thing that must never happen.

The transfer program is `testbed.apps.exchange`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from testbed.apps import exchange
from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param, RunContext

PROTOCOLS = ("tcp", "tls13", "tcpcryptd-x25519", "tcpcrypt-x25519")
CONDITIONS = (
    "none",
    "strip-options(on=syn)",
    "strip-options(on=synack)",
    "strip-options(on=all)",
    "strip-options(on=syn,ports=80)",
    "seq-rewrite(seed=7)",
    "resegment(max_bytes=500)",
    "resegment(max_bytes=500),resegment(mode=coalesce,max_bytes=1200)",
    "proxy-ack",
    "nat",
    "link(delay_ms=1,loss=0.01,seed=3)",
)
OUTCOMES = ("encrypted", "fallback", "plaintext", "broken")
DEFAULT_PORT = 8000


def _split_conditions(text: str) -> list[str]:
    conditions = [part.strip() for part in text.split(";") if part.strip()]
    if not conditions:
        raise ValueError("no conditions")
    from middleboxes.registry import parse_chain

    for condition in conditions:
        parse_chain(condition)  # MiddleboxConfigError (a ValueError) names the problem
    return conditions


def _split_protocols(text: str) -> list[str]:
    protocols = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown or not protocols:
        raise ValueError(f"unknown protocols {unknown}; known: {', '.join(PROTOCOLS)}")
    return protocols


SPEC = ExperimentSpec(
    name="middlebox-matrix",
    description="each middlebox x TCP, TLS 1.3, tcpcrypt: encrypted, fallback or broken; "
                "latency; SHA-256 integrity (Mininet)",
    runtime="emulation",
    params=(
        Param("conditions", ";".join(CONDITIONS),
              help="middlebox chains separated by ';' ('none': no middlebox model)",
              validate=lambda text: _split_conditions(str(text))),
        Param("protocols", ",".join(PROTOCOLS), help="comma-separated: tcp, tls13, "
              "tcpcryptd-x25519 (the daemon), tcpcrypt-x25519 (the library)",
              validate=lambda text: _split_protocols(str(text))),
        Param("megabytes", 4.0, quick=2.0, help="bytes each way per connection, in MB"),
        Param("connections", 3, quick=2, help="connections per cell"),
        Param("cell_timeout_s", 60.0, quick=30.0,
              help="a cell still running after this is killed and counted broken"),
    ),
    expectations=(
        Expectation("no cell is broken", lhs="matrix.broken_cells", op="<=", rhs="",
                    offset=0, source="issue #4"),
        Expectation("no cell is silently corrupted", lhs="matrix.silent_corruption_cells",
                    op="<=", rhs="", offset=0, source="issue #4"),
        Expectation("every cell has the expected outcome (stripping: tcpcrypt falls back; "
                    "the rest: tcpcrypt encrypted)", lhs="matrix.unexpected_cells", op="<=",
                    rhs="", offset=0, source="issue #4; RFC 8547 section on middleboxes"),
    ),
    bench=True,
)


# -- the experiment -------------------------------------------------------------------------------

def _port(condition: str) -> int:
    """The port a condition needs: the first port a `ports=` parameter names, else 8000."""
    from middleboxes.registry import parse_chain
    from middleboxes.strip_options import StripOptions

    for model in parse_chain(condition).models:
        if isinstance(model, StripOptions) and model.ports:
            return model.ports[0]
    return DEFAULT_PORT


def _expected(condition: str, protocol: str) -> str:
    if protocol == "tcp":
        return "plaintext"
    if protocol == "tls13":
        return "encrypted"
    return "fallback" if "strip-options" in condition else "encrypted"


def _nat_routes(net: Any, condition: str) -> None:
    """The server answers a NAT's public address through the middlebox (route and neighbour;
    the bridge rewrites Ethernet headers anyway)."""
    from middleboxes.nat import Nat
    from middleboxes.registry import parse_chain

    client, server = net.get("client"), net.get("server")
    for model in parse_chain(condition).models:
        if isinstance(model, Nat):
            public = str(ipaddress.IPv4Address(model.public))
            interface = server.defaultIntf().name
            server.cmd(f"ip route replace {public}/32 dev {interface}")
            server.cmd(f"ip neigh replace {public} lladdr {client.MAC()} dev {interface}")


def _tcpcrypt_view(client: Any, server: Any) -> dict[str, Any]:
    from testbed.apps.tcpcryptd_host import tcpcrypt_cli

    view: dict[str, Any] = {}
    for name, host, role in (("client", client, "A"), ("server", server, "B")):
        try:
            records = [r for r in tcpcrypt_cli(host, "sessions", timeout=15)
                       if r.get("role") == role]
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
            records = []
            view[f"{name}_error"] = str(error)
        view[name] = records
    return view


def _classify(protocol: str, results: list[dict[str, Any]], problem: str | None, count: int,
              expected_up: str, expected_down: str,
              view: dict[str, Any] | None) -> dict[str, Any]:
    intact = [r.get("completed") and r.get("upload_sha256") == expected_up
              and r.get("download_sha256") == expected_down for r in results]
    integrity_ok = len(results) == count and all(intact) and problem is None
    silent = sum(1 for r, ok in zip(results, intact, strict=True)
                 if r.get("completed") and not ok)
    reason = problem or next((r["error"] for r in results if r.get("error")), None)
    if silent:
        reason = "digest mismatch on a transfer that completed"
    cell: dict[str, Any] = {"integrity_ok": integrity_ok, "silent_corruption": silent > 0}
    latencies = [r["latency_ms"] for r in results if "latency_ms" in r]
    cell["latency_ms"] = statistics.median(latencies) if latencies else None
    if not integrity_ok:
        cell.update(outcome="broken", reason=reason or "transfer incomplete")
        return cell
    if protocol == "tcp":
        cell.update(outcome="plaintext", reason=None)
        return cell
    if protocol == "tls13":
        cell.update(outcome="encrypted", reason=None)
        return cell
    if protocol == "tcpcrypt-x25519":  # the library: each connection says what it got
        encrypted = [bool(r.get("encrypted")) for r in results]
        if all(encrypted):
            cell.update(outcome="encrypted", reason=None)
        elif not any(encrypted):
            reasons = sorted({str(r.get("fallback_reason")) for r in results})
            cell.update(outcome="fallback", reason=",".join(reasons))
        else:
            cell.update(outcome="broken", reason="some connections encrypted, some not")
        return cell
    assert view is not None
    a_side, b_side = view.get("client", []), view.get("server", [])
    both = a_side + b_side
    cell["daemon_records"] = f"A:{len(a_side)} B:{len(b_side)}"
    reasons = sorted({str(r.get("reason")) for r in both if r.get("reason")})
    if not a_side or not b_side:
        cell.update(outcome="broken", reason="a daemon has no session record: "
                    + str({k: v for k, v in view.items() if k.endswith("error")}))
    elif all(r.get("encrypted") for r in both):
        cell.update(outcome="encrypted", reason=None)
    elif all(not r.get("encrypted") and r.get("state") == "fallback" for r in both):
        cell.update(outcome="fallback", reason=",".join(reasons) or None)
    else:
        states = [(r.get("role"), r.get("state"), r.get("encrypted")) for r in both]
        cell.update(outcome="broken", reason=f"daemons disagree: {states} {reasons}")
    return cell


def _cell(ctx: RunContext, net: Any, condition: str, protocol: str, cert: Path,
          key: Path, seed: int) -> dict[str, Any]:
    from testbed.apps.hosts import start_module
    from testbed.apps.tcpcryptd_host import start_tcpcryptd, stop_tcpcryptd

    client, server = net.get("client"), net.get("server")
    size = int(float(ctx.params["megabytes"]) * 1_000_000)
    count = int(ctx.params["connections"])
    timeout_s = float(ctx.params["cell_timeout_s"])
    port = _port(condition)
    tls = protocol == "tls13"
    daemons: list[subprocess.Popen[str]] = []
    server_process = None
    view = None
    try:
        if protocol.startswith("tcpcryptd"):
            for host in (client, server):
                daemons.append(start_tcpcryptd(host, ports=[port], suites=("x25519",)))
        args = ["serve", "--port", str(port), "--seed", str(seed),
                "--idle-s", str(min(20.0, timeout_s))]
        if tls:
            args += ["--tls", "--cert", str(cert), "--key", str(key)]
        library = protocol == "tcpcrypt-x25519"
        if library:
            args.append("--tcpcrypt")
        server_process = start_module(server, "testbed.apps.exchange", *args)
        results, problem = exchange.run_fetch(client, server.IP(), port, seed, size, count, tls,
                                      timeout_s, tcpcrypt=library)
        if daemons:
            time.sleep(0.2)  # the daemons close their records once both relays have ended
            view = _tcpcrypt_view(client, server)
    finally:
        if server_process is not None:
            server_process.kill()
            server_process.wait()
        for daemon in daemons:
            stop_tcpcryptd(daemon)
    expected_up = hashlib.sha256(exchange.data(seed, size)).hexdigest()
    expected_down = hashlib.sha256(exchange.data(seed + 1, size)).hexdigest()
    cell = _classify(protocol, results, problem, count, expected_up, expected_down, view)
    cell["port"] = port
    return cell


def _heat_map(rows: list[dict[str, Any]], conditions: list[str], protocols: list[str],
              path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    colours = {"encrypted": "#2e7d32", "fallback": "#f9a825", "plaintext": "#90a4ae",
               "broken": "#c62828"}
    index = {outcome: i for i, outcome in enumerate(OUTCOMES)}
    grid = [[index["broken"]] * len(protocols) for _ in conditions]
    labels = [[""] * len(protocols) for _ in conditions]
    for row in rows:
        i, j = conditions.index(row["middlebox"]), protocols.index(row["protocol"])
        grid[i][j] = index[row["outcome"]]
        mark = "SHA ok" if row["integrity_ok"] else "SHA BAD" if row["silent_corruption"] \
            else "failed"
        labels[i][j] = f"{row['outcome']}\n{mark}"
    figure, axes = plt.subplots(figsize=(3 + 2.2 * len(protocols), 1 + 0.55 * len(conditions)))
    axes.imshow(grid, cmap=ListedColormap([colours[o] for o in OUTCOMES]), vmin=0,
                vmax=len(OUTCOMES) - 1, aspect="auto")
    for i in range(len(conditions)):
        for j in range(len(protocols)):
            axes.text(j, i, labels[i][j], ha="center", va="center", fontsize=7, color="white")
    axes.set_xticks(range(len(protocols)), protocols)
    axes.set_yticks(range(len(conditions)), conditions, fontsize=7)
    axes.xaxis.tick_top()
    axes.set_title("outcome per middlebox condition and protocol", fontsize=9, pad=24)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def run(ctx: RunContext) -> ExperimentOutput:
    from middleboxes.registry import parse_chain
    from testbed.apps.tls_material import write_self_signed
    from testbed.emulation.middlebox_nodes import engine_warnings, stop_middleboxes
    from testbed.emulation.network import emulated_network
    from topologies.line import LineTopo

    conditions = _split_conditions(str(ctx.params["conditions"]))
    protocols = _split_protocols(str(ctx.params["protocols"]))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="testbed-matrix-") as scratch, \
            ctx.progress(len(conditions) * len(protocols), "middlebox matrix") as progress:
        cert, key = write_self_signed(Path(scratch))
        for number, condition in enumerate(conditions):
            chain = parse_chain(condition)
            paths = (condition,) if chain.models else ()
            model_errors = 0
            with emulated_network(LineTopo(paths=paths)) as net:
                _nat_routes(net, condition)
                for protocol in protocols:
                    seed = ctx.seed * 1000 + number * 10 + protocols.index(protocol)
                    started = time.monotonic()
                    cell = _cell(ctx, net, condition, protocol, cert, key, seed)
                    cell["cell_s"] = round(time.monotonic() - started, 2)
                    rows.append({"middlebox": condition, "protocol": protocol, **cell})
                    progress.advance()
                reports = stop_middleboxes(net)
            for report in reports:
                model_errors += report.model_errors()
            for text in engine_warnings(reports):
                ctx.warn(text)
            for row in rows[-len(protocols):]:
                row["model_errors"] = model_errors
    metrics: dict[str, float] = {
        "matrix.cells": float(len(rows)),
        "matrix.broken_cells": float(sum(r["outcome"] == "broken" for r in rows)),
        "matrix.silent_corruption_cells": float(sum(bool(r["silent_corruption"]) for r in rows)),
        "matrix.unexpected_cells": 0.0,
    }
    for row in rows:
        expected = _expected(row["middlebox"], row["protocol"])
        row["expected"] = expected
        if row["outcome"] != expected:
            metrics["matrix.unexpected_cells"] += 1
            ctx.warn(f"{row['middlebox']} x {row['protocol']}: {row['outcome']}, expected "
                     f"{expected} ({row.get('reason')})")
        if row["latency_ms"] is not None:
            metrics[f"matrix.latency_ms.{row['protocol']}.{row['middlebox']}"] = row["latency_ms"]
    for outcome in OUTCOMES:
        metrics[f"matrix.{outcome}_cells"] = float(sum(r["outcome"] == outcome for r in rows))
    figure = _heat_map(rows, conditions, protocols, ctx.out_dir / "middlebox-matrix.png")
    ctx.add_environment("topology", "line: client - mb1 (bridge engine) - server")
    return ExperimentOutput(_same_columns(rows), metrics, [figure])


def _same_columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row with every column, in one order (one table on the terminal, not one a cell);
    a column a cell does not have (daemon records outside tcpcrypt) holds None."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return [{column: row.get(column) for column in columns} for row in rows]


