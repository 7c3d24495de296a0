"""A bounded, single-use cache of resumable tcpcrypt sessions (RFC 8548 session resumption).

After a session with secret ss[i] both hosts may keep ss[i+1] (never ss[i] itself) to resume
later; the resumed session uses that ss[i+1], and both resumption identifiers are derived from
it (docs/protocol.md gives the evidence):

* host A keeps it under the peer it may resume with (any hashable key, e.g. (address, port));
  resuming, it takes the entry and sends A's identifier of ss[i+1];
* host B keeps it under A's resumption identifier, the 9 bytes A will send; it takes the entry
  when A names it and answers with B's identifier.

`take` removes the entry it returns, on both sides, so each resumption identifier is used at
most once: a resumed session stores its own next secret anew, with fresh identifiers. Entries
expire `lifetime_s` seconds after they were stored and the least recently stored go first
beyond `capacity`. The clock is passed in (`now`), never read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tcpcrypt.aead import aead_by_id
from tcpcrypt.errors import UsageError
from tcpcrypt.key_schedule import SessionSecret

if TYPE_CHECKING:
    from tcpcrypt.resumed_path import PreparedResume


@dataclass(frozen=True, slots=True)
class ResumableSession:
    """What a later connection needs to resume: the secret it will use (ss[i+1] of the session
    it continues), that session's TEP and AEAD."""

    secret: SessionSecret
    tep: int
    aead_id: int
    # (A's, B's) identifiers of `secret`, derived once: every stored session needs them (B
    # files it under A's, registers B's with the kernel; A sends its own, checks B's).
    _ids: tuple[bytes, bytes] = field(init=False, repr=False, compare=False)
    # What resuming it derives (keys, keyed AEADs), when derived ahead (resumed_path.prepare)
    _prepared: PreparedResume | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", self.secret.resumption_ids())
        object.__setattr__(self, "_prepared", None)

    @classmethod
    def with_ids(cls, secret: SessionSecret, tep: int, aead_id: int,
                 ids: tuple[bytes, bytes]) -> ResumableSession:
        """The session whose identifiers `ids` were already derived from `secret` (by
        `key_schedule.derive_session`, the same derivation), so they are not derived again."""
        session = object.__new__(cls)
        _SET_SECRET(session, secret)  # the slots' own setters: no frozen-check per field
        _SET_TEP(session, tep)
        _SET_AEAD_ID(session, aead_id)
        _SET_IDS(session, ids)
        _SET_PREPARED(session, None)
        return session

    @property
    def prepared(self) -> PreparedResume | None:
        """What resuming this session derives, if derived ahead of its use."""
        return self._prepared

    def keep_prepared(self, prepared: PreparedResume) -> None:
        """Remember `prepared` (derived from this session's secret) for its one use."""
        _SET_PREPARED(self, prepared)

    @property
    def aead_name(self) -> str:
        """The project name of the session's AEAD."""
        return aead_by_id(self.aead_id).name

    @property
    def a_resumption_id(self) -> bytes:
        """The 9 bytes A sends in its SYN to resume this session."""
        return self._ids[0]

    @property
    def b_resumption_id(self) -> bytes:
        """The 9 bytes B answers with when it agrees to resume this session."""
        return self._ids[1]


_SET_SECRET = ResumableSession.__dict__["secret"].__set__
_SET_TEP = ResumableSession.__dict__["tep"].__set__
_SET_AEAD_ID = ResumableSession.__dict__["aead_id"].__set__
_SET_IDS = ResumableSession.__dict__["_ids"].__set__
_SET_PREPARED = ResumableSession.__dict__["_prepared"].__set__


class ResumptionCache:
    """At most `capacity` sessions, each kept for `lifetime_s` seconds, each taken once."""

    def __init__(self, capacity: int = 1024, lifetime_s: float = 3600.0) -> None:
        if capacity < 0:
            raise UsageError(f"resumption cache capacity must be >= 0, got {capacity}")
        if not lifetime_s > 0:
            raise UsageError(f"resumption lifetime must be > 0, got {lifetime_s}")
        self.capacity = capacity
        self.lifetime_s = lifetime_s
        self._entries: OrderedDict[Hashable, tuple[float, ResumableSession]] = OrderedDict()

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        return len(self._entries)

    def put(self, key: Hashable, session: ResumableSession, now: float) -> None:
        """Remember `session` under `key` (replacing any entry there) until `now + lifetime_s`."""
        if self.capacity == 0:
            return
        entries = self._entries
        entries.pop(key, None)
        entries[key] = (now + self.lifetime_s, session)
        if entries[next(iter(entries))][0] <= now:  # the oldest expired: drop what did
            self._drop_expired(now)
        while len(entries) > self.capacity:
            entries.popitem(last=False)

    def take(self, key: Hashable, now: float) -> ResumableSession | None:
        """Remove the entry under `key`; its session if still live, else None."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        expires, session = entry
        return session if now < expires else None

    def peek(self, key: Hashable, now: float) -> ResumableSession | None:
        """The live session under `key`, without using it up (for inspection and stats)."""
        entry = self._entries.get(key)
        if entry is None or now >= entry[0]:
            return None
        return entry[1]

    def _drop_expired(self, now: float) -> None:
        """Drop expired entries from the oldest end (stored in expiry order while time runs on)."""
        while self._entries:
            key, (expires, _) = next(iter(self._entries.items()))
            if now < expires:
                return
            del self._entries[key]
