"""Scenario: a server of 1, 2, 4, 8 and 16 cores and enough clients to keep it saturated; each
client opens a connection, sends a small request, reads the response, closes, and starts over.

Covers: server connections per second at saturation vs cores, per protocol (TCP, TLS 1.2 with
RSA key exchange as the paper's SSL, TLS 1.3, tcpcrypt with RSA-exp3 and with X25519), and in
simulation the simulator's own speed (`sim.connections_per_wall_s`). In simulation the costs
come from the run's cost profile (`--profile xeon-2008` replays the paper's machine); in
emulation the server host is pinned to the cores asked for (at most this machine's), and
tcpcrypt runs through the in-process library (TCP-ENO in the kernel program), one server
process per core sharing the port. Ratios of rates follow from the costs; none is set.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param, RunContext
from testbed.runner import ConfigError
from testbed.scenario import ConnectionLoad, Topology

PROTOCOLS = ("tcp", "tls12-rsa", "tls13", "tcpcrypt-rsa-exp3", "tcpcrypt-x25519")
EMULATED = ("tcp", "tls12-rsa", "tls12-rsa-resumed", "tls13", "tls13-resumed",
            "tcpcrypt-x25519", "tcpcrypt-x25519-resumed", "tcpcrypt-rsa-exp3",
            "tcpcrypt-rsa-exp3-resumed")


def _labels(text: object) -> list[str]:
    from testbed.sim.exchanges import EXCHANGES

    labels = [label.strip() for label in str(text).split(",") if label.strip()]
    unknown = [label for label in labels if label not in EXCHANGES]
    if unknown or not labels:
        raise ValueError(f"unknown protocols {unknown}; known: {', '.join(EXCHANGES)}")
    return labels


def _cores(text: object) -> list[int]:
    try:
        cores = [int(item) for item in str(text).split(",") if item.strip()]
    except ValueError:
        raise ValueError(f"cores wants comma-separated integers, got {text!r}") from None
    if not cores or any(not 1 <= count <= 1024 for count in cores):
        raise ValueError(f"cores must be 1..1024, got {text!r}")
    return cores


SPEC = ExperimentSpec(
    name="connection-rate",
    description="server connections/s at saturation vs cores per protocol (sim; emulation up "
                "to this machine's cores)",
    runtime="simulation",
    runtimes=("simulation", "emulation"),
    params=(
        Param("cores", "1,2,4,8,16", help="server core counts", validate=_cores),
        Param("protocols", ",".join(PROTOCOLS), validate=_labels,
              help="protocol labels"),
        Param("connections", 20000, quick=2000, low=1, high=10_000_000,
              help="connections per protocol and core count"),
        Param("machine_cores", 0, help="0: clients on machines of their own; N: clients and "
              "server share one machine of N cores (what emulation on this machine is; "
              "testbed validate sets it)", low=0, high=4096),
        Param("background_cores", 0.0, help="with machine_cores, in simulation: core-"
              "equivalents other tenants keep busy on that machine (testbed validate measures "
              "it before the emulated run)", low=0.0, high=4096.0),
        Param("clients_apart", 0, help="with machine_cores: 1 pins the clients to the "
              "cores the server is not pinned to (when the machine has any)", low=0, high=1),
        Param("clients", 0, help="closed-loop clients (0: enough to saturate the server)",
              low=0, high=4096),
    ),
    expectations=(
        Expectation("8 cores: tcpcrypt-rsa-exp3 accepts >= 25x the rate of tls12-rsa",
                    lhs="rate.conn_per_s.tcpcrypt-rsa-exp3.8", op=">=",
                    rhs="rate.conn_per_s.tls12-rsa.8", factor=25.0,
                    source="Bittau et al. 2010: 36x (with --profile xeon-2008)"),
        Expectation("8 cores: tcpcrypt-rsa-exp3 accepts <= 50x the rate of tls12-rsa",
                    lhs="rate.conn_per_s.tcpcrypt-rsa-exp3.8", op="<=",
                    rhs="rate.conn_per_s.tls12-rsa.8", factor=50.0,
                    source="Bittau et al. 2010: 36x (with --profile xeon-2008)"),
        Expectation("8 cores: tcp accepts >= 50x the rate of tls12-rsa",
                    lhs="rate.conn_per_s.tcp.8", op=">=", rhs="rate.conn_per_s.tls12-rsa.8",
                    factor=50.0, source="Bittau et al. 2010: about 80x (xeon-2008)"),
        Expectation("8 cores: tcp accepts <= 120x the rate of tls12-rsa",
                    lhs="rate.conn_per_s.tcp.8", op="<=", rhs="rate.conn_per_s.tls12-rsa.8",
                    factor=120.0, source="Bittau et al. 2010: about 80x (xeon-2008)"),
        Expectation("at least 20,000 simulated connections per wall-clock second",
                    lhs="sim.connections_per_wall_s", op=">=", rhs="", offset=20000,
                    source="issue 9"),
    ),
    rows_param="protocols",
)


def saturating_clients(network: object, protocol: str, cores: int) -> int:
    """Closed-loop clients enough to keep `cores` busy: twice the connection's time over its
    server time, per core (from the exchange and the costs, so no protocol is starved). When
    the clients share the server's machine (emulation, or a simulation of it), 4 per core:
    more would only take cores from the server."""
    from testbed.sim.network import SimNetwork

    if not isinstance(network, SimNetwork) or network.topology.machine_cores:
        return 4 * cores
    steps, tail = network.plan(protocol)
    server_s = sum(work for _, work in steps)
    total_s = sum(wire + work for wire, work in steps) + tail
    return max(4, math.ceil(2 * cores * total_s / max(server_s, 1e-9)))


def run(ctx: RunContext) -> ExperimentOutput:
    labels = _labels(ctx.params["protocols"])
    cores_list = _cores(ctx.params["cores"])
    count = int(ctx.params["connections"])
    machine = int(ctx.params["machine_cores"])
    fixed_clients = int(ctx.params["clients"])
    background = float(ctx.params["background_cores"])
    if int(ctx.params["clients_apart"]) and not machine:
        raise ConfigError("clients_apart places the clients on the shared machine's other "
                          "cores: it needs machine_cores")
    if background and (ctx.runtime != "simulation" or not machine):
        raise ConfigError("background_cores models other tenants of a shared machine in "
                         "simulation: it needs machine_cores and the simulation runtime")
    if ctx.runtime == "emulation":
        resumed = [label for label in labels
                   if label.startswith("tcpcrypt") and label.endswith("-resumed")]
        if resumed and max(cores_list) > 1:
            from testbed.emulation.connection_load import refuse_resumed_library

            raise ConfigError(refuse_resumed_library(resumed[0]))
        labels = [label for label in labels if label in EMULATED]
        cores_list = [c for c in cores_list if c <= _this_machines_cores()]
        ctx.warn(f"emulation: protocols {','.join(labels)}, cores {cores_list} (at most this "
                 "machine's cores)")
    rows: list[dict[str, object]] = []
    metrics: dict[str, float] = {}
    simulated, wall = 0, 0.0
    with ctx.progress(len(labels) * len(cores_list), "connection rate") as progress:
        for cores in cores_list:
            topology = Topology(server_cores=cores, machine_cores=machine,
                                background_cores=background,
                                clients_apart=bool(int(ctx.params["clients_apart"])))
            with ctx.network(topology) as network:
                for label in labels:
                    clock = time.perf_counter()
                    clients = fixed_clients or saturating_clients(network, label, cores)
                    report = network.run(ConnectionLoad(label, count, concurrency=clients))
                    if ctx.runtime == "simulation":
                        simulated += report.completed
                        wall += time.perf_counter() - clock
                    metrics[f"rate.conn_per_s.{label}.{cores}"] = report.rate_per_s
                    row: dict[str, object] = {
                        "protocol": label, "cores": cores, "clients": clients,
                        "conn_per_s": round(report.rate_per_s, 1),
                        "server_cpu_us": round(report.server_cpu_us, 1),
                        "median_ms": round(report.latency_ms(0.5), 3),
                        "completed": report.completed}
                    if ctx.runtime == "emulation":  # what a simulation of this run needs
                        row["client_cpu_us"] = round(report.client_cpu_us, 1)
                        if report.others_runnable is not None:
                            row["others_runnable"] = round(report.others_runnable, 3)
                    rows.append(row)
                    progress.advance()
    if simulated:
        metrics["sim.connections_per_wall_s"] = simulated / wall
    for label in labels:
        if f"rate.conn_per_s.{label}.8" in metrics and "rate.conn_per_s.tls12-rsa.8" in metrics:
            metrics[f"rate.ratio_to_tls12-rsa.{label}.8"] = (
                metrics[f"rate.conn_per_s.{label}.8"] / metrics["rate.conn_per_s.tls12-rsa.8"])
    figure = _figure(ctx.out_dir / "connection-rate.png", rows, ctx.runtime, ctx.profile)
    return ExperimentOutput(rows, metrics, [figure])


def _this_machines_cores() -> int:
    import os

    return os.cpu_count() or 1


def _figure(path: Path, rows: list[dict[str, object]], runtime: str,
            profile: str | None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label in dict.fromkeys(str(row["protocol"]) for row in rows):
        mine = [row for row in rows if row["protocol"] == label]
        axes.plot([int(str(r["cores"])) for r in mine], [float(str(r["conn_per_s"])) for r in mine],
                  marker="o", label=label)
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("server cores")
    axes.set_ylabel("connections/s at saturation")
    axes.set_title(f"connection rate ({runtime}{', ' + profile if profile else ''})")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
