"""Two bare network namespaces joined by a veth pair, for daemon tests that need no Mininet.

Each test gets its own uniquely named namespaces (so it never touches another run's) and
removes them, with every process it started in them, on the way out. Host "a" is 10.231.0.1,
host "b" is 10.231.0.2. The kernel's TCP-ENO program is loaded privately for the pair (its own
pins and cgroup, which this process and everything it starts join) and removed afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tcpcrypt.kernel.loader import private_program

ADDRESSES = {"a": "10.231.0.1", "b": "10.231.0.2"}
_counter = itertools.count()
# A program for host "a": ADDRESS COUNT PORT; COUNT connections, each sends "ping" and expects
# it echoed; prints "ok N" (and where it stopped, if it did).
PING_CLIENTS = """
import socket, sys
ok = 0
for number in range(int(sys.argv[2])):
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[3])), timeout=5) as conn:
            conn.sendall(b"ping")
            ok += conn.recv(100) == b"ping"
    except OSError as error:
        print("failed at", number, error)
        break
print("ok", ok)
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class NetnsPair:
    prefix: str
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def name(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def argv(self, host: str, command: Sequence[str]) -> list[str]:
        # nsenter, not `ip netns exec`: that mounts a fresh /sys, hiding the BPF pins
        return ["nsenter", f"--net=/run/netns/{self.name(host)}", *command]

    def run(self, host: str, command: Sequence[str], timeout: float = 60,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.argv(host, command), capture_output=True, text=True,
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} in {host}: {result.stderr.strip()}")
        return result

    def popen(self, host: str, command: Sequence[str], **kwargs: Any) -> subprocess.Popen[str]:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        process: subprocess.Popen[str] = subprocess.Popen(
            self.argv(host, command), text=True, **kwargs
        )
        self.processes.append(process)
        return process

    def python(self, host: str, code: str, *, user: str | None = None,
               **kwargs: Any) -> subprocess.Popen[str]:
        """This interpreter running `code` in `host`, as root or as the unprivileged `user`."""
        command = [sys.executable, "-c", code]
        if user is not None:
            command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                       *command]
        return self.popen(host, command, **kwargs)

    def daemon(self, host: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
        """tcpcryptd in `host`; returns once it printed its ready line."""
        process = self.popen(host, [sys.executable, "-m", "tcpcrypt.daemon", *args], **kwargs)
        assert process.stdout is not None
        line = process.stdout.readline()
        if "ready" not in line:
            _, error = process.communicate(timeout=10)
            raise AssertionError(f"tcpcryptd did not start in {host}: {error}")
        return process


@contextlib.contextmanager
def netns_pair(kernel_program: bool = True) -> Iterator[NetnsPair]:
    """The pair; with a private kernel program unless told not to."""
    pair = NetnsPair(f"tcdt{os.getpid()}x{next(_counter)}")
    # tag "test-PID": `testbed clean` removes the program if this process is killed
    program = private_program(f"test-{os.getpid()}") if kernel_program else None
    with program or contextlib.nullcontext(), _namespaces(pair):
        yield pair


@contextlib.contextmanager
def _namespaces(pair: NetnsPair) -> Iterator[None]:
    try:
        for host in ADDRESSES:
            _ip("netns", "add", pair.name(host))
        _ip("link", "add", f"{pair.prefix}a", "netns", pair.name("a"), "type", "veth",
            "peer", "name", f"{pair.prefix}b", "netns", pair.name("b"))
        for host, address in ADDRESSES.items():
            namespace = pair.name(host)
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", f"{pair.prefix}{host}")
            _ip("-n", namespace, "link", "set", f"{pair.prefix}{host}", "up")
        yield
    finally:
        for process in pair.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.communicate(timeout=10)
        for host in ADDRESSES:
            subprocess.run(["ip", "netns", "del", pair.name(host)], capture_output=True,
                           check=False)
