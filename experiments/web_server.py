"""Scenario: a real web server, Apache httpd from Debian (mpm_event, its own configuration in a
temporary directory), in the server host of a two-host Mininet line, and wrk in the client
host requesting a small page, with a new connection per request (`close`, the paper's worst
case) and over kept-alive connections (`keepalive`). Server and client are pinned to
different cores (server: core 0, client: core 1; the hosts' daemons with them).

Covers: requests/s, median and p99 latency, and server CPU per request (Apache's parent, its
children, and for tcpcrypt the server's tcpcryptd) for plain HTTP (`tcp`), HTTPS with TLS 1.2
and RSA key exchange (the paper's SSL), TLS 1.3 without resumption (session cache and tickets
off on the server, so every handshake is full even though wrk would resume) and with it, and
plain HTTP through tcpcryptd (X25519) on both hosts. Each row says which side saturated (a
side using 85% of its core or more), and for TLS how many requests came over a resumed
session (Apache logs it per request).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param, RunContext

PORT = 8080
MODES = ("close", "keepalive")
SATURATED = 0.85  # share of one core
SERVER_CORE, CLIENT_CORE = "0", "1"


def _labels(text: str) -> list[str]:
    from testbed.apps.apache import WEB_PROTOCOLS

    labels = [label.strip() for label in text.split(",") if label.strip()]
    unknown = [label for label in labels if label not in WEB_PROTOCOLS]
    if unknown or not labels:
        raise ValueError(f"unknown protocols {unknown}; known: {', '.join(WEB_PROTOCOLS)}")
    return labels


def _modes(text: str) -> list[str]:
    modes = [mode.strip() for mode in text.split(",") if mode.strip()]
    if not modes or any(mode not in MODES for mode in modes):
        raise ValueError(f"modes are {', '.join(MODES)}, separated by ','; got {text!r}")
    return modes


SPEC = ExperimentSpec(
    name="web-server",
    description="Apache httpd: req/s, latency, server CPU per request; HTTP, HTTPS, tcpcryptd "
                "(Mininet)",
    runtime="emulation",
    params=(
        Param("protocols", "tcp,tls12-rsa,tls13,tls13-resumed,tcpcryptd-x25519",
              help="separated by ','", validate=lambda text: _labels(str(text))),
        Param("modes", "close,keepalive", help="close (a connection per request), keepalive",
              validate=lambda text: _modes(str(text))),
        Param("seconds", 10.0, quick=3.0, help="wrk duration per protocol and mode",
              low=1, high=120),
        Param("connections", 32, quick=16, help="wrk's concurrent connections",
              low=1, high=512),
    ),
    expectations=tuple(
        Expectation(f"keep-alive: {label} within 2x of plain HTTP's requests/s",
                    lhs=f"web.rps.{label}.keepalive", op=">=", rhs="web.rps.tcp.keepalive",
                    factor=0.5, source="issue 11")
        for label in ("tls12-rsa", "tls13", "tls13-resumed", "tcpcryptd-x25519")
    ),
    bench=True,
    rows_param="protocols",
    points_param="modes",
)


def _pin(pid: int, cores: str) -> None:
    """Every thread of `pid` onto `cores` (a daemon started before we could wrap it)."""
    subprocess.run(["taskset", "-a", "-pc", cores, str(pid)], capture_output=True, check=True)


def _process_cpu_s(pid: int) -> float:
    from testbed.apps.hosts import cpu_ns

    return cpu_ns(pid) / 1e9


def _wrk(client: Any, url: str, ctx: RunContext, mode: str) -> dict[str, float]:
    import json

    args = ["taskset", "-c", CLIENT_CORE, sys.executable, "-m", "testbed.apps.wrk_runner",
            "--url", url, "--connections", str(ctx.params["connections"]),
            "--seconds", str(ctx.params["seconds"])]
    if mode == "close":
        args.append("--close")
    process = client.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, error = process.communicate(timeout=float(ctx.params["seconds"]) + 120)
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed in {client.name}: {error.strip()[-400:]}")
    figures: dict[str, float] = json.loads(out)
    return figures


def _side(server_cores: float, client_cores: float) -> str:
    server, client = server_cores >= SATURATED, client_cores >= SATURATED
    if server and client:
        return "both"
    return "server" if server else "client" if client else "neither"


def _measure(ctx: RunContext, net: Any, label: str, scratch: Path, cert: Path, key: Path
             ) -> list[dict[str, Any]]:
    import time

    from testbed.apps.apache import (
        WEB_PROTOCOLS,
        resumption_counts,
        server_cpu_s,
        start_apache,
        stop_apache,
        write_config,
    )
    from testbed.apps.tcpcryptd_host import start_tcpcryptd, stop_tcpcryptd, tcpcrypt_cli

    protocol = WEB_PROTOCOLS[label]
    client, server = net.get("client"), net.get("server")
    directory = scratch / label
    config = write_config(directory, PORT, protocol, cert, key)
    scheme = "https" if protocol.tls else "http"
    url = f"{scheme}://{server.IP()}:{PORT}/index.html"
    daemons: list[subprocess.Popen[str]] = []
    rows: list[dict[str, Any]] = []
    apache = None
    try:
        if protocol.tcpcrypt:
            for host, core in ((client, CLIENT_CORE), (server, SERVER_CORE)):
                daemons.append(start_tcpcryptd(host, ports=[PORT], suites=("x25519",)))
                _pin(daemons[-1].pid, core)
        apache = start_apache(server, config, PORT, SERVER_CORE)
        for mode in _modes(str(ctx.params["modes"])):
            before_log = resumption_counts(directory)
            started = time.monotonic()
            before = server_cpu_s(apache.pid) + sum(_process_cpu_s(d.pid) for d in daemons[1:])
            client_before = sum(_process_cpu_s(d.pid) for d in daemons[:1])
            figures = _wrk(client, url, ctx, mode)
            wall = time.monotonic() - started
            used = server_cpu_s(apache.pid) + sum(_process_cpu_s(d.pid) for d in daemons[1:])
            used -= before
            client_used = figures["client_cpu_s"] + sum(
                _process_cpu_s(d.pid) for d in daemons[:1]) - client_before
            requests = max(figures["requests"], 1.0)
            row: dict[str, Any] = {
                "protocol": label, "mode": mode, "rps": figures["rps"],
                "p50_ms": figures.get("p50_ms"), "p99_ms": figures.get("p99_ms"),
                "server_cpu_us": used / requests * 1e6,
                "server_cores": used / wall, "client_cores": client_used / wall,
                "saturated": _side(used / wall, client_used / wall),
                "errors": figures["socket_errors"] + figures["bad_responses"],
                "resumed": None, "encrypted": None,  # TLS, tcpcrypt: filled below
            }
            if protocol.tls:
                after_log = resumption_counts(directory)
                resumed = after_log.get("Resumed", 0) - before_log.get("Resumed", 0)
                total = sum(after_log.values()) - sum(before_log.values())
                row["resumed"] = resumed / total if total else None
            rows.append(row)
        if daemons:
            sessions = [s for s in tcpcrypt_cli(server, "sessions") if s.get("role") == "B"]
            share = sum(bool(s.get("encrypted")) for s in sessions) / max(1, len(sessions))
            for row in rows:
                row["encrypted"] = share
    finally:
        if apache is not None:
            stop_apache(apache, config)
        for daemon in daemons:
            stop_tcpcryptd(daemon)
    return rows


def run(ctx: RunContext) -> ExperimentOutput:
    from testbed.apps.tls_material import write_self_signed
    from testbed.emulation.network import emulated_network
    from topologies.line import LineTopo

    if (os.cpu_count() or 1) < 2:
        ctx.warn("one core only: server and client share it, requests/s are not the server's")
    labels = _labels(str(ctx.params["protocols"]))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="testbed-web-") as scratch, \
            emulated_network(LineTopo()) as net, \
            ctx.progress(len(labels), "web server") as progress:
        Path(scratch).chmod(0o755)  # Apache's children (www-data) read the pages below it
        cert, key = write_self_signed(Path(scratch))
        for label in labels:
            rows.extend(_measure(ctx, net, label, Path(scratch), cert, key))
            progress.advance()
    metrics: dict[str, float] = {}
    for row in rows:
        if row.get("encrypted") is not None and row["encrypted"] < 1.0:
            ctx.warn(f"{row['protocol']}: only {row['encrypted']:.0%} of the server daemon's "
                     "records encrypted; no metric reported")
            continue
        if row["errors"] > 0.01 * row["rps"] * float(ctx.params["seconds"]):
            ctx.warn(f"{row['protocol']} {row['mode']}: {row['errors']:.0f} requests failed "
                     "(socket errors or non-2xx responses); no metric reported")
            continue
        if row.get("resumed") is not None and (row["resumed"] > 0) != row["protocol"].endswith(
                "-resumed") and row["mode"] == "close":
            ctx.warn(f"{row['protocol']} close: {row['resumed']:.0%} of requests resumed")
        name = f"{row['protocol']}.{row['mode']}"
        metrics[f"web.rps.{name}"] = row["rps"]
        metrics[f"web.server_cpu_us.{name}"] = row["server_cpu_us"]
        if row["p50_ms"] is not None:
            metrics[f"web.p50_ms.{name}"] = row["p50_ms"]
    ctx.add_environment("web_server", {
        "apache": subprocess.run(["/usr/sbin/apache2", "-v"], capture_output=True, text=True,
                                 check=False).stdout.splitlines()[:1],
        "wrk": "wrk (Debian)", "server_core": SERVER_CORE, "client_core": CLIENT_CORE,
        "mpm": "event, one child process"})
    return ExperimentOutput(rows, metrics)
