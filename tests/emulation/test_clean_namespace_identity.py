"""`testbed clean` kills only processes of the namespaces a run recorded, even when the kernel
has since given a recorded namespace's inode number to a new namespace (issue 10)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from testbed.emulation import state as run_state
from testbed.emulation.cleanup import kill_run
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
    """The run recorded namespace R (inode i, cookie c); R is gone and the kernel gave i to a
    stranger's namespace V. The kernel hands out the lowest free inode number, so this is the
    usual case; the test makes it certain by recording V's inode with R's cookie."""
    monkeypatch.setattr(run_state, "STATE_DIR", tmp_path)
    recorded = _sleeper_in_new_netns()
    cookie = netns_cookie(recorded.pid)
    recorded.kill()
    recorded.wait()
    victim = _sleeper_in_new_netns()
    try:
        inode = netns_inode(victim.pid)
        assert inode is not None and cookie is not None
        assert netns_cookie(victim.pid) != cookie  # another namespace: cookies never repeat
        state = RunState(_dead_pid(), [HostRecord("h1", recorded.pid, inode, cookie)])
        state.save()
        removed = kill_run(state)  # what `testbed clean` does per dead run (only ours here)
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
        state = RunState(_dead_pid(), [HostRecord("h1", host.pid, inode, cookie)])
        state.save()
        removed = kill_run(state)
        assert host.wait(timeout=10) == -9
        assert removed == ["host h1: killed 1 process(es)"]
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
