"""Scenario: a client and a server host in Mininet (linked directly, real kernel TCP, no
shaping), the client streaming N MB of seeded pseudo-random data to the server over each
protocol in turn, rounds interleaved (tcp, tls13, tcpcrypt, tcp, ...); the server hashes what it
read with SHA-256 and the run compares it with the sender's hash and with the hash of the
pattern recomputed from the seed.

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

import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from testbed.apps.bulk import MAX_BYTES, pattern_sha256
from testbed.apps.hosts import cpu_ns, run_module_json, start_module
from testbed.apps.protocols import PROTOCOLS
from testbed.apps.tcpcryptd_host import start_tcpcryptd, stop_tcpcryptd, tcpcrypt_cli
from testbed.emulation.network import emulated_network
from testbed.emulation.offloads import read_offloads
from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param, RunContext
from topologies.line import LineTopo

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
    if not labels:
        raise ValueError("no protocol given")
    if len(set(labels)) != len(labels):
        raise ValueError(f"a protocol is listed twice: {labels}")
    return labels


def _megabytes(value: object) -> None:
    size = float(str(value)) * 1e6
    if not 1 <= size <= MAX_BYTES:
        raise ValueError(f"must be above 0 and at most {MAX_BYTES / 1e6:.0f} MB, got {value}")


def _positive(value: object) -> None:
    if int(str(value)) < 1:
        raise ValueError(f"must be at least 1, got {value}")


def _buffers(value: object) -> None:
    if not 0 <= int(str(value)) <= 256 * 1024:
        raise ValueError(f"must be 0 (kernel autotuning) to 262144 KiB, got {value}")


SPEC = ExperimentSpec(
    name="throughput",
    description="bulk transfer Mbit/s and CPU, SHA-256 checked: TCP, TLS 1.3, tcpcrypt (Mininet)",
    runtime="emulation",
    params=(
        Param("megabytes", 500.0, quick=20.0, help="data sent per transfer (MB, 10^6 bytes)",
              validate=_megabytes),
        Param("rounds", 3, quick=1, help="transfers per protocol, interleaved (median taken)",
              validate=_positive),
        Param("protocols", ",".join(SUPPORTED), help="comma-separated protocol labels",
              validate=lambda text: _protocols(str(text))),
        Param("buffer_kb", 4096, help="socket buffers of both programs, KiB (0: autotuning)",
              validate=_buffers),
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
)


def _start_daemons(client: Any, server: Any, suite: str | None) -> list[subprocess.Popen[str]]:
    """tcpcryptd on both hosts for a tcpcrypt protocol ([] for the others)."""
    if suite is None:
        return []
    started: list[subprocess.Popen[str]] = []
    try:
        for host in (client, server):
            started.append(start_tcpcryptd(host, ports=[PORT], suites=(suite,), cache_size=0))
    except BaseException:
        for daemon in started:
            stop_tcpcryptd(daemon)
        raise
    return started


def _read_report(process: subprocess.Popen[str]) -> dict[str, Any]:
    """The receiver's JSON line for the transfer just made."""
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError("the receiver exited without a report")
    report: dict[str, Any] = json.loads(line)
    return report


def _transfer(
    client: Any, server: Any, label: str, size: int, seed: int, buffers: int,
    cert: Path, key: Path,
) -> dict[str, Any]:
    """One transfer over `label`: the measurements of both ends, daemons included."""
    spec = PROTOCOLS[label]
    receiver_args = ["receive", "--port", str(PORT), "--buffers", str(buffers)]
    sender_args = ["send", "--host", server.IP(), "--port", str(PORT), "--bytes", str(size),
                   "--seed", str(seed), "--buffers", str(buffers)]
    if spec.tls:
        receiver_args += ["--tls", spec.tls, "--cert", str(cert), "--key", str(key)]
        sender_args += ["--tls", spec.tls]
    if spec.library_suite:
        receiver_args += ["--tcpcrypt", spec.library_suite]
        sender_args += ["--tcpcrypt", spec.library_suite]
    daemons = _start_daemons(client, server, spec.daemon_suite)
    receiver = start_module(server, "testbed.apps.bulk", *receiver_args)
    try:
        daemon_before = [cpu_ns(daemon.pid) for daemon in daemons]
        sent = run_module_json(client, "testbed.apps.bulk", *sender_args)
        daemon_cpu_s = [(cpu_ns(d.pid) - b) / 1e9 for d, b in zip(daemons, daemon_before,
                                                                   strict=True)]
        received = _read_report(receiver)
        sessions = tcpcrypt_cli(server, "sessions") if daemons else []
    finally:
        receiver.kill()
        receiver.wait()
        for daemon in daemons:
            stop_tcpcryptd(daemon)
    encrypted = bool(spec.tls) or (bool(spec.library_suite) and bool(sent.get("encrypted"))
                                   and bool(received.get("encrypted")))
    if daemons:
        carried = [s for s in sessions if s["role"] == "B"]
        encrypted = bool(carried) and bool(carried[-1]["encrypted"])
    return {"sent": sent, "received": received, "daemon_cpu_s": daemon_cpu_s,
            "encrypted": encrypted}


def _round_row(label: str, index: int, outcome: dict[str, Any], expected: str,
               size: int) -> dict[str, Any]:
    sent, received = outcome["sent"], outcome["received"]
    seconds = float(received["seconds"])
    daemon_a, daemon_b = (outcome["daemon_cpu_s"] + [0.0, 0.0])[:2]
    sha_ok = (received["sha256"] == sent["sha256"] == sent["peer_sha256"] == expected
              and received["bytes"] == size)
    return {
        "protocol": label,
        "round": index,
        "mbytes": received["bytes"] / 1e6,
        "seconds": seconds,
        "mbps": float(received["mbps"]),
        "sha256_ok": sha_ok,
        "encrypted": outcome["encrypted"],
        # CPU per second of transfer (1.0: one core busy): the program plus its host's daemon
        "sender_cpu": (float(sent["cpu_s"]) + daemon_a) / float(sent["send_seconds"]),
        "receiver_cpu": (float(received["cpu_s"]) + daemon_b) / seconds,
        "daemon_a_cpu": daemon_a / float(sent["send_seconds"]),
        "daemon_b_cpu": daemon_b / seconds,
    }


def _summary(label: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The protocol's row: medians over its rounds."""
    def median(key: str) -> float:
        return statistics.median(float(r[key]) for r in rounds)

    return {
        "protocol": label,
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
    rounds: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    failed: set[str] = set()
    errors: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="testbed-tls-") as scratch, \
            emulated_network(LineTopo()) as net, \
            ctx.progress(count * len(labels), "throughput") as progress:
        from testbed.apps.tls_material import write_self_signed

        cert, key = write_self_signed(Path(scratch))
        client, server = net.get("client"), net.get("server")
        for index in range(count):
            for label in labels:
                try:
                    outcome = _transfer(client, server, label, size, ctx.seed, buffers,
                                        cert, key)
                    if "error" in outcome["received"]:
                        raise RuntimeError(f"receiver: {outcome['received']['error']}")
                except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as error:
                    failed.add(label)
                    ctx.warn(f"{label} round {index}: transfer failed: {error}")
                    errors.append({"protocol": label, "round": index, "integrity_ok": False,
                                   "error": str(error)[-200:]})
                    progress.advance()
                    continue
                row = _round_row(label, index, outcome, expected, size)
                rounds[label].append(row)
                if not row["sha256_ok"]:
                    failed.add(label)
                    ctx.warn(f"{label} round {index}: SHA-256 or length mismatch "
                             f"(received {outcome['received']['bytes']} bytes, "
                             f"{outcome['received']['sha256'][:16]}..., expected "
                             f"{size} bytes, {expected[:16]}...); no metric reported")
                    errors.append({"protocol": label, "round": index, "integrity_ok": False,
                                   "error": "sha256 mismatch"})
                if PROTOCOLS[label].tcpcrypt_suite and not row["encrypted"]:
                    failed.add(label)
                    ctx.warn(f"{label} round {index}: the connection was not encrypted; "
                             "no metric reported")
                progress.advance()
        ctx.add_environment("offloads", read_offloads(net))
    ctx.add_environment("topology", "line: client - server, linked directly, no middlebox")
    cores = os.cpu_count() or 1
    if os.getloadavg()[0] > cores:
        ctx.warn(f"load average {os.getloadavg()[0]:.1f} exceeds the {cores} cores: noisy figures")
    summaries = [_summary(label, rounds[label]) for label in labels if rounds[label]]
    metrics: dict[str, float] = {}
    for summary in summaries:
        label = str(summary["protocol"])
        if label in failed:
            continue
        metrics[f"throughput.mbps.{label}"] = float(summary["mbps"])
        metrics[f"throughput.sender_cpu.{label}"] = float(summary["sender_cpu"])
        metrics[f"throughput.receiver_cpu.{label}"] = float(summary["receiver_cpu"])
    per_round = [row for label in labels for row in rounds[label]] if count > 1 else []
    figures = [_figure(ctx.out_dir, summaries, rounds, failed)] if summaries else []
    return ExperimentOutput(summaries + per_round + errors, metrics, figures)
