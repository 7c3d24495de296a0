"""The kernel program's own cost: BPF run-time statistics (`BPF_ENABLE_STATS`), read per
program with bpftool. Statistics are on while the fd from `enable_stats()` is open."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tcpcrypt.kernel import bpf_syscall as bpf

BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0


@contextlib.contextmanager
def enable_stats() -> Iterator[bool]:
    """Run-time statistics on for the duration (False when the kernel refuses)."""
    attr = ctypes.create_string_buffer(128)
    try:
        fd = bpf._bpf(BPF_ENABLE_STATS, attr, "enable BPF statistics")  # type 0: run time
    except bpf.BpfError:
        yield False
        return
    try:
        yield True
    finally:
        os.close(fd)


def program_runs(directory: Path) -> tuple[int, int] | None:
    """(times run, total ns) of the pinned program, or None when unknown."""
    done = subprocess.run(["bpftool", "-j", "prog", "show", "pinned", str(directory / "prog")],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    shown = json.loads(done.stdout)
    return int(shown.get("run_cnt", 0)), int(shown.get("run_time_ns", 0))
