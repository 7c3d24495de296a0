"""Scenario: a population of Internet paths (thousands to millions), each a destination port
and a middlebox chain drawn from a population profile with documented frequencies
(`testbed.sim.population`, by default the 2010 paper's middlebox survey by port); one
connection per path and protocol.

Covers: per protocol, the fraction of paths on which the connection is encrypted, falls back
to TCP, stays plaintext (TCP) or breaks, with 95% confidence intervals, and the simulator's
speed. Each distinct (port, chain) is decided once by the real middlebox models and the real
tcpcrypt core over real IPv4/TCP bytes (`testbed.sim.paths`), then counted for every path
that has it. Sweeps over seeds go through `testbed sweep` (Dask).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param, RunContext

PROTOCOLS = ("tcp", "tls13", "tcpcrypt-x25519", "tcpcrypt-rsa-exp3")


def _population(value: object) -> None:
    from testbed.sim.population import POPULATIONS

    if str(value) not in POPULATIONS:
        raise ValueError(f"unknown population {value!r}; known: {', '.join(POPULATIONS)}")


def _protocols(value: object) -> None:
    unknown = [p for p in str(value).split(",") if p.strip() not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocols {unknown}; known: {', '.join(PROTOCOLS)}")


SPEC = ExperimentSpec(
    name="deployability",
    description="a population of paths with middleboxes drawn by port: share encrypted, "
                "fallen back, broken per protocol (sim)",
    runtime="simulation",
    params=(
        Param("paths", 1_000_000, quick=5000, help="paths in the population",
              low=1, high=100_000_000),
        Param("population", "paper-2010-by-port", validate=_population),
        Param("protocols", ",".join(PROTOCOLS), validate=_protocols),
    ),
    expectations=(
        Expectation("no protocol breaks on any path of the profile",
                    lhs="deploy.share.broken.max", op="<=", rhs="", offset=0.0,
                    source="RFC 8547: without ENO on both SYNs, plain TCP"),
        Expectation("1,000,000 paths take under 10 minutes (paths per second >= 1667)",
                    lhs="deploy.paths_per_wall_s", op=">=", rhs="", offset=1667,
                    source="issue 9"),
    ),
)


def run(ctx: RunContext) -> ExperimentOutput:
    from testbed.sim.paths import OUTCOMES, decide
    from testbed.sim.population import draw_population, wilson_interval

    paths = int(ctx.params["paths"])
    protocols = [p.strip() for p in str(ctx.params["protocols"]).split(",") if p.strip()]
    clock = time.perf_counter()
    population = draw_population(str(ctx.params["population"]), paths, ctx.seed)
    drawn_s = time.perf_counter() - clock
    rows: list[dict[str, object]] = []
    metrics: dict[str, float] = {}
    counts: dict[str, Counter[str]] = {p: Counter() for p in protocols}
    with ctx.progress(len(population) * len(protocols), "deployability") as progress:
        for (port, chain), number in sorted(population.items()):
            row: dict[str, object] = {"port": port, "chain": chain, "paths": number}
            for protocol in protocols:
                outcome = decide(chain, protocol, port)
                counts[protocol][outcome] += number
                row[protocol] = outcome
                progress.advance()
            rows.append(row)
    wall_s = time.perf_counter() - clock
    broken_max = 0.0
    for protocol in protocols:
        for outcome in OUTCOMES:
            share = counts[protocol][outcome] / paths
            low, high = wilson_interval(counts[protocol][outcome], paths)
            metrics[f"deploy.share.{outcome}.{protocol}"] = share
            rows.append({"protocol": protocol, "outcome": outcome, "share": round(share, 5),
                         "ci95_low": round(low, 5), "ci95_high": round(high, 5)})
        broken_max = max(broken_max, metrics[f"deploy.share.broken.{protocol}"])
    metrics["deploy.share.broken.max"] = broken_max
    metrics["deploy.paths"] = float(paths)
    metrics["deploy.distinct_chains"] = float(len(population))
    metrics["deploy.wall_s"] = wall_s
    metrics["deploy.draw_s"] = drawn_s
    metrics["deploy.paths_per_wall_s"] = paths / wall_s
    figure = _figure(ctx.out_dir / "deployability.png", counts, paths)
    return ExperimentOutput(rows, metrics, [figure])


def _figure(path: Path, counts: dict[str, Counter[str]], paths: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from testbed.sim.paths import OUTCOMES

    colours = {"encrypted": "#2e7d32", "fallback": "#f9a825", "plaintext": "#9e9e9e",
               "broken": "#c62828"}
    figure, axes = plt.subplots(figsize=(7, 4))
    labels = list(counts)
    left = [0.0] * len(labels)
    for outcome in OUTCOMES:
        widths = [counts[p][outcome] / paths for p in labels]
        axes.barh(labels, widths, left=left, color=colours[outcome], label=outcome)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    axes.set_xlabel(f"share of {paths:,} paths")
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
