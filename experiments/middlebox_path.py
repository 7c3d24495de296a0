"""Scenario: a client and a server in Mininet with one middlebox node between them running
the AF_PACKET bridge engine, against the same hosts linked directly.

Covers: what a pass-through engine costs (added RTT, bulk throughput and data segments per
second forwarded in the data direction, measured with iperf3) and how exactly the userspace
`link` model delays (TCP connect time through link(delay_ms=10), which delays the SYN and the
SYN-ACK by 10 ms each; and ping's RTT, ICMP waiting the links' fixed delay in the engine).
Every host keeps its offloads (the engine carries super-packets, `middleboxes.engines.vnet`),
so the direct link and the pass-through path are measured alike; the delay's error is taken
after subtracting the pass-through path's own RTT (what the engine adds), from the medians
(`net_rtt_error_ms`) and from the fastest connections (`net_rtt_error_min_ms`: scheduling
noise on a loaded machine only ever adds to a fixed delay), and each iperf3 run
records the cores the engine used (`engine_cpu`; on 2 cores it shares them with iperf3's two
ends). The delay path also records, from the engine's own histograms, how late its delayed
packets left (`release_late_p50_us`, `_p90_us`) and how long frames waited before it read them
(`read_lag_p50_us`, `_p90_us`): the engine's timing, apart from the load the RTTs met.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from testbed.apps.hosts import wait_until_listening
from testbed.emulation.middlebox_nodes import middlebox_reports
from testbed.emulation.network import emulated_network
from testbed.emulation.offloads import read_offloads
from testbed.emulation.paths import EngineMeter, sharing_note
from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param, RunContext
from topologies.line import LineTopo

MSS_BYTES = 1448
SPEC = ExperimentSpec(
    name="middlebox-path",
    description="cost of a pass-through middlebox engine; accuracy of the userspace link delay",
    runtime="emulation",
    params=(
        Param("seconds", 3, quick=1, help="iperf3 duration per path", low=1, high=600),
        Param("connections", 30, quick=10, help="connections timed per path", low=1,
              high=10_000),
    ),
    expectations=(
        Expectation("pass-through engine forwards >= 50k packets/s", lhs=
                    "middlebox.forward_pps.passthrough", op=">=", rhs="", offset=50_000,
                    source="issue #4"),
        Expectation("pass-through engine carries >= 5 Gbit/s of TCP", lhs=
                    "middlebox.throughput_mbps.passthrough", op=">=", rhs="", offset=5_000,
                    source="issue #13"),
        Expectation("link(delay_ms=10) RTT within 1 ms of 20 ms",
                    lhs="middlebox.rtt_error_ms.delay10", op="<=", rhs="", offset=1.0,
                    source="issue #4"),
        Expectation("link(delay_ms=10) RTT, less the pass-through path's, within 0.5 ms of "
                    "20 ms", lhs="middlebox.net_rtt_error_ms.delay10", op="<=", rhs="",
                    offset=0.5, source="issue #13"),
        Expectation("link(delay_ms=10) ping RTT within 1 ms of 20 ms",
                    lhs="middlebox.ping_rtt_error_ms.delay10", op="<=", rhs="", offset=1.0,
                    source="issue #4"),
    ),
    bench=True,
)


def _connect_ms(net: Any, count: int) -> tuple[float, float]:
    """(median, minimum) TCP connect time in ms over `count` connections."""
    client, server = net.get("client"), net.get("server")
    server.cmd("python3 -m http.server 8080 >/dev/null 2>&1 &")
    client.cmd(f"curl -s -o /dev/null --retry 20 --retry-connrefused http://{server.IP()}:8080/")
    times = []
    for _ in range(count):
        out = client.cmd(f"curl -s -o /dev/null -w '%{{time_connect}}' http://{server.IP()}:8080/")
        times.append(float(out) * 1000)
    return statistics.median(times), min(times)


def _ping_ms(net: Any, count: int) -> float:
    """Median ping RTT, client to server."""
    client, server = net.get("client"), net.get("server")
    output = client.cmd(f"ping -n -q -c {count} -i 0.05 -W 2 {server.IP()}")
    try:  # rtt min/avg/max/mdev = a/b/c/d ms
        return float(output.rsplit("=", 1)[1].split("/")[1])
    except (IndexError, ValueError) as error:
        raise RuntimeError(f"ping gave no RTT: {output[-300:]}") from error


def _bucket_quantile(counters: dict[str, int], name: str, fraction: float) -> float | None:
    """The upper bound in us of the engine's histogram bucket (`name<=Nus`) holding the given
    fraction of its counts (5001 for the open last bucket)."""
    buckets = []
    for key, count in counters.items():
        if key.startswith(f"{name}<=") and key.endswith("us"):
            buckets.append((float(key[len(name) + 2:-2]), int(count)))
        elif key == f"{name}>5000us":
            buckets.append((5001.0, int(count)))
    total = sum(count for _, count in buckets)
    seen = 0
    for limit, count in sorted(buckets):
        seen += count
        if seen >= fraction * total:
            return limit
    return None


def _engine_timing(net: Any) -> dict[str, float]:
    """Load-independent evidence of the engine's timing: how late its delayed packets left
    (release time to send) and how long frames waited before it read them, as the upper
    bounds in us of the histogram buckets holding the median and the 90th percentile."""
    found: dict[str, float] = {}
    for report in middlebox_reports(net):
        for name, label in (("late", "release_late"), ("read-lag", "read_lag")):
            for fraction, tag in ((0.5, "p50"), (0.9, "p90")):
                value = _bucket_quantile(report.engine, name, fraction)
                if value is not None:
                    found[f"{label}_{tag}_us"] = value
    return found


def _iperf_mbps(net: Any, seconds: int) -> tuple[float, float | None]:
    """(Mbit/s, cores the engine used meanwhile or None without an engine)."""
    client, server = net.get("client"), net.get("server")
    server.cmd("iperf3 -s -1 >/dev/null 2>&1 &")
    wait_until_listening(server, 5201)
    meter = EngineMeter(net)
    started = time.monotonic()
    output = client.cmd(f"timeout {seconds + 20} iperf3 -J -c {server.IP()} -t {seconds} "
                        "--connect-timeout 3000")
    load = meter.load(time.monotonic() - started)
    try:
        report = json.loads(output[output.index("{"):])
        mbps = float(report["end"]["sum_received"]["bits_per_second"]) / 1e6
    except (ValueError, KeyError) as error:
        raise RuntimeError(f"iperf3 gave no result: {output[-300:]}") from error
    return mbps, max(load.values()) if load else None


def run(ctx: RunContext) -> ExperimentOutput:
    seconds, count = int(ctx.params["seconds"]), int(ctx.params["connections"])
    rows: list[dict[str, object]] = []
    metrics: dict[str, float] = {}
    paths = (("direct", ()), ("passthrough", ("passthrough",)),
             ("delay10", ("link(delay_ms=10)",)))
    with ctx.progress(len(paths), "middlebox paths") as progress:
        for label, chain in paths:
            with emulated_network(LineTopo(paths=chain)) as net:
                rtt, fastest = _connect_ms(net, count)
                ping = _ping_ms(net, count)
                timing = _engine_timing(net) if label == "delay10" else {}
                mbps, engine = _iperf_mbps(net, seconds) if label != "delay10" else (0.0, None)
                ctx.add_environment(f"offloads.{label}", read_offloads(net))
            row: dict[str, object] = {"path": label, "connect_rtt_ms": rtt,
                                      "connect_rtt_min_ms": fastest, "ping_rtt_ms": ping}
            metrics[f"middlebox.connect_rtt_ms.{label}"] = rtt
            metrics[f"middlebox.connect_rtt_min_ms.{label}"] = fastest
            metrics[f"middlebox.ping_rtt_ms.{label}"] = ping
            row.update(timing)
            metrics.update({f"middlebox.{key}.{label}": value for key, value in timing.items()})
            if engine is not None:
                row["engine_cpu"] = engine
                metrics[f"middlebox.engine_cpu.{label}"] = engine
            if mbps:
                row["throughput_mbps"] = mbps
                row["data_pps"] = mbps * 1e6 / 8 / MSS_BYTES
                metrics[f"middlebox.throughput_mbps.{label}"] = mbps
                metrics[f"middlebox.forward_pps.{label}"] = mbps * 1e6 / 8 / MSS_BYTES
            rows.append(row)
            progress.advance()
    metrics["middlebox.added_rtt_ms.passthrough"] = (
        metrics["middlebox.connect_rtt_ms.passthrough"] - metrics["middlebox.connect_rtt_ms.direct"]
    )
    metrics["middlebox.rtt_error_ms.delay10"] = abs(metrics["middlebox.connect_rtt_ms.delay10"]
                                                    - 20.0)
    metrics["middlebox.ping_rtt_error_ms.delay10"] = abs(metrics["middlebox.ping_rtt_ms.delay10"]
                                                         - 20.0)
    metrics["middlebox.net_rtt_error_ms.delay10"] = abs(
        metrics["middlebox.connect_rtt_ms.delay10"]
        - metrics["middlebox.connect_rtt_ms.passthrough"] - 20.0)
    ctx.add_environment("engine_cpu_note", sharing_note())
    # a fixed delay under scheduling noise, which only ever adds: the fastest connections
    metrics["middlebox.net_rtt_error_min_ms.delay10"] = abs(
        metrics["middlebox.connect_rtt_min_ms.delay10"]
        - metrics["middlebox.connect_rtt_min_ms.passthrough"] - 20.0)
    metrics["middlebox.throughput_ratio.passthrough"] = (
        metrics["middlebox.throughput_mbps.passthrough"]
        / metrics["middlebox.throughput_mbps.direct"])
    return ExperimentOutput(rows, metrics)
