"""Scenario: a client and a server host in Mininet (linked directly, real kernel TCP, no
shaping), the client streaming N MB of seeded pseudo-random data to the server over each
protocol in turn, rounds interleaved (tcp, tls13, tcpcrypt, tcp, ...); the server hashes what it
read with SHA-256 and the run compares it with the sender's hash and with the hash of the
pattern recomputed from the seed.

With `--set path=CHAIN` (the middlebox chain syntax, e.g. `passthrough`, `proxy-ack`,
`strip-options(on=syn),link(delay_ms=5)`) the hosts are linked through a middlebox node
running that chain in the bridge engine instead; the rows then also give the cores the engine
used (`engine_cpu`), and a warning says when the engine, not the protocol, bounded a figure.

Covers: bulk throughput of TCP, TLS 1.3 (OpenSSL through Python's ssl), tcpcrypt with X25519
through the in-process library (`tcpcrypt-x25519`; both ends report whether it was encrypted)
and through tcpcryptd (`tcpcryptd-x25519`: the same plain-TCP programs, the daemon on both
hosts), with the CPU each end spent per second of transfer; whether the daemons encrypted the
connection comes from the server daemon's own session record. The receiver's clock runs from
the first data byte to the last; both ends hash
outside it. A SHA-256 mismatch, a short transfer, a failed transfer or a tcpcrypt connection
that was not encrypted gives an error row and a warning, and no metric for that protocol.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from testbed.apps.bulk import MAX_BYTES, pattern_sha256
from testbed.apps.protocols import PROTOCOLS
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
from testbed.measurements import bulk_transfer

SUPPORTED = ("tcp", "tls13", "tcpcrypt-x25519", "tcpcryptd-x25519")
PORT = 8000
RESULT_TIMEOUT_S = 120.0


def _protocols(text: str) -> list[str]:
    labels = [label.strip() for label in text.split(",") if label.strip()]
    unknown = [label for label in labels if label not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocols {unknown}; known: {', '.join(PROTOCOLS)}")
    unsupported = [label for label in labels if PROTOCOLS[label].resumed]
    if unsupported:
        raise ValueError(f"resumption changes nothing in a bulk transfer: {unsupported}")
    authenticated = [label for label in labels if PROTOCOLS[label].auth]
    if authenticated:
        raise ValueError(f"authentication rows are connect's, not a bulk transfer's: "
                         f"{authenticated}")
    if not labels:
        raise ValueError("no protocol given")
    if len(set(labels)) != len(labels):
        raise ValueError(f"a protocol is listed twice: {labels}")
    return labels


SPEC = ExperimentSpec(
    name="throughput",
    description="bulk transfer Mbit/s and CPU, SHA-256 checked: TCP, TLS 1.3, tcpcrypt (Mininet)",
    runtime="emulation",
    params=(
        Param("megabytes", 500.0, quick=20.0, help="data sent per transfer (MB, 10^6 bytes)",
              low=0.000001, high=MAX_BYTES / 1e6),
        Param("rounds", 3, quick=1, help="transfers per protocol, interleaved (median taken)",
              low=1, high=25),
        Param("protocols", ",".join(SUPPORTED), help="comma-separated protocol labels",
              validate=lambda text: _protocols(str(text))),
        Param("buffer_kb", 4096, help="socket buffers of both programs, KiB (0: autotuning)",
              low=0, high=256 * 1024),
        Param("path", "none", help="middlebox chain between the hosts, e.g. 'proxy-ack' "
              "('none': linked directly)", validate=lambda text: check_path(str(text))),
    ),
    expectations=(
        Expectation("tcpcrypt-x25519 (the library) throughput >= 0.35x TCP's",
                    lhs="throughput.mbps.tcpcrypt-x25519", op=">=", rhs="throughput.mbps.tcp",
                    factor=0.35, source="issue #8"),
        Expectation("tcpcrypt-x25519 (the library) throughput >= TLS 1.3's",
                    lhs="throughput.mbps.tcpcrypt-x25519", op=">=",
                    rhs="throughput.mbps.tls13", source="issue #8"),
    ),
    bench=True,
    rows_param="protocols",
)


def _summary(label: str, rounds: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """The protocol's row: medians over its rounds."""
    def median(key: str) -> float:
        return statistics.median(float(r[key]) for r in rounds)

    summary = {
        "protocol": label,
        "path": path,
        "rounds": len(rounds),
        "mbytes": median("mbytes"),
        "seconds": median("seconds"),
        "mbps": median("mbps"),
        "sha256_ok": all(r["sha256_ok"] for r in rounds),
        "encrypted": all(r["encrypted"] for r in rounds),
        "sender_cpu": median("sender_cpu"),
        "receiver_cpu": median("receiver_cpu"),
        "daemon_a_cpu": median("daemon_a_cpu"),
        "daemon_b_cpu": median("daemon_b_cpu"),
    }
    for key in ("sender_srtt_ms", "sender_min_rtt_ms", "sender_cwnd_limited"):
        if all(key in r for r in rounds):
            summary[key] = median(key)
    if all("congestion" in r for r in rounds):
        summary["congestion"] = rounds[0]["congestion"]
    if all("engine_cpu" in r for r in rounds):
        summary["engine_cpu"] = median("engine_cpu")
        summary["engine_busy"] = median("engine_busy")
    return summary


def _figure(out_dir: Path, summaries: list[dict[str, Any]],
            rounds: dict[str, list[dict[str, Any]]], failed: set[str]) -> Path:
    """Median Mbit/s per protocol (red: integrity or encryption failed), dots per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(7, 4.5))
    names = [str(s["protocol"]) for s in summaries]
    positions = list(range(len(names)))
    colours = ["tab:red" if name in failed else "tab:blue" for name in names]
    bars = axis.bar(positions, [float(s["mbps"]) for s in summaries], 0.6, color=colours,
                    label="median")
    axis.bar_label(bars, fmt="%.0f", label_type="center", color="white")
    for position, name in zip(positions, names, strict=True):
        values = [float(r["mbps"]) for r in rounds.get(name, [])]
        axis.plot([position] * len(values), values, "k.")
    axis.set_xticks(positions, names)
    axis.set_ylabel("Mbit/s (receiver, first to last data byte)")
    axis.set_title(f"Bulk transfer, {summaries[0]['mbytes']:.0f} MB, SHA-256 checked"
                   if summaries else "Bulk transfer")
    axis.set_ylim(bottom=0)
    fig.tight_layout()
    path = out_dir / "throughput.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(ctx: RunContext) -> ExperimentOutput:
    labels = _protocols(str(ctx.params["protocols"]))
    size = int(float(ctx.params["megabytes"]) * 1e6)
    count = int(ctx.params["rounds"])
    buffers = int(ctx.params["buffer_kb"]) * 1024
    expected = pattern_sha256(ctx.seed, size)
    path = check_path(str(ctx.params["path"]))
    rounds: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    failed: set[str] = set()
    errors: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="testbed-tls-") as scratch, \
            path_network(path) as net, \
            ctx.progress(count * len(labels), "throughput") as progress:
        from testbed.apps.tls_material import write_self_signed

        cert, key = write_self_signed(Path(scratch))
        client, server = net.get("client"), net.get("server")
        meter = EngineMeter(net)
        for index in range(count):
            for label in labels:
                try:
                    row = bulk_transfer(client, server, label, size, ctx.seed, buffers,
                                        cert, key, expected, meter=meter)
                except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as error:
                    failed.add(label)
                    ctx.warn(f"{label} round {index}: transfer failed: {error}")
                    errors.append({"protocol": label, "round": index, "integrity_ok": False,
                                   "error": str(error)[-200:]})
                    progress.advance()
                    continue
                row = {"protocol": label, "round": index, "path": path,
                       **{k: v for k, v in row.items() if k != "protocol"}}
                received_bytes, received_sha256 = (row.pop("received_bytes"),
                                                   row.pop("received_sha256"))
                rounds[label].append(row)
                if "engine_busy" in row:
                    warning = engine_bound({"mb1": row["engine_busy"]},
                                           {"sender": row["sender_cpu"],
                                            "receiver": row["receiver_cpu"]})
                    if warning:
                        ctx.warn(f"{label} round {index}: {warning}")
                if not row["sha256_ok"]:
                    failed.add(label)
                    ctx.warn(f"{label} round {index}: SHA-256 or length mismatch "
                             f"(received {received_bytes} bytes, "
                             f"{received_sha256[:16]}..., expected "
                             f"{size} bytes, {expected[:16]}...); no metric reported")
                    errors.append({"protocol": label, "round": index, "integrity_ok": False,
                                   "error": "sha256 mismatch"})
                if PROTOCOLS[label].tcpcrypt_suite and not row["encrypted"]:
                    failed.add(label)
                    ctx.warn(f"{label} round {index}: the connection was not encrypted; "
                             "no metric reported")
                progress.advance()
        ctx.add_environment("offloads", read_offloads(net))
        for text in engine_warnings(stop_middleboxes(net)):
            ctx.warn(text)
    ctx.add_environment("topology", describe_topology(path))
    ctx.add_environment("path", path)
    if path != "none":
        ctx.add_environment("engine_cpu_note", sharing_note())
    cores = os.cpu_count() or 1
    if os.getloadavg()[0] > cores:
        ctx.warn(f"load average {os.getloadavg()[0]:.1f} exceeds the {cores} cores: noisy figures")
    summaries = [_summary(label, rounds[label], path) for label in labels if rounds[label]]
    metrics: dict[str, float] = {}
    for summary in summaries:
        label = str(summary["protocol"])
        if label in failed:
            continue
        metrics[f"throughput.mbps.{label}"] = float(summary["mbps"])
        metrics[f"throughput.sender_cpu.{label}"] = float(summary["sender_cpu"])
        metrics[f"throughput.receiver_cpu.{label}"] = float(summary["receiver_cpu"])
        if "engine_cpu" in summary:
            metrics[f"throughput.engine_cpu.{label}"] = float(summary["engine_cpu"])
    per_round = [row for label in labels for row in rounds[label]] if count > 1 else []
    figures = [_figure(ctx.out_dir, summaries, rounds, failed)] if summaries else []
    return ExperimentOutput(summaries + per_round + errors, metrics, figures)
