"""Removes what emulation runs left behind: every process in their hosts' namespaces (which
takes the namespaces and their interfaces with them) and their state files. Only runs whose
owner is gone are touched, so a run in progress is never disturbed."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from testbed.emulation.state import RunState, load_states, pid_alive, processes_in_netns

ROOT_NETNS = os.stat("/proc/1/ns/net").st_ino if os.path.exists("/proc/1/ns/net") else None


def kill_run(state: RunState) -> list[str]:
    """Kill every process of the run's hosts; returns what was removed."""
    removed: list[str] = []
    for host in state.hosts:
        if host.netns_inode == ROOT_NETNS:
            continue  # never touch the machine's own namespace
        victims = processes_in_netns(host.netns_inode)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if victims:
            removed.append(f"host {host.name}: killed {len(victims)} process(es)")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        processes_in_netns(host.netns_inode) for host in state.hosts
        if host.netns_inode != ROOT_NETNS
    ):
        time.sleep(0.05)
    state.discard()
    return removed


def clean_leftovers() -> list[str]:
    """Clean every recorded run whose owning process has died, and the kernel programs
    (pins, attachments, cgroups) of runs whose process is gone."""
    from testbed.emulation.kernel_program import clean_programs

    removed: list[str] = []
    for state in load_states():
        if state.owner_pid != os.getpid() and pid_alive(state.owner_pid):
            continue
        removed.extend(kill_run(state) or [f"run {state.owner_pid}: nothing left"])
    removed.extend(clean_programs())
    return removed
