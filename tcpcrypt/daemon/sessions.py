"""What the daemon knows about each connection it carries, live and recently ended.

A record holds both views of a connection: the wire connection (what the network sees, the
4-tuple between the two daemons' hosts) and the application's connection (what the local
application's socket reports: for an outgoing connection its own address and the server it
asked for; for an incoming one the server's address and the daemon's local socket). Lookups
by either pair let `getsessid` work from the application's socket.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import asdict, dataclass, field

Address = tuple[str, int]


def format_address(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


@dataclass
class SessionRecord:
    """One connection through the daemon."""

    number: int
    role: str  # "A": we connected out; "B": a peer connected in
    wire_local: Address
    wire_remote: Address
    app_local: Address
    app_remote: Address
    started: float = field(default_factory=time.time)
    state: str = "negotiating"
    encrypted: bool = False
    suite: str | None = None
    aead: str | None = None
    session_id: str | None = None  # hex
    resumed: bool = False
    reason: str | None = None  # why it fell back or was reset
    bytes_sent: int = 0  # application bytes carried to the peer
    bytes_received: int = 0  # application bytes delivered from the peer
    live: bool = True
    ended: float | None = None

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        for name in ("wire_local", "wire_remote", "app_local", "app_remote"):
            data[name] = format_address(getattr(self, name))
        return data

    def matches(self, local: Address, remote: Address) -> bool:
        return (local, remote) in (
            (self.app_local, self.app_remote), (self.wire_local, self.wire_remote)
        )


class SessionTable:
    """Live records, plus the most recent ended ones (bounded)."""

    def __init__(self, keep_ended: int = 256) -> None:
        self._numbers = itertools.count(1)
        self._live: dict[int, SessionRecord] = {}
        self._ended: deque[SessionRecord] = deque(maxlen=keep_ended)

    def open(
        self, role: str, wire_local: Address, wire_remote: Address, app_local: Address,
        app_remote: Address,
    ) -> SessionRecord:
        record = SessionRecord(
            next(self._numbers), role, wire_local, wire_remote, app_local, app_remote
        )
        self._live[record.number] = record
        return record

    def close(self, record: SessionRecord) -> None:
        if self._live.pop(record.number, None) is None:
            return
        record.live = False
        record.ended = time.time()
        self._ended.append(record)

    def records(self, include_ended: bool = True) -> list[SessionRecord]:
        records = list(self._live.values())
        if include_ended:
            records += list(self._ended)
        return sorted(records, key=lambda record: record.number)

    def lookup(self, local: Address, remote: Address) -> SessionRecord | None:
        """The live (else most recent ended) record whose application or wire pair matches."""
        for record in self._live.values():
            if record.matches(local, remote):
                return record
        for record in reversed(self._ended):
            if record.matches(local, remote):
                return record
        return None
