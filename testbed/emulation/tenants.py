"""Who else ran on the machine while an emulated load ran: the other tenants' runnable
scheduling entities, sampled during the run.

The machine is shared (other users, CI); how many others want a core decides the share of
the cores a fair scheduler leaves to the run, and it changes from one minute to the next.
What competes is not a thread but a scheduling entity at the top level: with the kernel's
autogroups on (`/proc/sys/kernel/sched_autogroup_enabled`, as here), every session is one
group, which gets one share however many of its threads are runnable (a `make -j8` counts
once), and tasks outside any autogroup (kernel threads) count one each. Every process an
emulated host starts is a session of its own (Mininet detaches it), so the run's server and
each load generator are each one entity, as each is one job in the simulation.

`OtherTenants` samples every runnable task on the machine during the run (`/proc/*/task/*/
stat`, state R) and counts the distinct entities among them, less the run's own processes
and the sampling thread: the average is what the simulation of the same run shares its
machine with (`Topology.background_cores`). With autogroups off it counts threads. Softirq
kernel threads count as tenants (they may be carrying the run's own packets).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import TracebackType

SAMPLE_EVERY_S = 0.1  # a scan of every task costs a few milliseconds of CPU


def autogroups_enabled() -> bool:
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return False


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def task_is_running(stat: str) -> bool:
    # the state follows the command name, which is in parentheses and may hold spaces
    end = stat.rfind(")")
    return end >= 0 and stat[end + 2:end + 3] == "R"


def autogroup(pid: int) -> str:
    """The autogroup of process `pid` ("" for none: kernel threads, or gone)."""
    text = _read(f"/proc/{pid}/autogroup").split()
    return text[0] if text else ""


def runnable_tasks(pid: int) -> int:
    """Threads of process `pid` in state R now (0 once it has gone)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    return sum(1 for tid in tids if task_is_running(_read(f"/proc/{pid}/task/{tid}/stat")))


def runnable_entities(own_pids: set[int], skip_tid: int, by_group: bool) -> int:
    """Distinct scheduling entities with a runnable task now, other than `own_pids` (and the
    task `skip_tid`): autogroups (`by_group`) and tasks outside any, or else threads."""
    entities: set[str] = set()
    own_groups = {autogroup(pid) for pid in own_pids} - {""} if by_group else set()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in own_pids:
            continue
        try:
            tids = os.listdir(f"/proc/{name}/task")
        except OSError:
            continue
        group: str | None = None
        for tid in tids:
            if int(tid) == skip_tid or not task_is_running(_read(f"/proc/{name}/task/{tid}/stat")):
                continue
            if by_group and group is None:
                group = autogroup(int(name))
            if by_group and group:
                if group not in own_groups:
                    entities.add(group)
            else:
                entities.add(f"task-{tid}")
    return len(entities)


class OtherTenants:
    """A context: samples the others' runnable entities while it is open; `average` after."""

    def __init__(self, own_pids: list[int], every_s: float = SAMPLE_EVERY_S) -> None:
        self.own_pids, self.every_s = set(own_pids), every_s
        self.by_group = autogroups_enabled()
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = threading.get_native_id()
        while not self._stop.is_set():
            self.samples.append(float(runnable_entities(self.own_pids, me, self.by_group)))
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
    """Others' runnable entities on average over `seconds`, with nothing of ours running."""
    with OtherTenants([], every_s) as tenants:
        time.sleep(seconds)
    return tenants.average
