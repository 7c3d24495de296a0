"""Scenario: an 8-core server (simulated) receiving connections as Poisson arrivals at an
offered rate, from a fraction of its capacity for a protocol to past it; each connection sends
a small request and reads the response.

Covers: median and p99 connect latency (start to response) vs offered rate per protocol: flat
while cores are free, then the knee where the protocol saturates the server. A protocol's
capacity is its cores over its server cost per connection in the run's cost profile, so every
protocol is offered the same fractions of its own capacity and the same absolute rates show
where each one's knee lies.
"""

from __future__ import annotations

from pathlib import Path

from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param, RunContext
from testbed.scenario import ConnectionLoad, Topology

PROTOCOLS = ("tcp", "tls12-rsa", "tls13", "tcpcrypt-rsa-exp3", "tcpcrypt-x25519")
LOADS = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.05)


def _labels(text: object) -> list[str]:
    from experiments.connection_rate import _labels as known_labels

    return known_labels(text)


SPEC = ExperimentSpec(
    name="latency-under-load",
    description="offered connection rate vs median and p99 connect latency, 8-core server "
                "(sim)",
    runtime="simulation",
    params=(
        Param("cores", 8, help="server cores", low=1, high=1024),
        Param("protocols", ",".join(PROTOCOLS), validate=_labels),
        Param("connections", 20000, quick=3000, low=1, high=10_000_000,
              help="arrivals per point"),
    ),
    expectations=(
        Expectation("tls12-rsa p99 at 95% load at least 3x its p99 at 10% load (a knee)",
                    lhs="latency.p99_ms.tls12-rsa.0.95", op=">=",
                    rhs="latency.p99_ms.tls12-rsa.0.1", factor=3.0, source="queueing (M/D/c)"),
        Expectation("tcp median at 50% load within 2x its median at 10% load",
                    lhs="latency.median_ms.tcp.0.5", op="<=", rhs="latency.median_ms.tcp.0.1",
                    factor=2.0, source="queueing (M/D/c)"),
    ),
    rows_param="protocols",
)


def run(ctx: RunContext) -> ExperimentOutput:
    from testbed.sim.network import SimNetwork

    labels = _labels(ctx.params["protocols"])
    cores = int(ctx.params["cores"])
    count = int(ctx.params["connections"])
    rows: list[dict[str, object]] = []
    metrics: dict[str, float] = {}
    with ctx.network(Topology(server_cores=cores)) as network, \
            ctx.progress(len(labels) * len(LOADS), "latency under load") as progress:
        assert isinstance(network, SimNetwork)
        for label in labels:
            capacity = cores / (network.profile.server_us(label) / 1e6)
            metrics[f"latency.capacity_per_s.{label}"] = capacity
            for load in LOADS:
                offered = load * capacity
                report = network.run(ConnectionLoad(label, count, offered_per_s=offered))
                median, p99 = report.latency_ms(0.5), report.latency_ms(0.99)
                metrics[f"latency.median_ms.{label}.{load}"] = median
                metrics[f"latency.p99_ms.{label}.{load}"] = p99
                rows.append({"protocol": label, "load": load, "offered_per_s": round(offered),
                             "achieved_per_s": round(report.rate_per_s),
                             "median_ms": round(median, 3), "p99_ms": round(p99, 3)})
                progress.advance()
    figure = _figure(ctx.out_dir / "latency-under-load.png", rows, cores, ctx.profile)
    return ExperimentOutput(rows, metrics, [figure])


def _figure(path: Path, rows: list[dict[str, object]], cores: int, profile: str | None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    for label in dict.fromkeys(str(row["protocol"]) for row in rows):
        mine = [row for row in rows if row["protocol"] == label]
        offered = [float(str(r["offered_per_s"])) for r in mine]
        line = axes.plot(offered, [float(str(r["median_ms"])) for r in mine], marker="o",
                         label=f"{label} median")[0]
        axes.plot(offered, [float(str(r["p99_ms"])) for r in mine], linestyle="--",
                  color=line.get_color(), label=f"{label} p99")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("offered connections/s")
    axes.set_ylabel("connect latency (ms)")
    axes.set_title(f"latency under load, {cores}-core server ({profile})")
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
