"""Running tcpcryptd inside an emulated host, and asking it about its connections.

The daemon runs with this interpreter (`python -m tcpcrypt.daemon`), prints one line when its
rules are installed and it listens, and removes its rules when it gets SIGTERM.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from testbed.apps.hosts import start_module, stop_process


def start_tcpcryptd(
    host: Any,
    *,
    ports: Sequence[int],
    suites: Sequence[str] = ("x25519",),
    aeads: Sequence[str] = ("aes-128-gcm",),
    cache_size: int = 1024,
    keylog: Path | None = None,
    extra: Sequence[str] = (),
) -> subprocess.Popen[str]:
    """Start tcpcryptd in `host` covering `ports`; returns once it serves."""
    args = [
        "--ports", ",".join(str(port) for port in ports),
        "--suites", ",".join(suites),
        "--aeads", ",".join(aeads),
        "--cache-size", str(cache_size),
        *extra,
    ]
    if keylog is not None:
        args += ["--keylog", str(keylog)]
    return start_module(host, "tcpcrypt.daemon", *args)


def stop_tcpcryptd(process: subprocess.Popen[str], timeout: float = 10) -> str:
    """SIGTERM the daemon, wait for it, and return what it wrote on stderr."""
    return stop_process(process, signal.SIGTERM, timeout)[1]


def tcpcrypt_cli(host: Any, *args: str, timeout: float = 30) -> Any:
    """`tcpcrypt --json ARGS` in `host`, parsed (sessions: a list of dicts; stats: a dict)."""
    process: subprocess.Popen[str] = host.popen(
        [sys.executable, "-m", "tcpcrypt.cli", "--json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    out, error = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"tcpcrypt {' '.join(args)} failed in {host.name}: {error.strip()}")
    return json.loads(out)
