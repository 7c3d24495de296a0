"""Starting the project's applications inside Mininet hosts and reading their CPU time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

_ERROR_FILES: dict[int, IO[str]] = {}
"""Standard error of each long-running process started here, by PID: a file, never a pipe
nobody reads (a full pipe would block the process's next write, and with it the process)."""


def start_module(host: Any, module: str, *args: str) -> subprocess.Popen[str]:
    """`python -m module args` in `host`, with this interpreter; waits for its first line.
    Its standard error goes to a temporary file, returned by `stop_process`."""
    errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by error_output()
    process: subprocess.Popen[str] = host.popen(
        [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, stderr=errors, text=True,
    )
    _ERROR_FILES[process.pid] = errors
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.communicate(timeout=5)
        raise RuntimeError(f"{module} did not start in {host.name}: "
                           f"{error_output(process).strip()}")
    return process


def error_output(process: subprocess.Popen[str]) -> str:
    """What a process started by `start_module` wrote on standard error (once it ended)."""
    errors = _ERROR_FILES.pop(process.pid, None)
    if errors is None:
        return ""
    with errors:
        errors.seek(0)
        return errors.read()


def run_module_json(host: Any, module: str, *args: str, timeout: float = 300) -> Any:
    """Run `python -m module args` in `host` to completion and parse its JSON output."""
    process: subprocess.Popen[str] = host.popen(
        [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    out, error = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"{module} failed in {host.name}: {error.strip()[-500:]}")
    return json.loads(out)


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of process `pid`, in nanoseconds (from schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


def user_and_system_s(pid: int) -> tuple[float, float]:
    """User and kernel CPU seconds of process `pid` so far (from /proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def wait_until_listening(host: Any, port: int, timeout_s: float = 10.0) -> None:
    """Return once a TCP socket listens on `port` in `host`; AssertionError after the timeout
    (a server that does not come up is a failed run, named with its host and port)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if f":{port} " in host.cmd(f"ss -Hltn 'sport = :{port}'"):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} in {host.name}")


def stop_process(
    process: subprocess.Popen[str], signum: int = signal.SIGTERM, timeout_s: float = 10.0
) -> tuple[str, str]:
    """Send `signum` (if it still runs), wait for it, kill it past `timeout_s`; its remaining
    standard output and error."""
    if process.poll() is None:
        process.send_signal(signum)
    try:
        out, error = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        out, error = process.communicate()
    return out or "", error or error_output(process)
