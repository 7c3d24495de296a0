"""Apache httpd (Debian's apache2) inside an emulated host, with a configuration of its own.

Everything the server reads or writes lives in one temporary directory: ServerRoot, the
configuration, PidFile, DefaultRuntimeDir and its mutexes, the error log, the resumption log
and the page. mpm_event with one child process (threads serve the connections), so that the
server's CPU is the parent's and that child's; KeepAlive on without a request limit. Started
with -DFOREGROUND (the parent stays the process we started), pinned with taskset, stopped with
SIGTERM (Apache's own stop: the parent stops its children) and anything left killed by pid.

Protocols: `tcp` (plain HTTP); `tls12-rsa` (TLS 1.2 with RSA key exchange, AES128-GCM-SHA256,
as the paper's SSL); `tls13`, each with session caches and tickets off so that no handshake resumes;
`tls13-resumed` (shmcb session cache and tickets on); `tcpcryptd-x25519` (plain HTTP with
tcpcryptd on both hosts, set up by the experiment). For TLS the server logs whether each
request's session was resumed, so the run can say what really happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.apps.hosts import stop_process, wait_until_listening

APACHE = "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")
PAGE_BYTES = 128  # "a small page"


@dataclass(frozen=True)
class WebProtocol:
    label: str
    tls: str | None = None  # "TLSv1.2" or "TLSv1.3"
    resumption: bool = False
    tcpcrypt: bool = False


WEB_PROTOCOLS: dict[str, WebProtocol] = {p.label: p for p in (
    WebProtocol("tcp"),  # plain HTTP
    WebProtocol("tls12-rsa", "TLSv1.2"),
    WebProtocol("tls13", "TLSv1.3"),
    WebProtocol("tls13-resumed", "TLSv1.3", resumption=True),
    WebProtocol("tcpcryptd-x25519", tcpcrypt=True),
)}


def _tls_lines(protocol: WebProtocol, directory: Path, cert: Path, key: Path) -> list[str]:
    if protocol.tls is None:
        return []
    lines = [
        f"LoadModule ssl_module {MODULES}/mod_ssl.so",
        f"LoadModule socache_shmcb_module {MODULES}/mod_socache_shmcb.so",
        "SSLEngine on",
        f"SSLCertificateFile {cert}",
        f"SSLCertificateKeyFile {key}",
        f"SSLProtocol -all +{protocol.tls}",
        'LogFormat "%{SSL_SESSION_RESUMED}x" resumed',
        # unbuffered: a buffered log holds a short run's lines until a child exits, and the
        # resumption share was then read from an empty file (a write per request costs a few
        # us against a TLS handshake's ~1 ms)
        f'CustomLog "{directory}/resumed.log" resumed',
    ]
    if protocol.tls == "TLSv1.2":
        lines.append("SSLCipherSuite AES128-GCM-SHA256")  # RSA key exchange, no ECDHE
    if protocol.resumption:
        lines += [f"SSLSessionCache shmcb:{directory}/run/ssl_cache(512000)",
                  "SSLSessionTickets on"]
    else:
        lines += ["SSLSessionCache none", "SSLSessionTickets off"]
    return lines


def write_config(directory: Path, port: int, protocol: WebProtocol, cert: Path, key: Path,
                 threads: int = 64) -> Path:
    """The configuration (and the page) for one protocol, in `directory`."""
    (directory / "run").mkdir(parents=True, exist_ok=True)
    docs = directory / "htdocs"
    docs.mkdir(exist_ok=True)
    (docs / "index.html").write_text("x" * (PAGE_BYTES - 1) + "\n")
    for path in (directory, docs, docs / "index.html"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the www-data children read the page
    lines = [
        f'ServerRoot "{directory}"',
        f'PidFile "{directory}/httpd.pid"',
        f'DefaultRuntimeDir "{directory}/run"',
        f"Mutex file:{directory}/run default",
        f'ErrorLog "{directory}/error.log"',
        "LogLevel warn",
        f"LoadModule mpm_event_module {MODULES}/mod_mpm_event.so",
        f"LoadModule authz_core_module {MODULES}/mod_authz_core.so",
        "User www-data",
        "Group www-data",
        "ServerName web-server",
        f"Listen {port}",
        f'DocumentRoot "{docs}"',
        f'<Directory "{docs}">',
        "    Require all granted",
        "</Directory>",
        "StartServers 1",
        "ServerLimit 1",
        f"ThreadsPerChild {threads}",
        f"ThreadLimit {threads}",
        f"MaxRequestWorkers {threads}",
        "MinSpareThreads 1",
        f"MaxSpareThreads {threads}",
        "MaxConnectionsPerChild 0",
        "KeepAlive on",
        "MaxKeepAliveRequests 0",
        "KeepAliveTimeout 5",
        *_tls_lines(protocol, directory, cert, key),
    ]
    path = directory / "httpd.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_apache(host: Any, config: Path, port: int, cores: str) -> subprocess.Popen[str]:
    """Apache in `host`, pinned to `cores`; returns once it listens on `port`."""
    process: subprocess.Popen[str] = host.popen(
        ["taskset", "-c", cores, APACHE, "-f", str(config), "-DFOREGROUND"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_listening(host, port)
    except AssertionError:
        _, error = stop_process(process, signal.SIGKILL, 5)
        log = (config.parent / "error.log")
        detail = log.read_text()[-400:] if log.exists() else ""
        raise RuntimeError(f"apache did not start in {host.name}: {error.strip()[-400:]} "
                           f"{detail.strip()}") from None
    return process


def children(parent: int) -> list[int]:
    """The processes whose parent is `parent` (Apache's children)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(f"/proc/{entry.name}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def _ticks(pid: int, reaped_too: bool) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    used = int(fields[11]) + int(fields[12])
    return used + (int(fields[13]) + int(fields[14]) if reaped_too else 0)


def server_cpu_s(parent: int) -> float:
    """CPU seconds of Apache: the parent, its live children, and the children it reaped."""
    ticks = _ticks(parent, True) + sum(_ticks(pid, False) for pid in children(parent))
    return ticks / os.sysconf("SC_CLK_TCK")


def resumption_counts(directory: Path) -> dict[str, int]:
    """Requests by session state from the resumption log ("Initial", "Resumed")."""
    path = directory / "resumed.log"
    counts: dict[str, int] = {}
    if path.exists():
        for line in path.read_text().split():
            counts[line] = counts.get(line, 0) + 1
    return counts


def stop_apache(process: subprocess.Popen[str], config: Path) -> None:
    """SIGTERM (Apache stops its children), then kill whatever is left of it by pid."""
    left = children(process.pid)
    stop_process(process, signal.SIGTERM, 10)
    deadline = time.monotonic() + 5
    for pid in left:
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    (config.parent / "httpd.pid").unlink(missing_ok=True)
