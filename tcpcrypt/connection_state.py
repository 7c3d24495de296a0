"""The states of a `tcpcrypt.connection.TcpcryptConnection` (imported from there too)."""

from __future__ import annotations

import enum


class ConnectionState(enum.Enum):
    NEGOTIATING = "negotiating"  # TCP-ENO not decided yet
    KEY_EXCHANGE = "key-exchange"  # waiting for Init1 / Init2
    ESTABLISHED = "established"
    FALLBACK = "fallback"  # plain TCP
    RESET = "reset"
