"""Scenario: a client and a server host in Mininet (linked directly, real kernel TCP), the
project's load generator opening connections that send a small request and read a small
response, for each protocol.

Covers: connect latency (median and p90 time to the first response byte, plus the raw
connect() time and the time until protected data can be sent) and server CPU time per
connection, for TCP, TLS (1.2 with RSA key exchange like the paper's SSL, 1.3, each full and
resumed; 1.3 with a P-256 certificate as `tls13-ecdsa`) and tcpcrypt (X25519 and RSA-exp3, each
full and resumed). `tcpcrypt-*` rows use the in-process library (TCP-ENO negotiated by the
kernel program, like the TLS rows use `ssl`): whether they were encrypted and resumed comes
from the library. `tcpcryptd-*` rows run the same plain-TCP programs with tcpcryptd on both
hosts; the server CPU then includes the server's daemon, and whether connections were really
encrypted and resumed comes from the server daemon's own session records. Full (non-resumed)
tcpcrypt runs without a session cache. `server_kernel_us` is the server process's system time
per connection; `bpf_runs` / `bpf_us` are the kernel program's runs and run time per
connection, both hosts together (BPF statistics): on the `tcp` row, its cost for a plain TCP
connection in the covered cgroup. `daemon_kernel_us` is the part of the server
daemon's CPU spent in the kernel (its system time: queued packets, the loopback connection to
the server, socket calls), a floor that a faster userspace would not remove. The kernel counts
these in clock ticks, so they are reported only when the run spans 20 of them (about 500
connections); `-` otherwise.

With `--set path=CHAIN` (the middlebox chain syntax, e.g. `proxy-ack`,
`strip-options(on=syn)`) the hosts are linked through a middlebox node running that chain in
the bridge engine; rows then also give the cores the engine used (`engine_cpu`), with a
warning when the engine's core was saturated while the server's was not.

`tcpcrypt-x25519+cmac`, `+batch-sign` and `+pake` (asked for with `--set protocols=...`; not
in the default list) are the library's connection with an authentication method of
`tcpcrypt.auth` run over its session ID before the request, as in the paper's table: a fixed
test PSK, a fixed test password, and an RSA-2048 key the server generates per run, signing in
batches that close 5 ms after their first session ID (`batch_window_ms`, `batch_max`). Their
latency and server CPU include the method (the batcher's thread is in the server process);
`authenticated` is the share of connections whose method succeeded, and a failure makes the
row's `error` and withholds its metrics. With them, the run also records this host's RSA-2048
sign and X25519 times (`environment.host_costs_us`) to read their figures against.

Beside the measurements: the 2010 paper's LAN connect time for the closest row of its table
(`paper_2010_ms`), and its server-cost ratios (SSL / TCP 80x, SSL / tcpcrypt 36x, tcpcrypt /
TCP 3x) against the same ratios measured here, from `testbed/data/paper_2010.json`.

Protocols alternate in `rounds` (`testbed/connect_rounds.py`): each round gives every
protocol its share of the connections; per-connection costs are the median over the rounds,
latencies come from every connection.

The implementation's own overhead: each round also times B's X25519 key exchange alone
(`KEX_SAMPLES` times, as `protocol-costs` times `protocol.kex_cpu_us.B.x25519`), and the
`tcpcrypt-x25519` row gives `kex_cpu_us` (its median) and `overhead_per_kex`, the median over
the rounds of (its server CPU - tcp's) / that round's key exchange (metrics
`connect.kex_cpu_us.tcpcrypt-x25519`, `connect.overhead_per_kex.tcpcrypt-x25519`). In
simulation the key exchange is the profile's `x25519.keypair` + `x25519.exchange`.

`--runtime sim [--profile NAME]` runs the same protocols in the simulated world instead
(`experiments/connect_sim.py`, through the runtime seam), with the same rows and metrics.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

from tcpcrypt.suites import RsaKeyHolder
from testbed.apps.protocols import PROTOCOLS
from testbed.calibration.primitives import b_key_agreement_us
from testbed.connect_rounds import combine_rounds, overhead_per_kex, split_count
from testbed.emulation.middlebox_nodes import engine_warnings, stop_middleboxes
from testbed.emulation.offloads import read_offloads
from testbed.emulation.paths import (
    EngineMeter,
    check_path,
    describe_topology,
    engine_bound,
    path_network,
    sharing_note,
)
from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param, RunContext
from testbed.measurements import measure_connections
from testbed.paper import SERVER_COST_RATIOS, lan_connect_ms, server_cost_ratio

Rounds = list[tuple[dict[str, Any], dict[str, float]]]
"""A protocol's rounds: `measure_connections`'s (row, raw) pairs, in round order."""


def _protocols(text: str) -> list[str]:
    labels = [label.strip() for label in text.split(",") if label.strip()]
    unknown = [label for label in labels if label not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocols {unknown}; known: {', '.join(PROTOCOLS)}")
    return labels


OVERHEAD_ROW, OVERHEAD_BASE = "tcpcrypt-x25519", "tcp"
KEX_SAMPLES = 100
"""B's X25519 key exchange alone, timed this many times per round (about 10 ms)."""

# Every row but the authenticated ones, which add mostly the methods' own cost (pure-Python
# SPAKE2, a batching window per connection of a sequential client) to the default run.
DEFAULT_PROTOCOLS = ",".join(label for label, spec in PROTOCOLS.items() if spec.auth is None)

SPEC = ExperimentSpec(
    name="connect",
    description="connect latency and server CPU per connection: TCP, TLS, tcpcrypt (Mininet, "
                "or simulated)",
    runtime="emulation",
    runtimes=("emulation", "simulation"),
    params=(
        Param("connections", 200, quick=20, help="measured connections per protocol",
              low=1, high=10_000),
        Param("protocols", DEFAULT_PROTOCOLS, help="comma-separated protocol labels (also: "
              + ", ".join(label for label, spec in PROTOCOLS.items() if spec.auth) + ")",
              validate=lambda text: _protocols(str(text))),
        Param("response_bytes", 100, help="size of each response", low=0, high=16 << 20),
        Param("path", "none", help="middlebox chain between the hosts, e.g. 'proxy-ack' "
              "('none': linked directly)", validate=lambda text: check_path(str(text))),
        Param("rounds", 5, quick=1, help="rounds the protocols alternate in (connections "
              "split evenly; per-connection costs are the median over the rounds)", low=1,
              high=100),
    ),
    expectations=(
        Expectation("TLS 1.3 server CPU >= 2.5x tcpcrypt-x25519 (the library)",
                    lhs="connect.server_cpu_us.tls13", op=">=",
                    rhs="connect.server_cpu_us.tcpcrypt-x25519", factor=2.5, source="issue #8"),
        Expectation("TLS 1.2 RSA server CPU >= 2.5x tcpcrypt-rsa-exp3 (the library)",
                    lhs="connect.server_cpu_us.tls12-rsa", op=">=",
                    rhs="connect.server_cpu_us.tcpcrypt-rsa-exp3", factor=2.5,
                    source="issue #8; the paper: 36x"),
        Expectation("tcpcrypt-x25519's server CPU above TCP's at most 3x the X25519 key "
                    "exchange alone (timed in the same rounds)",
                    lhs=f"connect.overhead_per_kex.{OVERHEAD_ROW}", op="<=", rhs="",
                    offset=3.0, source="issue #8", needs_rows=(OVERHEAD_BASE,)),
        Expectation("resumed tcpcrypt within 0.3 ms of TCP",
                    lhs="connect.latency_ms.tcpcrypt-x25519-resumed", op="<=",
                    rhs="connect.latency_ms.tcp", offset=0.3, source="issue #3"),
        Expectation("the daemon's server CPU no more than TLS 1.3's",
                    lhs="connect.server_cpu_us.tcpcryptd-x25519", op="<=",
                    rhs="connect.server_cpu_us.tls13", source="issue #8"),
    ),
    bench=True,
    rows_param="protocols",
)


def run(ctx: RunContext) -> ExperimentOutput:
    labels = _protocols(str(ctx.params["protocols"]))
    count = int(ctx.params["connections"])
    rounds = int(ctx.params["rounds"])
    split_count(count, rounds)  # refused before anything starts
    path = check_path(str(ctx.params["path"]))
    if ctx.runtime == "simulation":
        from experiments.connect_sim import simulated_rows

        simulated, sim_metrics, sim_samples, not_simulated = simulated_rows(
            ctx, labels, count, path, int(ctx.params["response_bytes"]))
        ctx.add_environment("path", path)
        return ExperimentOutput(simulated + _beside_the_paper(sim_metrics), sim_metrics,
                                samples=sim_samples, rows_not_run=not_simulated)
    rows: list[dict[str, object]] = []
    metrics: dict[str, float] = {}
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="testbed-tls-") as scratch, \
            path_network(path) as net, \
            ctx.progress(len(labels) * rounds, "connect") as progress:
        from testbed.apps.tls_material import write_material

        material = write_material(Path(scratch))
        client, server = net.get("client"), net.get("server")
        meter = EngineMeter(net)
        measured_rounds, kex_us = _alternating_rounds(
            ctx, labels, split_count(count, rounds), client, server, material, meter, progress)
        for label in labels:
            spec = PROTOCOLS[label]
            outcome = measured_rounds[label]
            if isinstance(outcome, str):
                error = outcome
                ctx.warn(f"{label}: {error}; no metric reported")
                rows.append({"protocol": label, "path": path, "error": str(error)[-300:],
                             "paper_2010_ms": lan_connect_ms(label)})
                continue
            measured = combine_rounds(outcome)
            samples[f"connect.first_byte_ms.{label}"] = measured.pop("first_byte_samples_ms")
            encrypted, resumed = measured["encrypted"], measured["resumed"]
            if spec.tcpcrypt_suite and encrypted < 1.0:
                ctx.warn(f"{label}: only {encrypted:.0%} of connections were encrypted; "
                         "no metric reported")
            if spec.resumed and resumed < 1.0:
                ctx.warn(f"{label}: only {resumed:.0%} of connections resumed")
            failed_auth = spec.auth is not None and measured["authenticated"] < 1.0
            if failed_auth:
                ctx.warn(f"{label}: {measured['error'] or 'not every session authenticated'}"
                         "; no metric reported")
            if "engine_busy" in measured:
                warning = engine_bound({"mb1": measured["engine_busy"]},
                                       {"server": measured["server_cores"]})
                if warning:
                    ctx.warn(f"{label}: {warning}")
            rows.append({**measured, "path": path, "paper_2010_ms": lan_connect_ms(label)})
            if (spec.tcpcrypt_suite and encrypted < 1.0) or failed_auth:
                continue  # not what the label says: no metric
            metrics[f"connect.latency_ms.{label}"] = measured["latency_ms"]
            metrics[f"connect.server_cpu_us.{label}"] = measured["server_cpu_us"]
            if label == OVERHEAD_ROW:
                _overhead(rows[-1], metrics, outcome, measured_rounds.get(OVERHEAD_BASE), kex_us)
            if "engine_cpu" in measured:
                metrics[f"connect.engine_cpu.{label}"] = measured["engine_cpu"]
        ctx.add_environment("offloads", read_offloads(net))
        for text in engine_warnings(stop_middleboxes(net)):
            ctx.warn(text)
    if any(PROTOCOLS[label].auth for label in labels):
        from testbed.calibration.primitives import host_costs_us

        ctx.add_environment("host_costs_us", host_costs_us())
    ctx.add_environment("topology", describe_topology(path))
    ctx.add_environment("path", path)
    if path != "none":
        ctx.add_environment("engine_cpu_note", sharing_note())
    return ExperimentOutput(rows + _beside_the_paper(metrics), metrics, samples=samples)


def _alternating_rounds(ctx: RunContext, labels: list[str], counts: list[int], client: Any,
                        server: Any, material: dict[str, tuple[Path, Path]],
                        meter: EngineMeter, progress: Any
                        ) -> tuple[dict[str, Rounds | str], list[float]]:
    """Each round runs every protocol once (its share of the connections), in the same
    order; a protocol that fails in a round keeps its error and is left out of later ones.
    With `OVERHEAD_ROW` among them, each round first times B's X25519 key exchange alone:
    the rounds' medians come back beside the measurements."""
    measured: dict[str, Rounds | str] = {label: [] for label in labels}
    kex_us: list[float] = []
    rsa_keys = RsaKeyHolder()  # the call's signature wants one; X25519 does not use it
    for index, count in enumerate(counts):
        if OVERHEAD_ROW in labels:
            kex_us.append(statistics.median(
                b_key_agreement_us("x25519", KEX_SAMPLES, ctx.seed * 7919 + index, rsa_keys)))
        for label in labels:
            done = measured[label]
            if isinstance(done, str):
                progress.advance()
                continue
            cert, key = material[PROTOCOLS[label].certificate]
            try:
                done.append(measure_connections(client, server, label, count,
                                                int(ctx.params["response_bytes"]), cert, key,
                                                meter=meter))
            except RuntimeError as error:
                measured[label] = str(error)
            progress.advance()
    return measured, kex_us


def _overhead(row: dict[str, object], metrics: dict[str, float], measured: Rounds | str,
              base: Rounds | str | None, kex_us: list[float]) -> None:
    """`OVERHEAD_ROW`'s key exchange alone and its overhead over the base row per key
    exchange (see the module's docstring), on its row and as metrics."""
    if not kex_us:
        return
    row["kex_cpu_us"] = metrics[f"connect.kex_cpu_us.{OVERHEAD_ROW}"] = statistics.median(
        kex_us)
    if isinstance(measured, str) or not isinstance(base, list):
        return
    ratio = overhead_per_kex([r for r, _ in measured], [r for r, _ in base], kex_us)
    if ratio is not None:
        row["overhead_per_kex"] = metrics[f"connect.overhead_per_kex.{OVERHEAD_ROW}"] = ratio


def _beside_the_paper(metrics: dict[str, float]) -> list[dict[str, object]]:
    """The paper's server-cost ratios beside the same ratios measured here (a row each, where
    both protocols were measured); each measured ratio also becomes a metric."""
    rows: list[dict[str, object]] = []
    for name, (numerator, denominator) in SERVER_COST_RATIOS.items():
        top = metrics.get(f"connect.server_cpu_us.{numerator}")
        bottom = metrics.get(f"connect.server_cpu_us.{denominator}")
        if top is None or not bottom:
            continue
        measured = top / bottom
        metrics[f"connect.server_cpu_ratio.{numerator}/{denominator}"] = measured
        rows.append({"server CPU per connection": f"{name} ({numerator} / {denominator})",
                     "paper_2010": server_cost_ratio(name), "measured": measured})
    return rows
