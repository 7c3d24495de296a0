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
it in clock ticks, so it is reported only when the run spans 20 of them (about 500
connections); `-` otherwise.

Beside the measurements: the 2010 paper's LAN connect time for the closest row of its table
(`paper_2010_ms`), and its server-cost ratios (SSL / TCP 80x, SSL / tcpcrypt 36x, tcpcrypt /
TCP 3x) against the same ratios measured here, from `testbed/data/paper_2010.json`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tcpcrypt.kernel.stats import enable_stats
from testbed.apps.hosts import cpu_ns, run_module_json, start_module, user_and_system_s
from testbed.apps.protocols import PROTOCOLS
from testbed.apps.tcpcryptd_host import start_tcpcryptd, stop_tcpcryptd, tcpcrypt_cli
from testbed.emulation.kernel_program import kernel_program_runs
from testbed.emulation.network import emulated_network
from testbed.emulation.offloads import read_offloads
from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param, RunContext
from testbed.paper import SERVER_COST_RATIOS, lan_connect_ms, server_cost_ratio
from topologies.line import LineTopo


def _protocols(text: str) -> list[str]:
    labels = [label.strip() for label in text.split(",") if label.strip()]
    unknown = [label for label in labels if label not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocols {unknown}; known: {', '.join(PROTOCOLS)}")
    return labels


SPEC = ExperimentSpec(
    name="connect",
    description="connect latency and server CPU per connection: TCP, TLS, tcpcrypt (Mininet)",
    runtime="emulation",
    params=(
        Param("connections", 200, quick=20, help="measured connections per protocol"),
        Param("protocols", ",".join(PROTOCOLS), help="comma-separated protocol labels",
              validate=lambda text: _protocols(str(text))),
        Param("response_bytes", 100, help="size of each response"),
    ),
    expectations=(
        Expectation("TLS 1.3 server CPU >= 2.5x tcpcrypt-x25519 (the library)",
                    lhs="connect.server_cpu_us.tls13", op=">=",
                    rhs="connect.server_cpu_us.tcpcrypt-x25519", factor=2.5, source="issue #8"),
        Expectation("TLS 1.2 RSA server CPU >= 2.5x tcpcrypt-rsa-exp3 (the library)",
                    lhs="connect.server_cpu_us.tls12-rsa", op=">=",
                    rhs="connect.server_cpu_us.tcpcrypt-rsa-exp3", factor=2.5,
                    source="issue #8; the paper: 36x"),
        Expectation("resumed tcpcrypt within 0.3 ms of TCP",
                    lhs="connect.latency_ms.tcpcrypt-x25519-resumed", op="<=",
                    rhs="connect.latency_ms.tcp", offset=0.3, source="issue #3"),
        Expectation("the daemon's server CPU no more than TLS 1.3's",
                    lhs="connect.server_cpu_us.tcpcryptd-x25519", op="<=",
                    rhs="connect.server_cpu_us.tls13", source="issue #8"),
    ),
    bench=True,
)
PORT = 8000
KERNEL_TIME_MIN_TICKS = 20


def _start_daemons(
    client: Any, server: Any, suite: str | None, resumed: bool
) -> list[subprocess.Popen[str]]:
    """tcpcryptd on both hosts for a tcpcrypt protocol ([] for the others)."""
    if suite is None:
        return []
    started = []
    try:
        for host in (client, server):
            started.append(start_tcpcryptd(
                host, ports=[PORT], suites=(suite,), cache_size=1024 if resumed else 0
            ))
    except BaseException:
        for daemon in started:
            stop_tcpcryptd(daemon)
        raise
    return started


def _kernel_us(system_s: float, connections: int) -> float | None:
    """System time per connection in us, or None when it spans too few clock ticks to mean
    anything (the kernel counts it in ticks: 20 of them give 5% resolution)."""
    if system_s * os.sysconf("SC_CLK_TCK") < KERNEL_TIME_MIN_TICKS:
        return None
    return system_s / connections * 1e6


def _bpf_cost(before: tuple[int, int] | None, after: tuple[int, int] | None,
              connections: int) -> dict[str, float | None]:
    """The TCP-ENO kernel program's runs and run time per connection, both hosts together
    (BPF run-time statistics), or None where they were not available."""
    if before is None or after is None:
        return {"bpf_runs": None, "bpf_us": None}
    return {"bpf_runs": (after[0] - before[0]) / connections,
            "bpf_us": (after[1] - before[1]) / connections / 1000}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(ctx: RunContext) -> ExperimentOutput:
    labels = _protocols(str(ctx.params["protocols"]))
    count = int(ctx.params["connections"])
    rows: list[dict[str, object]] = []
    metrics: dict[str, float] = {}
    runnable = labels
    with tempfile.TemporaryDirectory(prefix="testbed-tls-") as scratch, \
            emulated_network(LineTopo()) as net, enable_stats(), \
            ctx.progress(len(runnable), "connect") as progress:
        from testbed.apps.tls_material import write_material

        material = write_material(Path(scratch))
        client, server = net.get("client"), net.get("server")
        for label in runnable:
            spec = PROTOCOLS[label]
            cert, key = material[spec.certificate]
            args = ["--port", str(PORT), "--response-bytes", str(ctx.params["response_bytes"])]
            if spec.tls:
                args += ["--tls", spec.tls, "--cert", str(cert), "--key", str(key)]
            if spec.library_suite:
                args += ["--tcpcrypt", spec.library_suite] + (
                    ["--resumption"] if spec.resumed else [])
            daemons = _start_daemons(client, server, spec.daemon_suite, spec.resumed)
            process = start_module(server, "testbed.apps.rr_server", *args)
            try:
                server_pids = [process.pid] + [daemons[1].pid] if daemons else [process.pid]
                before = sum(cpu_ns(pid) for pid in server_pids)
                daemon_before = cpu_ns(daemons[1].pid) if daemons else 0
                split_before = user_and_system_s(daemons[1].pid) if daemons else (0.0, 0.0)
                server_split_before = user_and_system_s(process.pid)
                bpf_before = kernel_program_runs()
                report = run_module_json(
                    client, "testbed.apps.loadgen", "--host", server.IP(), "--port", str(PORT),
                    "--protocol", label, "--connections", str(count),
                )
                used = sum(cpu_ns(pid) for pid in server_pids) - before
                daemon_used = cpu_ns(daemons[1].pid) - daemon_before if daemons else 0
                split_after = user_and_system_s(daemons[1].pid) if daemons else (0.0, 0.0)
                server_split_after = user_and_system_s(process.pid)
                bpf_after = kernel_program_runs()
                sessions = tcpcrypt_cli(server, "sessions") if daemons else []
            finally:
                process.kill()
                process.wait()
                for daemon in daemons:
                    stop_tcpcryptd(daemon)
            samples = report["samples"]
            first_byte = [s["first_byte_ms"] for s in samples]
            resumed = sum(s["resumed"] for s in samples) / len(samples)
            encrypted = 1.0 if spec.tls else 0.0
            if spec.library_suite:
                encrypted = sum(s["encrypted"] for s in samples) / len(samples)
                if encrypted < 1.0:
                    ctx.warn(f"{label}: only {encrypted:.0%} of connections were encrypted; "
                             "no metric reported")
            if daemons:
                measured = [s for s in sessions if s["role"] == "B"][-count:]
                encrypted = sum(bool(s["encrypted"]) for s in measured) / max(1, len(measured))
                resumed = sum(bool(s["resumed"]) for s in measured) / max(1, len(measured))
                if encrypted < 1.0:
                    ctx.warn(f"{label}: only {encrypted:.0%} of connections were encrypted; "
                             "no metric reported")
            if spec.resumed and resumed < 1.0:
                ctx.warn(f"{label}: only {resumed:.0%} of connections resumed")
            handled = count + (1 if spec.resumed else 0)
            row = {
                "protocol": label,
                "latency_ms": statistics.median(first_byte),
                "p90_ms": _percentile(first_byte, 0.9),
                "connect_ms": statistics.median(s["connect_ms"] for s in samples),
                "ready_ms": statistics.median(s["ready_ms"] for s in samples),
                "server_cpu_us": used / handled / 1000,
                "daemon_cpu_us": daemon_used / handled / 1000,
                "daemon_kernel_us": _kernel_us(split_after[1] - split_before[1], handled),
                "server_kernel_us": _kernel_us(
                    server_split_after[1] - server_split_before[1], handled),
                **_bpf_cost(bpf_before, bpf_after, handled),
                "resumed": resumed,
                "encrypted": encrypted,
                "paper_2010_ms": lan_connect_ms(label),
            }
            rows.append(row)
            if (daemons or spec.library_suite) and encrypted < 1.0:
                progress.advance()
                continue  # not what the label says: no metric
            metrics[f"connect.latency_ms.{label}"] = statistics.median(first_byte)
            metrics[f"connect.server_cpu_us.{label}"] = used / handled / 1000
            progress.advance()
        ctx.add_environment("offloads", read_offloads(net))
    ctx.add_environment("topology", "line: client - server, linked directly, no middlebox")
    return ExperimentOutput(rows + _beside_the_paper(metrics), metrics)


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
