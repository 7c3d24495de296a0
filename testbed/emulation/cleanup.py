"""Removes what emulation runs left behind: every process in their hosts' namespaces (which
takes the namespaces and their interfaces with them) and their state files. Only runs whose
owner is gone are touched, so a run in progress is never disturbed; only namespaces that are
still the recorded ones (inode and cookie, see `state`) lose their processes."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from testbed.emulation.state import (
    HostRecord,
    RunState,
    load_states,
    netns_cookie,
    pid_alive,
    processes_of_host,
)

ROOT_NETNS_COOKIE = netns_cookie(1)


def kill_run(state: RunState) -> list[str]:
    """Kill every process of the run's hosts; returns what was removed."""
    removed: list[str] = []
    hosts = [host for host in state.hosts if host.netns_cookie != ROOT_NETNS_COOKIE]
    for host in hosts:  # never the machine's own namespace
        if not host.netns_cookie:
            removed.append(f"host {host.name}: no namespace cookie recorded, left alone")
            continue
        with processes_of_host(host) as victims:
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if victims:
            removed.append(f"host {host.name}: killed {len(victims)} process(es)")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_remaining(host) for host in hosts):
        time.sleep(0.05)
    state.discard()
    return removed


def _remaining(host: HostRecord) -> bool:
    with processes_of_host(host) as left:
        return bool(left)


def clean_leftovers(run_pid: int | None = None) -> list[str]:
    """Clean every recorded run whose owning process has died, and the kernel programs
    (pins, attachments, cgroups) of runs whose process is gone. With `run_pid`, only the run
    that process owned (its state file and its kernel program), however many others died:
    on a shared machine the others may be someone else's to inspect or clean."""
    from testbed.emulation.kernel_program import clean_programs

    removed: list[str] = []
    for state in load_states():
        if run_pid is not None and state.owner_pid != run_pid:
            continue
        if state.owner_pid != os.getpid() and pid_alive(state.owner_pid):
            continue
        removed.extend(kill_run(state) or [f"run {state.owner_pid}: nothing left"])
    removed.extend(clean_programs(run_pid))
    return removed
