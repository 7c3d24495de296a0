"""What a running emulation owns, written down so that a killed run can be cleaned up later.

One JSON file per run under the state directory: the runner's PID and, for every host, the
PID of its shell and its network namespace, named two ways: the inode number (quick to compare
with every process's /proc/PID/ns/net) and the namespace cookie (SO_NETNS_COOKIE of a socket
made inside it). The kernel reuses inode numbers as soon as a namespace is gone, so an inode
alone could name a stranger's namespace later; the cookie is never reused while the machine
runs. A namespace counts as the recorded one only when both agree.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

STATE_DIR = Path(os.environ.get("TESTBED_STATE_DIR", "/run/tcpcrypt-testbed"))
CLONE_NEWNET: Final = 0x40000000
SO_NETNS_COOKIE: Final = 71  # Linux 5.14


@dataclass
class HostRecord:
    name: str
    shell_pid: int
    netns_inode: int
    netns_cookie: int = 0  # 0: unknown (a state file from before cookies): never touched


@dataclass
class RunState:
    owner_pid: int
    hosts: list[HostRecord] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return STATE_DIR / f"run-{self.owner_pid}.json"

    def save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self)))
        os.replace(temporary, self.path)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def load_states() -> list[RunState]:
    states: list[RunState] = []
    for path in sorted(STATE_DIR.glob("run-*.json")):
        try:
            document = json.loads(path.read_text())
            hosts = [HostRecord(**host) for host in document["hosts"]]
            states.append(RunState(document["owner_pid"], hosts))
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: nothing can be done with it
    return states


def netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def cookie_of_namespace(descriptor: int) -> int | None:
    """The cookie of the network namespace open as `descriptor` (None if it cannot be read).

    A short-lived thread enters the namespace (setns changes only the calling thread), makes a
    socket there and reads the socket's namespace cookie.
    """
    found: list[int] = []

    def enter_and_read() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(descriptor, CLONE_NEWNET) != 0:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
            raw = probe.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8)
        found.append(struct.unpack("=Q", raw)[0])

    worker = threading.Thread(target=enter_and_read, name="netns-cookie")
    worker.start()
    worker.join()
    return found[0] if found else None


def netns_cookie(pid: int) -> int | None:
    """The cookie of process `pid`'s network namespace; None if it is gone or unreadable."""
    try:
        descriptor = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return cookie_of_namespace(descriptor)
    finally:
        os.close(descriptor)


def processes_in_netns(inode: int) -> list[int]:
    """Every process whose network namespace has inode number `inode` now."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and netns_inode(int(entry.name)) == inode:
            found.append(int(entry.name))
    return found


@contextlib.contextmanager
def processes_of_host(host: HostRecord) -> Iterator[list[int]]:
    """The processes in the namespace `host` recorded, if that namespace still exists.

    The namespace is held open for the duration, so its inode number cannot pass to another
    namespace while the caller acts on the list. Empty when the inode now belongs to another
    namespace (its cookie differs) or the record has no cookie.
    """
    candidates = processes_in_netns(host.netns_inode) if host.netns_cookie else []
    for pid in candidates:
        try:
            descriptor = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # that process is gone: try the next one
        try:
            if os.fstat(descriptor).st_ino != host.netns_inode:
                continue  # the PID was reused by a process elsewhere
            if cookie_of_namespace(descriptor) != host.netns_cookie:
                break  # the inode belongs to another namespace now
            yield processes_in_netns(host.netns_inode)
            return
        finally:
            os.close(descriptor)
    yield []


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
