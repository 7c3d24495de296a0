"""The experiments' regression guards compare CPU ratios: measure them on a quiet machine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

QUIET_BUSY_FRACTION = 0.25
QUIET_WAIT_S = 20.0


def busy_fraction(interval_s: float = 0.5) -> float:
    """Share of all CPUs' time spent busy over `interval_s` (from /proc/stat)."""
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields), idle

    total_before, idle_before = sample()
    time.sleep(interval_s)
    total_after, idle_after = sample()
    total = total_after - total_before
    return 1.0 - (idle_after - idle_before) / total if total else 0.0


@pytest.fixture(scope="module", autouse=True)
def quiet_machine() -> Iterator[None]:
    """Wait (at most QUIET_WAIT_S) until the machine is mostly idle, e.g. until the kernel has
    finished tearing down the namespaces of an emulation run; then measure anyway."""
    deadline = time.monotonic() + QUIET_WAIT_S
    while time.monotonic() < deadline and busy_fraction() > QUIET_BUSY_FRACTION:
        pass
    yield
