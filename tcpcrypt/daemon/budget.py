"""One cap on the bytes every relayed connection together holds in the daemon's memory.

Each relay bounds itself (a side's write buffer pauses reading from the other side past a high
water mark), but thousands of connections times that bound is no bound. `BufferBudget` adds
the relays' held bytes (their transports' write buffers, and application bytes waiting for the
keys) up against one limit: once the total passes the limit, a relay that writes stops reading
until the total is back under three quarters of it. Buffers drain without telling anyone, so
while any relay holds bytes a timer re-counts them every REFRESH_S.
"""

from __future__ import annotations

import asyncio
from typing import Final, Protocol

REFRESH_S: Final = 0.02


class Holder(Protocol):
    """A relay as the budget sees it."""

    def held_bytes(self) -> int:
        """Bytes this relay holds in memory now."""

    def budget_lifted(self) -> None:
        """The budget is no longer over its limit: reading may resume."""


class BufferBudget:
    """Held bytes of all relays against `limit` (see the module docstring)."""

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError(f"a buffer budget needs a positive limit, got {limit}")
        self.limit = limit
        self.used = 0
        self.peak = 0
        self.over = False
        self._held: dict[Holder, int] = {}
        self._waiting: set[Holder] = set()
        self._timer: asyncio.TimerHandle | None = None

    def update(self, holder: Holder) -> None:
        """Re-count what `holder` holds (after it wrote, or on the timer)."""
        self._set(holder, holder.held_bytes())
        if self._held and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(REFRESH_S, self._refresh)
        self._judge()

    def holds(self, holder: Holder) -> bool:
        """Whether `holder` was counted holding bytes (a relay whose writes all went out at
        once, the usual case, is never counted and need not re-count after each write)."""
        return holder in self._held

    def release(self, holder: Holder) -> None:
        """`holder` ended: whatever it held is freed."""
        self._set(holder, 0)
        self._waiting.discard(holder)
        self._judge()

    def wait(self, holder: Holder) -> None:
        """`holder` stopped reading because the budget is over: tell it when that ends."""
        self._waiting.add(holder)

    def _set(self, holder: Holder, held: int) -> None:
        self.used += held - self._held.get(holder, 0)
        if held:
            self._held[holder] = held
        else:
            self._held.pop(holder, None)
        self.peak = max(self.peak, self.used)

    def _judge(self) -> None:
        if not self.over and self.used > self.limit:
            self.over = True
        elif self.over and self.used <= self.limit * 3 // 4:
            self.over = False
            waiting, self._waiting = self._waiting, set()
            for holder in waiting:
                holder.budget_lifted()

    def _refresh(self) -> None:
        self._timer = None
        for holder in list(self._held):
            self._set(holder, holder.held_bytes())
        self._judge()
        if self._held:
            self._timer = asyncio.get_running_loop().call_later(REFRESH_S, self._refresh)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
