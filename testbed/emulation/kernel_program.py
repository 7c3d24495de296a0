"""The TCP-ENO kernel program for one emulation run: loaded before the hosts start (so that
their processes join its cgroup), removed after they stopped; and what a killed run left.

Each run has its own copy (`tcpcrypt.kernel.loader.private_program`, tag `run-<pid>`), so runs
of other users on the machine are never touched. Where the kernel cannot run the program, the
run goes on without it and says so in one line (the library's protocols then fail with that
reason, the others are unaffected).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tcpcrypt.kernel.loader import BPFFS, KernelUnavailable, private_program, remove_private
from testbed.emulation.state import pid_alive

TAG = re.compile(r"^tcpcrypt-((?:run|test)-(\d+))$")


@contextmanager
def run_program() -> Iterator[Path | None]:
    """Yields the pin directory, or None when the program could not be loaded here."""
    try:
        manager = private_program(f"run-{os.getpid()}")
        directory = manager.__enter__()
    except (KernelUnavailable, OSError) as error:
        print(f"testbed: TCP-ENO kernel program not loaded: {error}", file=sys.stderr)
        yield None
        return
    try:
        yield directory
    finally:
        manager.__exit__(None, None, None)


def leftover_tags(run_pid: int | None = None) -> list[str]:
    """Tags of private programs whose owning process is gone (only run `run_pid`'s if given)."""
    from tcpcrypt.kernel.loader import cgroup2_root

    roots = [BPFFS]
    with suppress(KernelUnavailable):
        roots.append(cgroup2_root())
    tags = set()
    for root in roots:
        if not root.is_dir():
            continue
        for entry in root.iterdir():
            match = TAG.match(entry.name)
            if not match or pid_alive(int(match.group(2))):
                continue
            if run_pid is None or match.group(1) == f"run-{run_pid}":
                tags.add(match.group(1))
    return sorted(tags)


def clean_programs(run_pid: int | None = None) -> list[str]:
    """Remove the kernel programs of dead runs (only run `run_pid`'s if given)."""
    removed: list[str] = []
    for tag in leftover_tags(run_pid):
        try:
            removed.extend(remove_private(tag))
        except KernelUnavailable as error:
            removed.append(f"could not remove the kernel program {tag}: {error}")
    return removed


def kernel_program_runs() -> tuple[int, int] | None:
    """(runs, ns) of this run's kernel program so far (BPF statistics on), None if absent."""
    from tcpcrypt.kernel.loader import pin_dir
    from tcpcrypt.kernel.stats import program_runs

    directory = pin_dir()
    return program_runs(directory) if (directory / "prog").exists() else None
