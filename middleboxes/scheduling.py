"""Sans-IO scheduling of a middlebox path: what leaves the path, and when.

`PathScheduler` feeds packets to a model (a chain or a single model), keeps the packets the
model delays in a heap, asks the model's own timers (`next_timer`/`release`) and hands back
every packet that leaves, with its direction, at the time it is due. It reads no clock and
opens no socket: the caller passes `now` and does the sending. The simulator drives it with
simulated time; a bridge engine can drive it with its monotonic clock and a socket shell
(feed what arrives, sleep until `next_deadline()`, send what `due(now)` returns).
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass

from middleboxes.base import Action, Delay, Direction, Drop, Forward, Inject, Middlebox


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
        self._heap: list[tuple[float, int, Direction, bytes]] = []
        self._order = itertools.count()  # equal deadlines leave in the order they were set
        self._timed = model.holds_packets()

    def feed(self, packet: bytes, direction: Direction, now: float) -> list[Release]:
        """One packet arriving at the path going `direction`; what leaves at once."""
        return self._apply(self.model.handle(packet, direction, now), direction, now)

    def next_deadline(self) -> float | None:
        """When `due` next has something to hand back (None: nothing is held)."""
        deadlines = [self._heap[0][0]] if self._heap else []
        if self._timed and (held := self.model.next_timer()) is not None:
            deadlines.append(held)
        return min(deadlines) if deadlines else None

    def due(self, now: float) -> list[Release]:
        """Every packet due by `now`: the model's timed releases and delayed packets, in
        deadline order."""
        out: list[Release] = []
        while True:
            held = self.model.next_timer() if self._timed else None
            delayed = self._heap[0][0] if self._heap else None
            if held is not None and held <= now and (delayed is None or held <= delayed):
                for direction, action in self.model.release(held):
                    out.extend(self._apply([action], direction, held))
            elif delayed is not None and delayed <= now:
                at, _, direction, packet = heapq.heappop(self._heap)
                out.append(Release(direction, packet, at))
            else:
                return out

    def _apply(self, actions: list[Action], direction: Direction, now: float) -> list[Release]:
        out: list[Release] = []
        for action in actions:
            if isinstance(action, Forward):
                out.append(Release(direction, action.packet, now))
            elif isinstance(action, Delay):
                heapq.heappush(self._heap, (now + action.seconds, next(self._order), direction,
                                            action.packet))
            elif isinstance(action, Inject):
                out.append(Release(action.direction, action.packet, now))
                self.counters["injected"] += 1
            elif isinstance(action, Drop):
                self.counters[f"dropped:{action.reason}"] += 1
        return out
