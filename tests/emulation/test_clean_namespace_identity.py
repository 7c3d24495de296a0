"""`testbed clean` kills only processes of the namespaces a run recorded, even when the kernel
has since given a recorded namespace's inode number to a new namespace (issue 10)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from testbed.emulation import state as run_state
from testbed.emulation.cleanup import clean_leftovers
from testbed.emulation.state import HostRecord, RunState, netns_cookie, netns_inode


def _sleeper_in_new_netns() -> subprocess.Popen[bytes]:
    process = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    for _ in range(100):  # until unshare has exec'd sleep in its new namespace
        if netns_inode(process.pid) != netns_inode(os.getpid()):
            return process
        time.sleep(0.01)
    raise AssertionError("unshare did not enter a new network namespace")


def _dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_clean_spares_a_new_namespace_that_reuses_a_recorded_inode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_state, "STATE_DIR", tmp_path)
    victim = None
    for _ in range(30):  # the kernel hands out the lowest free inode number: reuse is usual
        recorded = _sleeper_in_new_netns()
        inode, cookie = netns_inode(recorded.pid), netns_cookie(recorded.pid)
        assert inode is not None and cookie is not None
        recorded.kill()
        recorded.wait()
        time.sleep(0.05)  # the namespace is freed asynchronously
        candidate = _sleeper_in_new_netns()
        if netns_inode(candidate.pid) == inode:
            victim = candidate
            break
        candidate.kill()
        candidate.wait()
    if victim is None:
        pytest.skip("the kernel did not reuse a namespace inode number in 30 tries")
    try:
        assert netns_cookie(victim.pid) != cookie  # same inode, another namespace
        RunState(_dead_pid(), [HostRecord("h1", recorded.pid, inode, cookie)]).save()
        removed = clean_leftovers()
        assert victim.poll() is None, removed  # before: killed as the recorded host's process
        assert list(tmp_path.glob("run-*.json")) == []
    finally:
        victim.kill()
        victim.wait()


def test_clean_kills_the_processes_of_a_recorded_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_state, "STATE_DIR", tmp_path)
    host = _sleeper_in_new_netns()
    try:
        inode, cookie = netns_inode(host.pid), netns_cookie(host.pid)
        assert inode is not None and cookie is not None
        RunState(_dead_pid(), [HostRecord("h1", host.pid, inode, cookie)]).save()
        removed = clean_leftovers()
        assert host.wait(timeout=10) == -9
        assert removed == ["host h1: killed 1 process(es)"]
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
