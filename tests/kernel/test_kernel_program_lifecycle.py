"""Loading, unloading and cleaning up the kernel program leave nothing attached or pinned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcpcrypt.kernel import KernelEno, KernelUnavailable
from tcpcrypt.kernel.loader import BPFFS, cgroup2_root, remove_private
from testbed.emulation.kernel_program import leftover_tags

TCPCRYPT = Path(sys.executable).with_name("tcpcrypt")


def _attached(cgroup: Path) -> str:
    return subprocess.run(["bpftool", "cgroup", "show", str(cgroup)], capture_output=True,
                          text=True, check=False).stdout


def test_cli_load_status_unload_leaves_nothing(tmp_path: Path) -> None:
    tag = f"cli-{os.getpid()}"
    cgroup = cgroup2_root() / f"tcpcrypt-{tag}"
    cgroup.mkdir()
    environment = dict(os.environ, TCPCRYPT_BPF_DIR=str(BPFFS / f"tcpcrypt-{tag}"),
                       TCPCRYPT_BPF_CGROUP=str(cgroup))

    def cli(action: str) -> str:
        done = subprocess.run([str(TCPCRYPT), "kernel", action], capture_output=True,
                              text=True, env=environment, check=True)
        return done.stdout

    try:
        assert "loaded and attached" in cli("load")
        assert "already loaded" in cli("load")
        assert "attached to" in cli("status") and "tcpcrypt_eno" in _attached(cgroup)
        assert "detached" in cli("unload")
        assert "not loaded" in cli("status")
        assert "tcpcrypt_eno" not in _attached(cgroup)
        assert not (BPFFS / f"tcpcrypt-{tag}").exists()
    finally:
        cgroup.rmdir()


def test_an_absent_program_is_a_one_line_error() -> None:
    with pytest.raises(KernelUnavailable) as raised:
        KernelEno(BPFFS / "tcpcrypt-never-loaded")
    assert "not loaded" in str(raised.value) and "\n" not in str(raised.value)


def test_clean_removes_what_a_killed_run_left() -> None:
    script = ("import os, time\n"
              "from tcpcrypt.kernel.loader import private_program\n"
              "with private_program(f'run-{os.getpid()}'):\n"
              "    print('loaded', flush=True)\n"
              "    time.sleep(60)\n")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "loaded"
    tag = f"run-{process.pid}"
    assert (BPFFS / f"tcpcrypt-{tag}" / "prog").exists()
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(0.1)
    assert tag in leftover_tags()  # what `testbed clean` removes (others' are left alone here)
    removed = remove_private(tag)
    assert any("detached" in line for line in removed)
    assert not (BPFFS / f"tcpcrypt-{tag}").exists()
    assert not (cgroup2_root() / f"tcpcrypt-{tag}").exists()
