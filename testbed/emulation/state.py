"""What a running emulation owns, written down so that a killed run can be cleaned up later.

One JSON file per run under the state directory: the runner's PID and, for every host, the
PID of its shell and the inode of its network namespace.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_DIR = Path(os.environ.get("TESTBED_STATE_DIR", "/run/tcpcrypt-testbed"))


@dataclass
class HostRecord:
    name: str
    shell_pid: int
    netns_inode: int


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


def processes_in_netns(inode: int) -> list[int]:
    """Every process whose network namespace is `inode`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and netns_inode(int(entry.name)) == inode:
            found.append(int(entry.name))
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
