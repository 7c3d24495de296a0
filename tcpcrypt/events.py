"""Events a `TcpcryptConnection` reports to whoever drives it (small frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Established:
    """Keys exist: from now on the stream is encrypted."""

    session_id: bytes
    role: str
    suite: str
    aead: str
    resumed: bool


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Application data from the peer (decrypted, or plain after a fallback)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Fallback:
    """Encryption was not negotiated; the connection carries plain TCP. `reason` says why."""

    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionReset:
    """The connection must be reset; nothing more is accepted. `reason` says why."""

    reason: str


Event = Established | DataReceived | Fallback | ConnectionReset
