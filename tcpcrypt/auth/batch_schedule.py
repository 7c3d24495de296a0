"""When the batcher closes a batch, so that a connection waits at most one window in all.

A batch's window runs from its first session ID's arrival. Closing it when the window ends
would make that first connection wait the window *plus* the time from closing to its proof
being sent (the Merkle tree, the signature, handing the proofs to the connections' threads
and their writes): a signature more than the window. So the batch closes that long *before*
the window ends: `DeliveryEstimate` learns the time from a batch's close to its last proof
being sent (the batch's own measurement, an exponentially weighted mean and mean deviation as
TCP's retransmission timer does, RFC 6298) and the batch closes at `first arrival + window -
(mean + 2 deviations + check)`, where `check` is this host's time to check one proof (what
the client does before it has authenticated the server; measured once by the batcher's
warm-up, for a client as fast as the server).

When that margin reaches the window the server is overloaded (its proofs go out late because
the CPU is short, not because of the window) and the window cannot be met even by closing at
once. Closing batches ever earlier would make them smaller, cost more signatures and load it
further (a feedback loop the first version of this rule fell into at 2000 arrivals/s,
batches shrinking to 8 IDs). Then a batch that several IDs share closes at the window's end,
batching for throughput, so that each signature covers as many connections as the window
allows and the server can catch up; once proofs go out in time again, the margin comes back.
A lone ID loses no signature by closing at once, and does.

`DeliveryLog` collects the measurement: the batcher opens an entry when it closes a batch and
marks it resolved; each connection reports when its proof was sent (`Batcher.delivered`); the
sample is the largest margin one of the batch's connections needed: its send time minus the
close, less how much later than the batch's first it arrived (its own window ends that much
later). A connection that never reports (it failed,
or its server does not report) cannot hold an entry for ever: after `max_open` newer batches
the entry is taken with what it has (at least the close-to-resolved time).

Everything here is pure: times are passed in, so the tests drive it with a fake clock.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

GAIN = 1 / 8  # RFC 6298's alpha
DEVIATION_GAIN = 1 / 4  # RFC 6298's beta
DEVIATIONS = 2.0  # the margin: mean + this many mean deviations

T = TypeVar("T")


@dataclass
class DeliveryEstimate:
    """The learned time from closing a batch to its last proof sent (seconds)."""

    mean_s: float | None = None
    deviation_s: float = 0.0
    samples: int = 0
    check_s: float = 0.0  # a client's check of a proof, as long as this host takes for one
    cap_s: float | None = None  # a sample counts as at most this (the window; see observe)

    def observe(self, duration_s: float) -> None:
        """One batch's needed margin. A sample longer than the window (a stall: the process
        did not get the CPU for a while) counts as the window: no close time could have met
        it, so it says the window was missed, not how much earlier to close; uncapped, one
        stall of ten windows kept the margin past the window (the overloaded mode) for dozens
        of batches on a server that was keeping up."""
        duration_s = max(0.0, duration_s)
        if self.cap_s is not None:
            duration_s = min(duration_s, self.cap_s)
        self.samples += 1
        if self.mean_s is None:
            self.mean_s, self.deviation_s = duration_s, duration_s / 2
            return
        self.deviation_s += DEVIATION_GAIN * (abs(duration_s - self.mean_s) - self.deviation_s)
        self.mean_s += GAIN * (duration_s - self.mean_s)

    @property
    def margin_s(self) -> float:
        """How long before the window's end a batch closes (the check alone before any
        measurement)."""
        if self.mean_s is None:
            return self.check_s
        return self.mean_s + DEVIATIONS * self.deviation_s + self.check_s


def close_time(first_arrival: float, window_s: float, estimate: DeliveryEstimate,
               waiting: int = 1) -> float:
    """When a batch whose first session ID arrived at `first_arrival` closes, `waiting` IDs
    being in it now."""
    margin = estimate.margin_s
    if margin >= window_s:  # overloaded: even closing at once would miss the window
        # several IDs already share the batch: batch for throughput; a lone ID loses no
        # signature by closing at once
        margin = 0.0 if waiting > 1 else window_s
    return first_arrival + window_s - margin


@dataclass
class _Open:
    offsets: list[float]  # each connection's arrival after the batch's first
    closed_at: float
    needed: float  # the largest margin one of its connections needed so far
    reported: int = 0


@dataclass
class DeliveryLog:
    """Batches between their close and their last proof sent, keyed by the signed root."""

    estimate: DeliveryEstimate = field(default_factory=DeliveryEstimate)
    max_open: int = 8
    _open: OrderedDict[bytes, _Open] = field(default_factory=OrderedDict)

    def resolved(self, key: bytes, offsets: list[float], closed_at: float, now: float) -> None:
        """The batch closed at `closed_at`, whose connections arrived `offsets` after its
        first, has its proofs now (handed to its connections)."""
        self._open[key] = _Open(list(offsets), closed_at, now - closed_at)
        while len(self._open) > self.max_open:
            _, stale = self._open.popitem(last=False)
            self.estimate.observe(stale.needed)

    def delivered(self, key: bytes, index: int, now: float) -> bool:
        """Connection `index` of batch `key` has sent its proof (unknown keys and indexes are
        ignored); True when that completed the batch's measurement.

        A connection that arrived later than the batch's first has that much more time: it
        needed a margin of (sent - close) - (its arrival - the first's). The batch's sample is
        the largest of these, so the margin covers every connection of the batch.
        """
        entry = self._open.get(key)
        if entry is None or not 0 <= index < len(entry.offsets):
            return False
        entry.reported += 1
        entry.needed = max(entry.needed, now - entry.closed_at - entry.offsets[index])
        if entry.reported < len(entry.offsets):
            return False
        del self._open[key]
        self.estimate.observe(entry.needed)
        return True


@dataclass
class Waiting(Generic[T]):
    """A session ID waiting for its batch, with what its caller waits on (`ticket`)."""

    session_id: bytes
    ticket: T
    arrival: float


@dataclass
class BatchQueue(Generic[T]):
    """The session IDs waiting for a batch and the decision when the next batch closes.

    The batcher's worker asks `take(now)` whenever it is free or woken; `None` means wait
    until `due()`. `finished(now)` marks the worker free again after a batch (so a batch whose
    time came while the worker signed is counted as queued behind that signature).
    """

    max_batch: int
    window_s: float
    deliveries: DeliveryLog = field(default_factory=DeliveryLog)
    waiting: list[Waiting[T]] = field(default_factory=list)
    free_since: float = float("-inf")
    queued_batches: int = 0
    queued_s: float = 0.0

    def __post_init__(self) -> None:
        if self.window_s > 0:
            self.deliveries.estimate.cap_s = self.window_s

    def add(self, session_id: bytes, ticket: T, now: float) -> None:
        self.waiting.append(Waiting(session_id, ticket, now))

    def due(self) -> float | None:
        """When the waiting batch closes (None: nothing waits)."""
        if not self.waiting:
            return None
        due = close_time(self.waiting[0].arrival, self.window_s, self.deliveries.estimate,
                         len(self.waiting))
        if len(self.waiting) >= self.max_batch:
            due = min(due, self.waiting[self.max_batch - 1].arrival)  # full when that came
        return due

    def take(self, now: float, *, closing: bool = False) -> list[Waiting[T]] | None:
        """The batch to sign now, if its time has come (or `closing`: whatever waits)."""
        due = self.due()
        if due is None or (due > now and not closing):
            return None
        if self.free_since > due:  # its time came while the worker was signing
            self.queued_batches += 1
            self.queued_s += self.free_since - due
        batch = self.waiting[: self.max_batch]
        del self.waiting[: self.max_batch]
        return batch

    def finished(self, root: bytes, batch: list[Waiting[T]], closed_at: float,
                 now: float) -> None:
        """`batch`, closed at `closed_at`, is signed and its proofs handed out at `now`."""
        self.free_since = now
        first = batch[0].arrival
        self.deliveries.resolved(root, [waiting.arrival - first for waiting in batch],
                                 closed_at, now)
