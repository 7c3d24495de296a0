"""The two measurements the client-server experiments share, one implementation each:

- `bulk_transfer`: N bytes of a seeded pattern from the client to the server over one
  protocol (`testbed.apps.bulk`), SHA-256 checked; Mbit/s and the CPU of each end (program and
  its host's tcpcryptd) per second of transfer. Used by `throughput` and `middlebox-matrix`.
- `connection_cost`: the load generator's small request/response connections
  (`testbed.apps.loadgen` against `testbed.apps.rr_server`); latency to the first byte, the
  server's CPU per connection (its daemon included) and its system time, and the TCP-ENO
  kernel program's runs and run time per connection. Used by `connect` and `middlebox-matrix`.
  A `tcpcrypt-*+METHOD` label also authenticates each session (`testbed.apps.session_auth`);
  its row says which share was authenticated, and names the first failure in `error`.

Both run inside an emulated network's `client` and `server` hosts. `tcpcrypt-*` labels run
the programs through the in-process library (TCP-ENO in the kernel program the emulation
runtime loads), which reports per connection whether it was encrypted and resumed;
`tcpcryptd-*` labels run the plain-TCP programs with tcpcryptd started and stopped on both
hosts, and take encryption and resumption from the server daemon's records. Given an
`EngineMeter`, both add the cores the path's middlebox engines used while the transfer or the
connections ran (`engine_cpu`).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tcpcrypt.kernel.stats import enable_stats
from testbed.apps.hosts import cpu_ns, run_module_json, start_module, user_and_system_s
from testbed.apps.protocols import PROTOCOLS, ProtocolSpec
from testbed.apps.session_auth import BATCH_MAX, BATCH_WINDOW_MS
from testbed.apps.tcpcryptd_host import start_tcpcryptd, stop_tcpcryptd, tcpcrypt_cli
from testbed.emulation.kernel_program import kernel_program_runs
from testbed.emulation.paths import EngineMeter, engine_figures

PORT = 8000
KERNEL_TIME_MIN_TICKS = 20


def start_daemons(client: Any, server: Any, suite: str | None, port: int,
                  cache_size: int = 0) -> list[subprocess.Popen[str]]:
    """tcpcryptd on both hosts for a tcpcrypt protocol ([] for the others)."""
    if suite is None:
        return []
    started: list[subprocess.Popen[str]] = []
    try:
        for host in (client, server):
            started.append(start_tcpcryptd(host, ports=[port], suites=(suite,),
                                           cache_size=cache_size))
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


def _engine_since(meter: EngineMeter | None) -> dict[str, tuple[float, float]]:
    return meter.since() if meter is not None else {}


def bulk_transfer(client: Any, server: Any, label: str, size: int, seed: int, buffers: int,
                  cert: Path, key: Path, expected_sha256: str, *, port: int = PORT,
                  meter: EngineMeter | None = None) -> dict[str, Any]:
    """One transfer over `label`: its row (Mbit/s, SHA-256 verdict, encryption, CPU per
    second of each end, engines' cores). RuntimeError if the transfer failed."""
    spec = PROTOCOLS[label]
    receiver_args = ["receive", "--port", str(port), "--buffers", str(buffers)]
    sender_args = ["send", "--host", server.IP(), "--port", str(port), "--bytes", str(size),
                   "--seed", str(seed), "--buffers", str(buffers)]
    if spec.tls:
        receiver_args += ["--tls", spec.tls, "--cert", str(cert), "--key", str(key)]
        sender_args += ["--tls", spec.tls]
    if spec.library_suite:
        receiver_args += ["--tcpcrypt", spec.library_suite]
        sender_args += ["--tcpcrypt", spec.library_suite]
    daemons = start_daemons(client, server, spec.daemon_suite, port)
    try:
        receiver = start_module(server, "testbed.apps.bulk", *receiver_args)
    except BaseException:
        for daemon in daemons:
            stop_tcpcryptd(daemon)
        raise
    try:
        daemon_before = [cpu_ns(daemon.pid) for daemon in daemons]
        if meter is not None:
            meter.restart()
        sent = run_module_json(client, "testbed.apps.bulk", *sender_args)
        engine_s = _engine_since(meter)  # nearly all of it during the transfer itself
        daemon_cpu_s = [(cpu_ns(d.pid) - b) / 1e9 for d, b in zip(daemons, daemon_before,
                                                                   strict=True)]
        received = _read_report(receiver)
        sessions = tcpcrypt_cli(server, "sessions") if daemons else []
    finally:
        receiver.kill()
        receiver.wait()
        for daemon in daemons:
            stop_tcpcryptd(daemon)
    if "error" in received:
        raise RuntimeError(f"receiver: {received['error']}")
    encrypted = bool(spec.tls) or (bool(spec.library_suite) and bool(sent.get("encrypted"))
                                   and bool(received.get("encrypted")))
    if daemons:
        carried = [s for s in sessions if s["role"] == "B"]
        encrypted = bool(carried) and bool(carried[-1]["encrypted"])
    row = bulk_row(label, sent, received, daemon_cpu_s, encrypted, expected_sha256, size)
    row.update(engine_figures(engine_s, row["seconds"]))
    return row


def bulk_row(label: str, sent: dict[str, Any], received: dict[str, Any],
             daemon_cpu_s: list[float], encrypted: bool, expected_sha256: str,
             size: int) -> dict[str, Any]:
    """A transfer's row from both ends' reports: the SHA-256 verdict (receiver, sender,
    recomputed pattern and length all agree) and the CPU of each end per second."""
    seconds = float(received["seconds"])
    daemon_a, daemon_b = (daemon_cpu_s + [0.0, 0.0])[:2]
    return {
        "protocol": label,
        "mbytes": received["bytes"] / 1e6,
        "seconds": seconds,
        "mbps": float(received["mbps"]),
        "sha256_ok": (received["sha256"] == sent["sha256"] == sent["peer_sha256"]
                      == expected_sha256 and received["bytes"] == size),
        "encrypted": encrypted,
        # CPU per second of transfer (1.0: one core busy): the program plus its host's daemon
        "sender_cpu": (float(sent["cpu_s"]) + daemon_a) / float(sent["send_seconds"]),
        "receiver_cpu": (float(received["cpu_s"]) + daemon_b) / seconds,
        "daemon_a_cpu": daemon_a / float(sent["send_seconds"]),
        "daemon_b_cpu": daemon_b / seconds,
        "received_bytes": received["bytes"],
        "received_sha256": received["sha256"],
        **sender_tcp(sent.get("tcp") or {}),
    }


def sender_tcp(limits: dict[str, Any]) -> dict[str, Any]:
    """The sender's TCP figures for a row (`testbed.apps.tcp_info`): its congestion control,
    smoothed and minimum RTT, and the share of its busy time its congestion window (or pacing)
    held it back; none of them when the kernel did not say."""
    names = {"congestion": "congestion", "srtt_ms": "sender_srtt_ms",
             "min_rtt_ms": "sender_min_rtt_ms", "cwnd_limited": "sender_cwnd_limited",
             "retransmits": "sender_retransmits"}
    return {row_key: limits[key] for key, row_key in names.items() if key in limits}


def kernel_us(system_s: float, connections: int) -> float | None:
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


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _auth_args(spec: ProtocolSpec, scratch: Path) -> tuple[list[str], list[str]]:
    """The server's and the load generator's arguments for the row's authentication method
    (batch-sign: the server writes its per-run public key into `scratch`, the client trusts
    it)."""
    if spec.auth is None:
        return [], []
    if spec.auth != "batch-sign":
        return ["--auth", spec.auth], []
    public_key = str(scratch / "batch-sign-public.pem")
    return (["--auth", spec.auth, "--public-key-out", public_key,
             "--batch-window-ms", str(BATCH_WINDOW_MS)], ["--trusted-key", public_key])


def _auth_figures(spec: ProtocolSpec, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """A `+METHOD` row's authentication columns: the share of connections authenticated (a
    failed one counts 0) and the first failure as `error`; nothing for other rows."""
    if spec.auth is None:
        return {}
    failures = [s["auth_error"] for s in samples if "auth_error" in s]
    return {
        "auth": spec.auth,
        "authenticated": sum(s.get("authenticated", 0.0) for s in samples) / len(samples),
        "auth_failures": len(failures),
        "batch_window_ms": BATCH_WINDOW_MS if spec.auth == "batch-sign" else None,
        "batch_max": BATCH_MAX if spec.auth == "batch-sign" else None,
        "error": f"{len(failures)} of {len(samples)} failed: {failures[0]}" if failures
        else None,
    }


def connection_cost(client: Any, server: Any, label: str, count: int, response_bytes: int,
                    cert: Path, key: Path, *, port: int = PORT,
                    meter: EngineMeter | None = None) -> dict[str, Any]:
    """`count` connections over `label`: latency, server CPU per connection (daemon
    included) and its system time, the kernel program's cost, the share encrypted and resumed
    (the library's own report, or the server daemon's records for tcpcryptd), the engines'
    cores and the server's."""
    row, _ = measure_connections(client, server, label, count, response_bytes, cert, key,
                                 port=port, meter=meter)
    return row


def measure_connections(client: Any, server: Any, label: str, count: int,
                        response_bytes: int, cert: Path, key: Path, *, port: int = PORT,
                        meter: EngineMeter | None = None
                        ) -> tuple[dict[str, Any], dict[str, float]]:
    """`connection_cost`'s row, and the raw figures rows of several rounds are combined from
    (`testbed.connect_rounds`): the server's and its daemon's system seconds and the
    connections the server handled."""
    spec = PROTOCOLS[label]
    args = ["--port", str(port), "--response-bytes", str(response_bytes)]
    if spec.tls:
        args += ["--tls", spec.tls, "--cert", str(cert), "--key", str(key)]
    if spec.library_suite:
        args += ["--tcpcrypt", spec.library_suite] + (["--resumption"] if spec.resumed else [])
    scratch = Path(tempfile.mkdtemp(prefix="testbed-auth-"))
    server_auth, client_auth = _auth_args(spec, scratch)
    daemons = start_daemons(client, server, spec.daemon_suite, port,
                            cache_size=1024 if spec.resumed else 0)
    try:
        process = start_module(server, "testbed.apps.rr_server", *args, *server_auth)
    except BaseException:
        for daemon in daemons:
            stop_tcpcryptd(daemon)
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    try:
        server_pids = [process.pid] + ([daemons[1].pid] if daemons else [])
        with enable_stats() as counting:
            before = sum(cpu_ns(pid) for pid in server_pids)
            daemon_before = cpu_ns(daemons[1].pid) if daemons else 0
            split_before = user_and_system_s(daemons[1].pid) if daemons else (0.0, 0.0)
            server_split_before = user_and_system_s(process.pid)
            bpf_before = kernel_program_runs() if counting else None
            if meter is not None:
                meter.restart()
            started = time.monotonic()
            report = run_module_json(
                client, "testbed.apps.loadgen", "--host", server.IP(), "--port", str(port),
                "--protocol", label, "--connections", str(count), *client_auth,
            )
            wall_s = time.monotonic() - started
            engines = engine_figures(_engine_since(meter), wall_s)
            used = sum(cpu_ns(pid) for pid in server_pids) - before
            daemon_used = cpu_ns(daemons[1].pid) - daemon_before if daemons else 0
            split_after = user_and_system_s(daemons[1].pid) if daemons else (0.0, 0.0)
            server_split_after = user_and_system_s(process.pid)
            bpf_after = kernel_program_runs() if counting else None
        sessions = tcpcrypt_cli(server, "sessions") if daemons else []
    finally:
        process.kill()
        process.wait()
        for daemon in daemons:
            stop_tcpcryptd(daemon)
        shutil.rmtree(scratch, ignore_errors=True)
    auth = _auth_figures(spec, report["samples"])
    samples = [s for s in report["samples"] if "auth_error" not in s]
    if not samples:
        raise RuntimeError(f"{label}: no connection succeeded ({auth.get('error')})")
    first_byte = [s["first_byte_ms"] for s in samples]
    resumed = sum(s["resumed"] for s in samples) / len(samples)
    encrypted = 1.0 if spec.tls else 0.0
    if spec.library_suite:  # the library says per connection what it got
        encrypted = sum(s["encrypted"] for s in samples) / len(samples)
    if daemons:
        measured = [s for s in sessions if s["role"] == "B"][-count:]
        encrypted = sum(bool(s["encrypted"]) for s in measured) / max(1, len(measured))
        resumed = sum(bool(s["resumed"]) for s in measured) / max(1, len(measured))
    handled = count + (1 if spec.resumed else 0)
    row: dict[str, Any] = {
        "protocol": label,
        "latency_ms": statistics.median(first_byte),
        "p90_ms": percentile(first_byte, 0.9),
        "connect_ms": statistics.median(s["connect_ms"] for s in samples),
        "ready_ms": statistics.median(s["ready_ms"] for s in samples),
        "server_cpu_us": used / handled / 1000,
        "daemon_cpu_us": daemon_used / handled / 1000,
        "daemon_kernel_us": kernel_us(split_after[1] - split_before[1], handled),
        "server_kernel_us": kernel_us(server_split_after[1] - server_split_before[1], handled),
        **_bpf_cost(bpf_before, bpf_after, handled),
        "resumed": resumed,
        "encrypted": encrypted,
        "server_cores": used / 1e9 / wall_s if wall_s > 0 else 0.0,
        "first_byte_samples_ms": first_byte,  # every connection's; callers keep them apart
        **auth,
    }
    row.update(engines)
    raw = {"server_system_s": server_split_after[1] - server_split_before[1],
           "daemon_system_s": split_after[1] - split_before[1], "handled": float(handled)}
    return row, raw
