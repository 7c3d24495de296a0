"""The report's plots, drawn from saved results as PNG bytes: latency CDF per protocol, server
CPU per connection, throughput, the middlebox matrix, the simulated connection rate. Every
axis says what it measures and in which unit. A plot without data is not drawn (None)."""

from __future__ import annotations

import io
from typing import Any

from testbed.claims import Results

OUTCOME_COLOURS = {"encrypted": "#2e7d32", "fallback": "#f9a825", "plaintext": "#90a4ae",
                   "broken": "#c62828"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    _pyplot().close(figure)
    return buffer.getvalue()


def latency_cdf(results: Results) -> tuple[bytes, str] | None:
    """CDF of each connection's time to the first response byte, or, from a result that
    kept no samples, each protocol's median and p90 as the two points known; with a caption
    that says which."""
    document = results.documents.get("connect")
    if document is None:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 4.5))
    samples = document.get("samples") or {}
    drawn = False
    for name, values in samples.items():
        if name.startswith("connect.first_byte_ms.") and values:
            ordered = sorted(float(v) for v in values)
            fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
            axes.step(ordered, fractions, where="post",
                      label=name.removeprefix("connect.first_byte_ms."))
            drawn = True
    caption = "every connection's time to the first response byte"
    if not drawn:  # an older result: the median and p90 only
        for row in document.get("rows", []):
            if row.get("latency_ms") is not None and row.get("p90_ms") is not None:
                axes.plot([row["latency_ms"], row["p90_ms"]], [0.5, 0.9], marker="o",
                          label=str(row.get("protocol")))
                drawn = True
        caption = ("this connect result kept no per-connection samples: each protocol's "
                   "median and p90 only")
    if not drawn:
        plt.close(figure)
        return None
    axes.set_xscale("log")
    axes.set_xlabel("time to first response byte (ms, log scale)")
    axes.set_ylabel("fraction of connections (0-1)")
    axes.set_title("connect latency per protocol (CDF)")
    axes.legend(fontsize=7, ncol=2)
    axes.grid(alpha=0.3)
    return _png(figure), caption


def _bars(values: dict[str, float], ylabel: str, title: str, log: bool = False) -> bytes:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 4.5))
    names = list(values)
    bars = axes.bar(range(len(names)), [values[n] for n in names], color="tab:blue")
    axes.bar_label(bars, fmt="%.0f", fontsize=7)
    axes.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    axes.set_xlabel("protocol (label)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if log:
        axes.set_yscale("log")
    return _png(figure)


def _by_prefix(metrics: dict[str, Any], prefix: str, suffix: str = "") -> dict[str, float]:
    return {name.removeprefix(prefix).removesuffix(suffix): float(value)
            for name, value in metrics.items()
            if name.startswith(prefix) and name.endswith(suffix)}


def server_cpu(results: Results) -> bytes | None:
    metrics = results.documents.get("connect", {}).get("metrics", {})
    values = _by_prefix(metrics, "connect.server_cpu_us.")
    if not values:
        return None
    return _bars(values, "server CPU per connection (us, log scale)",
                 "server CPU per connection (connect)", log=True)


def throughput(results: Results) -> bytes | None:
    metrics = results.documents.get("throughput", {}).get("metrics", {})
    values = _by_prefix(metrics, "throughput.mbps.")
    if not values:
        return None
    return _bars(values, "throughput (Mbit/s)", "bulk transfer throughput")


def web_cpu(results: Results) -> bytes | None:
    metrics = results.documents.get("web-server", {}).get("metrics", {})
    values = {f"{name.rsplit('.', 1)[0]} ({name.rsplit('.', 1)[1]})": value
              for name, value in _by_prefix(metrics, "web.server_cpu_us.").items()}
    if not values:
        return None
    return _bars(values, "server CPU per request (us, log scale)",
                 "web server (Apache): CPU per request", log=True)


def middlebox_matrix(results: Results) -> bytes | None:
    rows = [row for row in results.documents.get("middlebox-matrix", {}).get("rows", [])
            if "middlebox" in row and "protocol" in row]
    if not rows:
        return None
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    conditions = list(dict.fromkeys(str(r["middlebox"]) for r in rows))
    protocols = list(dict.fromkeys(str(r["protocol"]) for r in rows))
    outcomes = list(OUTCOME_COLOURS)
    grid = [[outcomes.index("broken")] * len(protocols) for _ in conditions]
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, 1.5 + 0.45 * len(conditions)))
    for row in rows:
        i, j = conditions.index(str(row["middlebox"])), protocols.index(str(row["protocol"]))
        outcome = str(row.get("outcome"))
        grid[i][j] = outcomes.index(outcome) if outcome in outcomes else outcomes.index("broken")
        text = outcome if row.get("outcome") == row.get("expected") else f"{outcome} (!)"
        axes.text(j, i, text, ha="center", va="center", fontsize=7, color="white")
    axes.imshow(grid, cmap=ListedColormap([OUTCOME_COLOURS[o] for o in outcomes]), vmin=0,
                vmax=len(outcomes) - 1, aspect="auto")
    axes.set_xticks(range(len(protocols)), protocols, fontsize=8)
    axes.set_yticks(range(len(conditions)), conditions, fontsize=6)
    axes.set_xlabel("protocol (label)")
    axes.set_ylabel("middlebox condition (model chain)")
    axes.set_title("middlebox outcomes ((!): not the expected one)", fontsize=10)
    axes.legend(handles=[Patch(color=c, label=o) for o, c in OUTCOME_COLOURS.items()],
                fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(figure)


def connection_rate(results: Results) -> bytes | None:
    rows = results.documents.get("connection-rate", {}).get("rows", [])
    if not rows:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for label in dict.fromkeys(str(row["protocol"]) for row in rows):
        mine = [row for row in rows if row["protocol"] == label]
        axes.plot([int(r["cores"]) for r in mine], [float(r["conn_per_s"]) for r in mine],
                  marker="o", label=label)
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("server cores (count, log scale)")
    axes.set_ylabel("connections per second at saturation (1/s, log scale)")
    axes.set_title("simulated connection rate, xeon-2008 costs")
    axes.legend(fontsize=8)
    return _png(figure)


def all_plots(results: Results) -> list[tuple[str, bytes, str]]:
    """(title, PNG, caption) of each plot the results have data for."""
    plots: list[tuple[str, bytes, str]] = []
    cdf = latency_cdf(results)
    if cdf is not None:
        plots.append(("Connect latency CDF", cdf[0], cdf[1]))
    for title, draw, caption in (
        ("Server CPU per connection", server_cpu, "connect: server process and daemon"),
        ("Throughput", throughput, "receiver's Mbit/s, first to last data byte"),
        ("Web server", web_cpu, "Apache with wrk, close and keep-alive"),
        ("Middlebox matrix", middlebox_matrix, "outcome of each cell"),
        ("Connection rate (simulated)", connection_rate, "xeon-2008 cost profile"),
    ):
        png = draw(results)
        if png is not None:
            plots.append((title, png, caption))
    return plots
