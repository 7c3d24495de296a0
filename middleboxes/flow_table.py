"""Per-flow state with an idle timeout, a close timeout and a size cap, for the models that
remember flows (seq-rewrite, proxy-ack, nat).

Time comes from the packets themselves: every lookup or insert with the packet's `now` first
drops the entries whose time is up, so state is kept bounded without a timer of its own.

- A live entry lasts `idle_s` after the last packet of its flow.
- A flow that closed (an RST, or a FIN from both sides) lasts `closed_s` after closing, long
  enough for its last ACK or a retransmitted FIN to still find its state; a packet does not
  extend it.
- Past `max_flows` entries the least recently used one goes at once.

Live entries are kept in the order of their last packet and closed ones in the order they
closed, so each sweep only looks at the entries actually due (plus one). `on_drop(key, value,
reason)` tells the owner (nat frees the port) with reason "idle", "closed" or "evicted".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from middleboxes.base import Direction
from packets.tcp import FIN, RST, SYN

# The defaults of the models' flow parameters, and their ranges: idle_s as a firewall keeps an
# idle connection, closed_s a little over a retransmitted FIN's first timeout.
IDLE_S: Final = 600.0
CLOSED_S: Final = 10.0
MAX_FLOWS: Final = 65536
FLOW_RANGES: Final[dict[str, tuple[float, float]]] = {
    "idle_s": (0.001, 86_400), "closed_s": (0, 3600), "max_flows": (1, 1_000_000)}


def flow_params(idle_s: float, closed_s: float, max_flows: int) -> dict[str, object]:
    """The flow parameters that differ from the defaults (for a model's `describe`)."""
    given = {"idle_s": (idle_s, IDLE_S), "closed_s": (closed_s, CLOSED_S),
             "max_flows": (max_flows, MAX_FLOWS)}
    return {key: value for key, (value, default) in given.items() if value != default}


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class _Entry(Generic[V]):
    value: V
    deadline: float
    fins: int = 0  # bit 1: FIN seen to the server, bit 2: FIN seen to the client


_FIN_BIT = {Direction.TO_SERVER: 1, Direction.TO_CLIENT: 2}


class FlowTable(Generic[K, V]):
    def __init__(self, *, idle_s: float, closed_s: float, max_flows: int,
                 on_drop: Callable[[K, V, str], None] | None = None) -> None:
        self.idle_s, self.closed_s, self.max_flows = idle_s, closed_s, max_flows
        self._live: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._closed: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._on_drop = on_drop

    def __len__(self) -> int:
        return len(self._live) + len(self._closed)

    def __contains__(self, key: object) -> bool:
        return key in self._live or key in self._closed

    def get(self, key: K, now: float) -> V | None:
        """The flow's state, or None; a live flow's idle time starts again."""
        self.sweep(now)
        entry = self._live.get(key)
        if entry is not None:
            entry.deadline = now + self.idle_s
            self._live.move_to_end(key)
            return entry.value
        closed = self._closed.get(key)
        return None if closed is None else closed.value

    def put(self, key: K, value: V, now: float) -> None:
        """A new flow (replacing any state the key had); the least recently used flow goes
        if the table is full."""
        self.sweep(now)
        self.discard(key)
        while len(self) >= self.max_flows and not self.evict_one():
            break  # pragma: no cover - evict_one fails only on an empty table
        self._live[key] = _Entry(value, now + self.idle_s)

    def discard(self, key: K) -> None:
        """Forget a flow without telling the owner (it is being replaced)."""
        self._live.pop(key, None)
        self._closed.pop(key, None)

    def evict_one(self) -> bool:
        """Drop the closed flow that closed first, else the least recently used live one."""
        table = self._closed if self._closed else self._live
        if not table:
            return False
        key, entry = table.popitem(last=False)
        self._dropped(key, entry, "evicted")
        return True

    def observe(self, key: K, flags: int, direction: Direction, now: float) -> None:
        """Note the flow's FIN/RST: an RST, or FINs both ways, close the flow."""
        entry = self._live.get(key)
        if entry is None or not flags & (FIN | RST) or flags & SYN:
            return
        entry.fins |= _FIN_BIT[direction] if flags & FIN else 0
        if flags & RST or entry.fins == 3:
            del self._live[key]
            entry.deadline = now + self.closed_s
            self._closed[key] = entry

    def is_closed(self, key: K) -> bool:
        return key in self._closed

    def is_closed_any(self) -> bool:
        """Whether some flow has closed and waits out `closed_s`."""
        return bool(self._closed)

    def sweep(self, now: float) -> int:
        """Drop the flows whose time is up; how many went."""
        gone = 0
        for table, reason in ((self._closed, "closed"), (self._live, "idle")):
            while table:
                key, entry = next(iter(table.items()))
                if entry.deadline > now:
                    break
                del table[key]
                self._dropped(key, entry, reason)
                gone += 1
        return gone

    def _dropped(self, key: K, entry: _Entry[V], reason: str) -> None:
        if self._on_drop is not None:
            self._on_drop(key, entry.value, reason)
