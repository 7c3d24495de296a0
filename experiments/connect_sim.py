"""The `connect` experiment in simulation: each protocol's connections one after another
(one client, as the emulated load generator runs them) on a one-core server through the
runtime seam (`RunContext.network`), reported in the emulated run's schema: a row per
protocol with `latency_ms` (median time to the response), `p90_ms` and `server_cpu_us`, and
the metrics `connect.latency_ms.<label>` and `connect.server_cpu_us.<label>`.

Labels with no simulated exchange (the daemon's `tcpcryptd-*`, the authenticated rows,
`tls13-ecdsa`) are listed in a warning and left out: expectations about them are not
checked. Over a middlebox path the real models
and tcpcrypt core decide each protocol's outcome (`testbed.sim.paths`): a fallen-back
connection is not encrypted, a broken path reports an error row and no metric.
"""

from __future__ import annotations

from testbed.experiment import RunContext
from testbed.paper import lan_connect_ms
from testbed.scenario import ConnectionLoad, Topology


def simulated_rows(ctx: RunContext, labels: list[str], count: int, path: str,
                   response_bytes: int) -> tuple[list[dict[str, object]], dict[str, float],
                                                 dict[str, list[float]], list[str]]:
    """Rows, metrics and samples of the labels that have a simulated exchange, and the
    labels that have none (left out, with a warning)."""
    from testbed.sim.exchanges import EXCHANGES

    runnable = [label for label in labels if label in EXCHANGES]
    skipped = [label for label in labels if label not in EXCHANGES]
    if skipped:
        ctx.warn(f"simulation: no exchange for {', '.join(skipped)}; left out")
    chain = "" if path == "none" else path
    rows: list[dict[str, object]] = []
    metrics: dict[str, float] = {}
    samples: dict[str, list[float]] = {}
    with ctx.network(Topology(server_cores=1, path=chain)) as network, \
            ctx.progress(len(runnable), "connect (simulated)") as progress:
        for label in runnable:
            report = network.run(ConnectionLoad(label, count, response_bytes=response_bytes))
            progress.advance()
            outcome = _outcome(chain, label)
            row: dict[str, object] = {"protocol": label, "path": path,
                                      "paper_2010_ms": lan_connect_ms(label),
                                      "outcome": outcome}
            if not report.completed:
                row["error"] = f"every connection failed over {path} (simulated: {outcome})"
                ctx.warn(f"{label}: {row['error']}; no metric reported")
                rows.append(row)
                continue
            encrypted = 0.0 if label == "tcp" or outcome in ("fallback", "plaintext") else 1.0
            row.update({"latency_ms": report.latency_ms(0.5), "p90_ms": report.latency_ms(0.9),
                        "server_cpu_us": report.server_cpu_us, "encrypted": encrypted,
                        "resumed": 1.0 if label.endswith("-resumed") else 0.0})
            rows.append(row)
            samples[f"connect.first_byte_ms.{label}"] = list(report.latencies_ms)
            if label != "tcp" and not encrypted:
                ctx.warn(f"{label}: fell back to TCP over {path}; no metric reported")
                continue
            metrics[f"connect.latency_ms.{label}"] = report.latency_ms(0.5)
            metrics[f"connect.server_cpu_us.{label}"] = report.server_cpu_us
    _overhead_from_profile(ctx, rows, metrics)
    ctx.add_environment("topology", "simulated line: client - server" + (
        f" through {path}" if chain else ", linked directly"))
    return rows, metrics, samples, skipped


def _overhead_from_profile(ctx: RunContext, rows: list[dict[str, object]],
                           metrics: dict[str, float]) -> None:
    """The emulated run's `kex_cpu_us` and `overhead_per_kex` for `OVERHEAD_ROW`, with the
    profile's X25519 key pair and exchange as the key exchange alone."""
    from experiments.connect import OVERHEAD_BASE, OVERHEAD_ROW
    from testbed.sim.costs import DEFAULT_PROFILE, load_profile

    top = metrics.get(f"connect.server_cpu_us.{OVERHEAD_ROW}")
    if top is None:
        return
    profile = load_profile(ctx.profile or DEFAULT_PROFILE)
    kex = profile.cost_us("x25519.keypair") + profile.cost_us("x25519.exchange")
    row = next(r for r in rows if r["protocol"] == OVERHEAD_ROW)
    row["kex_cpu_us"] = metrics[f"connect.kex_cpu_us.{OVERHEAD_ROW}"] = kex
    base = metrics.get(f"connect.server_cpu_us.{OVERHEAD_BASE}")
    if base is not None:
        row["overhead_per_kex"] = metrics[f"connect.overhead_per_kex.{OVERHEAD_ROW}"] = (
            (top - base) / kex)


def _outcome(chain: str, label: str) -> str:
    if not chain:
        return "plaintext" if label == "tcp" else "encrypted"
    from testbed.sim.paths import decide

    return decide(chain, label)
