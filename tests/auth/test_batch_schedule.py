"""When batches close, on a fake clock: the batcher learns its close-to-sent time and closes
that long before the window ends, so every connection has its proof within one window of its
batch's first arrival; a batch whose time comes while the worker signs waits for it.

`simulate` drives the batcher's own decision code (`BatchQueue`) as its worker thread does,
with events on a fake clock: arrivals at a fixed rate, a signature taking `sign_s`, each
connection sending its proof `send_s` after the previous one of its batch.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import pytest

from tcpcrypt.auth.batch_schedule import BatchQueue, DeliveryEstimate, DeliveryLog, close_time

WINDOW = 0.010


def sid(index: int) -> bytes:
    return b"\x23" + index.to_bytes(32, "big")


@dataclass
class Outcome:
    waited: list[float] = field(default_factory=list)  # per connection: sent - own arrival
    from_first: list[float] = field(default_factory=list)  # sent - its batch's first arrival
    sizes: list[int] = field(default_factory=list)
    queue: BatchQueue[int] | None = None


def simulate(rate: float, *, count: int = 400, sign_s: float | list[float] = 0.0013,
             send_s: float = 0.00005, max_batch: int = 64, window_s: float = WINDOW,
             learn: bool = True) -> Outcome:
    queue: BatchQueue[int] = BatchQueue(max_batch, window_s)
    signs = itertools.cycle(sign_s if isinstance(sign_s, list) else [sign_s])
    if learn:  # the warm-up signature the batcher makes when it starts
        warm_up = next(signs)
        queue.deliveries.resolved(b"warm-up", [0.0], -1.0, -1.0 + warm_up)
        queue.deliveries.delivered(b"warm-up", 0, -1.0 + warm_up + send_s)
    events: list[tuple[float, int, str, object]] = []
    order = itertools.count()
    arrivals = [index / rate for index in range(count)]
    for index, arrival in enumerate(arrivals):
        heapq.heappush(events, (arrival, next(order), "arrive", index))
    outcome, busy, batch_number = Outcome(queue=queue), False, 0
    while events:
        now, _, kind, data = heapq.heappop(events)
        if kind == "arrive":
            assert isinstance(data, int)
            queue.add(sid(data), data, now)
        elif kind == "free":
            assert isinstance(data, tuple)
            root, signed, closed_at = data
            busy = False
            if learn:
                queue.finished(root, signed, closed_at, now)
            else:
                queue.free_since = now
        elif kind == "sent" and learn:
            assert isinstance(data, tuple)
            queue.deliveries.delivered(data[0], data[1], now)
        if busy:
            continue
        batch = queue.take(now)
        if batch is None:
            due = queue.due()
            if due is not None and kind != "wake":
                heapq.heappush(events, (due, next(order), "wake", None))
            continue
        busy, batch_number = True, batch_number + 1
        root = batch_number.to_bytes(8, "big")
        resolved = now + next(signs)
        heapq.heappush(events, (resolved, next(order), "free", (root, batch, now)))
        outcome.sizes.append(len(batch))
        for position, waiting in enumerate(batch, start=1):
            sent = resolved + position * send_s
            heapq.heappush(events, (sent, next(order), "sent", (root, position - 1)))
            outcome.waited.append(sent - arrivals[waiting.ticket])
            outcome.from_first.append(sent - batch[0].arrival)
    assert sum(outcome.sizes) == count
    return outcome


@pytest.mark.parametrize("rate", [100, 500, 2000])
def test_every_proof_is_sent_within_one_window_of_its_arrival(rate: float) -> None:
    outcome = simulate(rate)
    assert max(outcome.waited) <= WINDOW + 1e-9  # steady signing: the margin is exact
    assert outcome.waited[0] < WINDOW  # the first batch too, thanks to the warm-up


def test_closing_at_the_window_end_would_add_the_signature_on_top() -> None:
    outcome = simulate(100, learn=False)  # the old rule: close when the window ends
    assert max(outcome.waited) == pytest.approx(WINDOW + 0.0013 + 0.00005)


def test_a_varying_signing_time_is_covered_by_the_deviation_margin() -> None:
    outcome = simulate(500, sign_s=[0.0010, 0.0018, 0.0012, 0.0016])
    assert max(outcome.waited) <= WINDOW


def test_at_a_high_rate_one_signature_covers_many_connections() -> None:
    outcome = simulate(2000)
    assert min(outcome.sizes[1:-1]) >= 15  # about 2000/s x (10 ms - the margin)


def test_a_batch_whose_time_comes_during_a_signature_waits_and_keeps_filling() -> None:
    outcome = simulate(20_000, max_batch=8, sign_s=0.001)  # 8 IDs every 0.4 ms, 1 ms signs
    assert outcome.queue is not None and outcome.queue.queued_batches > 0
    assert max(outcome.sizes) == 8
    assert outcome.queue.queued_s > 0


def test_an_overloaded_signer_batches_the_whole_window_instead_of_shrinking_batches() -> None:
    outcome = simulate(2000, sign_s=0.012)  # 12 ms to close and send: over the window
    assert min(outcome.sizes[1:-1]) >= 19  # the whole 10 ms of arrivals, not ever fewer
    assert max(outcome.from_first) > WINDOW  # the window cannot be met with this key here


def test_the_estimate_starts_at_the_first_sample_and_follows_the_mean() -> None:
    estimate = DeliveryEstimate()
    assert estimate.margin_s == 0.0
    estimate.observe(0.002)
    assert (estimate.mean_s, estimate.deviation_s) == (0.002, 0.001)
    assert estimate.margin_s == pytest.approx(0.004)
    for _ in range(200):
        estimate.observe(0.001)
    assert estimate.mean_s == pytest.approx(0.001, rel=1e-6)
    assert estimate.margin_s == pytest.approx(0.001, rel=1e-3)
    estimate.observe(-5.0)  # a clock going backwards counts as zero, not as a negative time
    assert estimate.mean_s is not None and estimate.mean_s > 0


def test_the_clients_check_is_part_of_the_margin_from_the_start() -> None:
    estimate = DeliveryEstimate(check_s=0.0003)
    assert close_time(5.0, 0.010, estimate) == pytest.approx(5.0097)
    estimate.observe(0.001)  # mean 1 ms, deviation 0.5 ms
    assert estimate.margin_s == pytest.approx(0.001 + 2 * 0.0005 + 0.0003)


def test_the_close_moves_earlier_by_the_margin_unless_the_window_cannot_be_met() -> None:
    estimate = DeliveryEstimate()
    assert close_time(5.0, 0.010, estimate) == 5.010
    estimate.observe(0.004)  # margin 4 + 2 x 2 = 8 ms
    assert close_time(5.0, 0.010, estimate, waiting=3) == pytest.approx(5.002)
    estimate.observe(0.050)  # an overloaded server: closing sooner would only add signatures
    assert estimate.margin_s >= 0.010
    assert close_time(5.0, 0.010, estimate, waiting=3) == pytest.approx(5.010)
    assert close_time(5.0, 0.010, estimate, waiting=1) == pytest.approx(5.0)  # none to lose


def test_a_batch_is_measured_by_the_margin_its_neediest_connection_needed() -> None:
    log = DeliveryLog()
    log.resolved(b"root", [0.0, 0.002, 0.004], closed_at=1.000, now=1.001)
    assert not log.delivered(b"root", 2, 1.0050)  # arrived 4 ms after the first: needed 1 ms
    assert not log.delivered(b"root", 1, 1.0040)  # needed 4 - 2 = 2 ms
    assert not log.delivered(b"another", 0, 1.0031)  # unknown roots are ignored
    assert not log.delivered(b"root", 7, 1.0031)  # and unknown connections
    assert log.delivered(b"root", 0, 1.0015)  # the first: 1.5 ms
    assert log.estimate.mean_s == pytest.approx(0.002)


def test_a_batch_is_at_least_its_close_to_signed_time() -> None:
    log = DeliveryLog()
    log.resolved(b"root", [0.0, 0.009], closed_at=1.000, now=1.003)
    log.delivered(b"root", 1, 1.0031)  # needed 3.1 - 9 < 0
    assert log.delivered(b"root", 0, 1.0031)
    assert log.estimate.mean_s == pytest.approx(0.0031)


def test_a_batch_never_fully_reported_is_measured_when_it_ages_out() -> None:
    log = DeliveryLog(max_open=2)
    log.resolved(b"a", [0.0, 0.0], closed_at=0.0, now=0.001)  # nobody reports
    log.resolved(b"b", [0.0, 0.0], closed_at=0.1, now=0.101)
    assert log.estimate.samples == 0
    log.resolved(b"c", [0.0, 0.0], closed_at=0.2, now=0.201)  # "a" ages out: its resolve time
    assert log.estimate.samples == 1 and log.estimate.mean_s == pytest.approx(0.001)


def test_a_full_batch_closes_when_its_last_id_arrives() -> None:
    queue: BatchQueue[int] = BatchQueue(max_batch=3, window_s=1.0)
    for index, now in enumerate((0.0, 0.1, 0.2, 0.3)):
        queue.add(sid(index), index, now)
    assert queue.due() == 0.2
    batch = queue.take(0.25)
    assert batch is not None and [waiting.ticket for waiting in batch] == [0, 1, 2]
    assert queue.take(0.25) is None and queue.due() == pytest.approx(1.3)
    closing = queue.take(0.25, closing=True)
    assert closing is not None and [waiting.ticket for waiting in closing] == [3]
