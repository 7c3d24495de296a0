"""The shared machine is processor sharing: every running job and every tenant thread gets an
equal share of the cores, at most one core each."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
import simpy

from testbed.sim.machine import SharedCpu


def _finish_times(cores: int, tenants: float,
                  jobs: list[tuple[float, float]]) -> list[float]:
    """(start, CPU seconds) per job -> when each one finished."""
    env = simpy.Environment()
    cpu = SharedCpu(env, cores, tenants)
    ends = [0.0] * len(jobs)

    def job(index: int, start: float, seconds: float) -> Generator[Any, Any, None]:
        yield env.timeout(start)
        yield from cpu.run(seconds)
        ends[index] = env.now

    for index, (start, seconds) in enumerate(jobs):
        env.process(job(index, start, seconds))
    env.run()
    return ends


def test_jobs_up_to_the_core_count_each_run_at_a_full_core() -> None:
    assert _finish_times(2, 0, [(0, 1.0), (0, 0.5)]) == pytest.approx([1.0, 0.5])


def test_more_jobs_than_cores_share_them_equally() -> None:
    # two 1 s jobs on one core: both at half speed, both done at 2 s
    assert _finish_times(1, 0, [(0, 1.0), (0, 1.0)]) == pytest.approx([2.0, 2.0])


def test_a_job_arriving_later_slows_the_running_one_from_then_on() -> None:
    # 0..1 s alone (1 s of work done), then shared: the second needs 0.5 s at half speed
    assert _finish_times(1, 0, [(0, 2.0), (1.0, 0.5)]) == pytest.approx([2.5, 2.0])


def test_tenant_threads_take_their_share_without_a_short_job_waiting_a_time_slice() -> None:
    # three tenants and one job on two cores: the job runs at half a core from the start
    assert _finish_times(2, 3, [(0, 0.001)]) == pytest.approx([0.002])


def test_a_machine_without_cores_is_refused() -> None:
    with pytest.raises(ValueError, match="cores >= 1"):
        SharedCpu(simpy.Environment(), 0)
