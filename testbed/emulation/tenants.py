"""Who else ran on the machine while an emulated load ran: the other tenants' runnable threads,
sampled during the run.

The machine is shared (other users, CI); how many of its threads are runnable decides the
share of the cores a fair scheduler leaves to the run, and it changes from one minute to the
next. `OtherTenants` samples `/proc/stat`'s procs_running (every runnable task on the machine)
during the run and takes off the run's own runnable threads (the given processes' tasks in
state R) and the sampler itself: the average is what the simulation of the same run shares
its machine with (`Topology.background_cores`). Kernel threads count as tenants, the
softirq threads among them (they may be carrying the run's own packets).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import TracebackType

SAMPLE_EVERY_S = 0.02


def machine_runnable() -> int:
    """Runnable tasks on the machine now (procs_running in /proc/stat)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("procs_running "):
            return int(line.split()[1])
    return 0


def runnable_tasks(pid: int) -> int:
    """Threads of process `pid` in state R now (0 once it has gone)."""
    count = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0
    for task in tasks:
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue
        # the state follows the command name, which is in parentheses and may hold spaces
        if text[text.rfind(")") + 2:].startswith("R"):
            count += 1
    return count


class OtherTenants:
    """A context: samples the others' runnable threads while it is open; `average` after."""

    def __init__(self, own_pids: list[int], every_s: float = SAMPLE_EVERY_S) -> None:
        self.own_pids, self.every_s = list(own_pids), every_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            total = machine_runnable()
            ours = sum(runnable_tasks(pid) for pid in self.own_pids)
            self.samples.append(max(0.0, total - ours - 1.0))  # 1: this sampling thread
            self._stop.wait(self.every_s)

    def __enter__(self) -> OtherTenants:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def average(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else 0.0


def sample_for(seconds: float, every_s: float = SAMPLE_EVERY_S) -> float:
    """Others' runnable threads on average over `seconds`, with nothing of ours running."""
    with OtherTenants([], every_s) as tenants:
        time.sleep(seconds)
    return tenants.average
