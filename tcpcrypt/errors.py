"""Typed errors of the tcpcrypt package.

Two families, kept apart on purpose (the Local/Remote split of h11):

* `PeerError` and its subclasses: the peer (or the path) sent something malformed. Protocol
  code raises them internally; the connection object turns them into a fallback or a reset
  event carrying the machine-readable `reason`. They never escape a connection's public API.
* `UsageError`: our own caller misused the API (wrong state, bad parameter). Raised directly.
"""

from __future__ import annotations


class TcpcryptError(Exception):
    """Base class of every error raised by this package."""


class PeerError(TcpcryptError):
    """Malformed or unacceptable input from the peer; `reason` is a short machine-readable tag."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class DecodeError(PeerError):
    """Bytes that do not parse (truncated, oversized, bad magic, bad length)."""


class AuthenticationError(PeerError):
    """An AEAD tag did not verify."""


class UsageError(TcpcryptError):
    """The caller misused the API: wrong state, unknown name, bad parameter."""
