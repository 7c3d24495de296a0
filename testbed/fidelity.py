"""Fidelity of an emulated run: was the host free to measure what the run meant to measure?

While an emulated experiment has a network up (not while it waits for the emulation lock),
`HostMonitor` samples the machine once a second from /proc: the share of all cores busy, and
who used them: this run's processes (the runner and everything descended from it, Mininet
hosts, daemons and engines included), kernel threads (softirq work for the emulated links
lands there), and every other process. At the end, `host_warnings` turns the samples into
sentences when

- the host was saturated (all cores over 90% busy in a quarter of the samples or more): the
  figures are then CPU-bound, not protocol-bound;
- other processes competed for the cores (more than a tenth of the cores on average).

Shaped links (the `link` model's delay and rate, run by the bridge engine) are checked from
the engines' own counters: `link_warnings` names each engine whose delayed packets left more
than 10% later than their configured delay (or rate) asked, for more than a tenth of them.
The emulation runtime hands the engines' final counters to the monitor of the current run
(`note_engine_reports`), so every emulated experiment is checked the same way.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLE_S = 1.0
SATURATED_BUSY = 0.90  # share of all cores
SATURATED_SHARE = 0.25  # of the samples
COMPETING_CORES = 0.10  # share of the cores used by other processes, on average
LATE_FRACTION = 0.10  # a delayed packet later than 10% of its delay missed the shaping
LATE_SHARE = 0.10  # of the delayed packets, before a warning
MIN_DELAYED = 20  # fewer delayed packets say nothing
PF_KTHREAD = 0x00200000
FIDELITY_PREFIX = "fidelity: "


@dataclass(frozen=True)
class ProcessTimes:
    """CPU ticks (user + system) by pid, the pids that are ours, the kernel threads, and
    each pid's command name."""

    ticks: dict[int, int]
    ours: frozenset[int]
    kernel: frozenset[int]
    names: dict[int, str]


@dataclass(frozen=True)
class Sample:
    seconds: float
    busy_cores: float
    ours_cores: float
    kernel_cores: float
    others_cores: float
    others_by_name: dict[str, float] = field(default_factory=dict)  # cores


def _stat_fields(pid: int) -> tuple[str, list[str]] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, rest = text.rpartition(")")
    return head.partition("(")[2], rest.split()


def process_times(root: int) -> ProcessTimes:
    """One snapshot of every process: its CPU ticks, and whether it descends from `root`."""
    ticks: dict[int, int] = {}
    parents: dict[int, int] = {}
    kernel: set[int] = set()
    names: dict[int, str] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        parsed = _stat_fields(int(entry.name))
        if parsed is None or len(parsed[1]) < 13:
            continue
        pid, (name, fields) = int(entry.name), parsed
        parents[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])
        names[pid] = name
        if int(fields[6]) & PF_KTHREAD:
            kernel.add(pid)
    ours: set[int] = set()
    for pid in parents:
        chain, current = [], pid
        while current > 1 and current not in ours and current != root:
            chain.append(current)
            current = parents.get(current, 0)
        if current == root or current in ours:
            ours.update(chain)
    ours.add(root)
    return ProcessTimes(ticks, frozenset(ours), frozenset(kernel), names)


def busy_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all cores since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user
    return total - idle, total


def sample_between(before: ProcessTimes, after: ProcessTimes, busy: tuple[int, int],
                   seconds: float, cores: int) -> Sample:
    """What happened between two snapshots; `busy` is (busy ticks, total ticks) between."""
    hz = os.sysconf("SC_CLK_TCK")
    ours = kernel = others = 0
    by_name: Counter[str] = Counter()
    for pid, now in after.ticks.items():
        used = now - before.ticks.get(pid, 0)  # a new process: all its time is this interval's
        if used <= 0:
            continue
        if pid in after.ours:
            ours += used
        elif pid in after.kernel:
            kernel += used
        else:
            others += used
            by_name[after.names.get(pid, "?")] += used
    busy_share = busy[0] / busy[1] if busy[1] else 0.0
    scale = hz * seconds if seconds > 0 else 1.0
    return Sample(seconds, busy_share * cores, ours / scale, kernel / scale, others / scale,
                  {name: used / scale for name, used in by_name.items()})


def summarise(samples: Sequence[Sample], cores: int) -> dict[str, Any]:
    """The run's host load: averages in cores, the share of saturated samples, top others."""
    if not samples:
        return {"samples": 0, "cores": cores}
    weight = sum(s.seconds for s in samples) or 1.0

    def mean(values: Iterator[tuple[float, float]]) -> float:
        return round(sum(v * s for v, s in values) / weight, 3)

    others: dict[str, float] = {}
    for sample in samples:
        for name, used in sample.others_by_name.items():
            others[name] = others.get(name, 0.0) + used * sample.seconds / weight
    saturated = sum(s.busy_cores >= SATURATED_BUSY * cores for s in samples) / len(samples)
    return {
        "samples": len(samples),
        "cores": cores,
        "busy_cores": mean((s.busy_cores, s.seconds) for s in samples),
        "run_cores": mean((s.ours_cores, s.seconds) for s in samples),
        "kernel_thread_cores": mean((s.kernel_cores, s.seconds) for s in samples),
        "other_cores": mean((s.others_cores, s.seconds) for s in samples),
        "saturated_share": round(saturated, 3),
        "top_others": {name: round(used, 3) for name, used in
                       sorted(others.items(), key=lambda item: -item[1])[:3]},
    }


def host_warnings(summary: Mapping[str, Any]) -> list[str]:
    warnings: list[str] = []
    cores = int(summary.get("cores") or 1)
    if not summary.get("samples"):
        return warnings
    if summary["saturated_share"] >= SATURATED_SHARE:
        warnings.append(
            f"the host was saturated: all {cores} cores over {SATURATED_BUSY:.0%} busy in "
            f"{summary['saturated_share']:.0%} of the run (mean {summary['busy_cores']:.2f} "
            "cores busy); figures are CPU-bound, not protocol-bound")
    if summary["other_cores"] >= COMPETING_CORES * cores:
        top = ", ".join(f"{name} {used:.2f}" for name, used in summary["top_others"].items())
        warnings.append(
            f"other processes competed for the cores: {summary['other_cores']:.2f} of {cores} "
            f"cores on average went to processes outside this run (top: {top})")
    return warnings


def link_summary(reports: Sequence[Any]) -> list[dict[str, Any]]:
    """Per engine that delayed packets: how many, how many late, the mean lateness."""
    summary = []
    for report in reports:
        delayed = int(report.engine.get("delayed", 0))
        if delayed:
            summary.append({
                "node": report.node, "path": report.path, "delayed": delayed,
                "late": int(report.engine.get("delayed-late", 0)),
                "mean_lateness_ms": round(
                    int(report.engine.get("lateness-us", 0)) / delayed / 1000, 3)})
    return summary


def link_warnings(reports: Sequence[Any]) -> list[str]:
    """Engines whose delayed packets missed the configured delay or rate by more than 10%
    (counters `delayed`, `delayed-late` and `lateness-us` of the bridge engine)."""
    warnings: list[str] = []
    for report in reports:
        delayed = int(report.engine.get("delayed", 0))
        late = int(report.engine.get("delayed-late", 0))
        if delayed < MIN_DELAYED or late <= LATE_SHARE * delayed:
            continue
        mean_ms = int(report.engine.get("lateness-us", 0)) / delayed / 1000
        warnings.append(
            f"shaped link at middlebox {report.node} ({report.path}) missed its configured "
            f"delay or rate by more than {LATE_FRACTION:.0%} for {late} of {delayed} delayed "
            f"packets (mean lateness {mean_ms:.2f} ms)")
    return warnings


class HostMonitor:
    """Samples the host in a thread while a run measures; `stop()` returns the summary."""

    def __init__(self, interval_s: float = SAMPLE_S, root: int | None = None,
                 only_with_network: bool = True) -> None:
        self.interval_s = interval_s
        self.only_with_network = only_with_network
        self.root = root if root is not None else os.getpid()
        self.cores = os.cpu_count() or 1
        self.samples: list[Sample] = []
        self.engine_reports: list[Any] = []
        self.cpu_idle: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="host-monitor", daemon=True)

    def _loop(self) -> None:
        before, busy_before, clock = process_times(self.root), busy_ticks(), time.monotonic()
        while True:
            stopping = self._stop.wait(self.interval_s)
            after, busy_after, now = process_times(self.root), busy_ticks(), time.monotonic()
            busy = (busy_after[0] - busy_before[0], busy_after[1] - busy_before[1])
            if _networks_up[0] or not self.only_with_network:
                self.samples.append(sample_between(before, after, busy, now - clock,
                                                   self.cores))
            before, busy_before, clock = after, busy_after, now
            if stopping:
                return

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> tuple[dict[str, Any], list[str]]:
        """(summary for the result's environment, fidelity warnings)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        summary = summarise(self.samples, self.cores)
        if self.cpu_idle is not None:
            summary["cpu_idle"] = self.cpu_idle
        links = link_summary(self.engine_reports)
        if links:
            summary["shaped_links"] = links
        warnings = host_warnings(summary) + link_warnings(self.engine_reports)
        return summary, [FIDELITY_PREFIX + text for text in warnings]


_current: list[HostMonitor] = []
_networks_up = [0]  # emulated networks up in this process: samples count only then


@contextmanager
def network_up() -> Iterator[None]:
    """Marks the time an emulated network is up (the lock held, the measuring possible): a
    run's samples are taken then, not while it waited for another run's lock."""
    _networks_up[0] += 1
    try:
        yield
    finally:
        _networks_up[0] -= 1


def note_cpu_idle(mode: str) -> None:
    """Called by the emulation runtime with the idle mode its network measured with."""
    if _current:
        _current[-1].cpu_idle = mode


def note_engine_reports(reports: Sequence[Any]) -> None:
    """Called by the emulation runtime with every engine's final counters."""
    if _current:
        _current[-1].engine_reports.extend(reports)


@contextmanager
def monitored() -> Iterator[HostMonitor]:
    """Sample the host for the duration; the monitor also collects engine reports."""
    monitor = HostMonitor()
    _current.append(monitor)
    monitor.start()
    try:
        yield monitor
    finally:
        _current.remove(monitor)
        monitor.stop()
