"""A bounded, single-use cache of resumable tcpcrypt sessions (RFC 8548 session resumption).

Host A keeps entries keyed by the peer it may resume with; host B keeps entries keyed by A's
resumption identifier. `take` removes the entry it returns, so each resumption identifier is
used at most once. The clock is passed in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from tcpcrypt.errors import UsageError
from tcpcrypt.key_schedule import SessionSecret


@dataclass(frozen=True, slots=True)
class ResumableSession:
    """What a later connection needs to resume: ss[i], the TEP and the AEAD it used."""

    secret: SessionSecret
    tep: int
    aead_id: int


class ResumptionCache:
    """At most `capacity` sessions, each kept for `lifetime_s` seconds, each taken once."""

    def __init__(self, capacity: int = 1024, lifetime_s: float = 3600.0) -> None:
        if capacity < 0:
            raise UsageError(f"resumption cache capacity must be >= 0, got {capacity}")
        if lifetime_s <= 0:
            raise UsageError(f"resumption lifetime must be > 0, got {lifetime_s}")
        self.capacity = capacity
        self.lifetime_s = lifetime_s
        self._entries: OrderedDict[Hashable, tuple[float, ResumableSession]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: Hashable, session: ResumableSession, now: float) -> None:
        """Remember `session` under `key`, evicting the least recently stored beyond capacity."""
        if self.capacity == 0:
            return
        self._entries.pop(key, None)
        self._entries[key] = (now + self.lifetime_s, session)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def take(self, key: Hashable, now: float) -> ResumableSession | None:
        """Remove and return the live session under `key`, or None."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        expires, session = entry
        return session if now < expires else None

    def peek(self, key: Hashable, now: float) -> ResumableSession | None:
        """The live session under `key` without using it up."""
        entry = self._entries.get(key)
        if entry is None or now >= entry[0]:
            return None
        return entry[1]
