"""Sans-IO scheduling of a middlebox path: what leaves the path, and when.

`PathScheduler` feeds packets to a model (a chain or a single model), keeps the packets the
model delays in a heap, asks the model's own timers (`next_timer`/`release`) and hands back
every packet that leaves, with its direction, at the time it is due. It reads no clock and
opens no socket: the caller passes `now` and does the sending. The simulator drives it with
simulated time (feed what arrives, sleep until `next_deadline()`, send what `due(now)`
returns).

`DeadlineQueue` is the heap underneath: items that fall due at a time, equal deadlines in the
order they were set. The AF_PACKET bridge engine keeps its delayed packets (with their
virtio-net headers) in one too, so the simulation and the emulation order and release delayed
packets with the same code.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from middleboxes.base import Action, Delay, Direction, Drop, Forward, Inject, Middlebox

T = TypeVar("T")


class DeadlineQueue(Generic[T]):
    """Items that fall due at a time (any clock the caller keeps); equal deadlines come out in
    the order they went in."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, at: float, item: T) -> None:
        heapq.heappush(self._heap, (at, next(self._order), item))

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> Iterator[tuple[float, T]]:
        """(deadline, item) for every item due by `now`, earliest first."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, item = heapq.heappop(heap)
            yield at, item


@dataclass(frozen=True, slots=True)
class Release:
    """A packet leaving the path in `direction` (towards the server or the client)."""

    direction: Direction
    packet: bytes
    at: float


class PathScheduler:
    def __init__(self, model: Middlebox) -> None:
        self.model = model
        self.counters: Counter[str] = Counter()
        self._delayed: DeadlineQueue[tuple[Direction, bytes]] = DeadlineQueue()
        self._timed = model.holds_packets()

    def feed(self, packet: bytes, direction: Direction, now: float) -> list[Release]:
        """One packet arriving at the path going `direction`; what leaves at once."""
        return self._apply(self.model.handle(packet, direction, now), direction, now)

    def next_deadline(self) -> float | None:
        """When `due` next has something to hand back (None: nothing is held)."""
        delayed = self._delayed.next_deadline()
        deadlines = [] if delayed is None else [delayed]
        if self._timed and (held := self.model.next_timer()) is not None:
            deadlines.append(held)
        return min(deadlines) if deadlines else None

    def due(self, now: float) -> list[Release]:
        """Every packet due by `now`: the model's timed releases and delayed packets, in
        deadline order."""
        out: list[Release] = []
        while True:
            held = self.model.next_timer() if self._timed else None
            delayed = self._delayed.next_deadline()
            if held is not None and held <= now and (delayed is None or held <= delayed):
                for direction, action in self.model.release(held):
                    out.extend(self._apply([action], direction, held))
            elif delayed is not None and delayed <= now:
                for at, (direction, packet) in self._delayed.pop_due(delayed):
                    out.append(Release(direction, packet, at))
            else:
                return out

    def _apply(self, actions: list[Action], direction: Direction, now: float) -> list[Release]:
        out: list[Release] = []
        for action in actions:
            if isinstance(action, Forward):
                out.append(Release(direction, action.packet, now))
            elif isinstance(action, Delay):
                self._delayed.push(now + action.seconds, (direction, action.packet))
            elif isinstance(action, Inject):
                out.append(Release(action.direction, action.packet, now))
                self.counters["injected"] += 1
            elif isinstance(action, Drop):
                self.counters[f"dropped:{action.reason}"] += 1
        return out
