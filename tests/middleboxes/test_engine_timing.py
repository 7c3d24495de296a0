"""The bridge engine's timing, no root: arrival from the kernel's receive stamp, when to
sleep and when to poll before a release time, and the delayed-packet queue it shares with
the simulator's PathScheduler."""

from __future__ import annotations

import socket
import struct

from middleboxes.engines.timing import (
    SO_TIMESTAMPNS,
    SPIN_MAX_PENDING,
    SPIN_S,
    bucket,
    stamped_arrival,
    wait_before,
)
from middleboxes.scheduling import DeadlineQueue


def stamp(realtime: float) -> list[tuple[int, int, bytes]]:
    seconds = int(realtime)
    return [(socket.SOL_SOCKET, SO_TIMESTAMPNS,
             struct.pack("qq", seconds, round((realtime - seconds) * 1e9)))]


def test_arrival_is_the_kernel_stamp_moved_to_the_monotonic_clock() -> None:
    arrived = stamped_arrival(stamp(1_700_000_000.45), 500.0, 1_700_000_000.5)
    assert arrived is not None
    assert abs(arrived - 499.95) < 1e-6  # stamped 50 ms before now


def test_a_missing_or_implausible_stamp_gives_no_arrival() -> None:
    assert stamped_arrival([], 500.0, 1_700_000_000.0) is None
    assert stamped_arrival(stamp(1_700_000_001.0), 500.0, 1_700_000_000.0) is None  # future
    assert stamped_arrival(stamp(1_699_999_000.0), 500.0, 1_700_000_000.0) is None  # old
    other = [(socket.SOL_SOCKET, SO_TIMESTAMPNS + 1, bytes(16))]
    assert stamped_arrival(other, 500.0, 1_700_000_000.0) is None


def test_the_loop_sleeps_to_just_before_a_release_and_polls_within_it() -> None:
    assert wait_before(0.010, True, 1) == 0.010 - SPIN_S
    assert wait_before(SPIN_S / 2, True, 1) == 0.0
    assert wait_before(0.0, True, 1) == 0.0


def test_retries_and_bulk_queues_are_slept_to_without_polling() -> None:
    assert wait_before(0.0002, False, 0) == 0.0002
    assert wait_before(SPIN_S / 2, True, SPIN_MAX_PENDING + 1) == SPIN_S / 2


def test_histogram_buckets_hold_their_upper_bound() -> None:
    assert bucket("late", 0.000010) == "late<=10us"
    assert bucket("late", 0.000011) == "late<=20us"
    assert bucket("late", 0.2) == "late>5000us"


def test_deadline_queue_releases_in_deadline_order_equal_ones_as_pushed() -> None:
    queue: DeadlineQueue[str] = DeadlineQueue()
    for at, item in ((2.0, "c"), (1.0, "a"), (1.0, "b"), (3.0, "d")):
        queue.push(at, item)
    assert queue.next_deadline() == 1.0
    assert list(queue.pop_due(2.0)) == [(1.0, "a"), (1.0, "b"), (2.0, "c")]
    assert len(queue) == 1 and queue.next_deadline() == 3.0
    assert list(queue.pop_due(2.5)) == []
