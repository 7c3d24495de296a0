"""Typed errors of session-ID authentication, one per way an attempt can fail.

Every failure is an `AuthError` carrying a short machine-readable `reason`; the function that
raised it has already closed the connection, so the application never reads data from a
connection that did not authenticate. `SessionIdMismatch` is what a man in the middle looks
like: the peer proved something about a session ID that is not this connection's.
"""

from __future__ import annotations

from typing import ClassVar


class AuthError(Exception):
    """Authentication over the session ID failed; the connection has been closed."""

    reason: ClassVar[str] = "auth-failed"

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)
        self.detail = detail


class MessageTruncated(AuthError):
    """The connection ended (or the body ran out) in the middle of an authentication message."""

    reason = "truncated"


class MessageMalformed(AuthError):
    """Bytes that are not a well-formed authentication message (garbage, bad version or type)."""

    reason = "malformed"


class AuthTimeout(AuthError):
    """The peer did not send its authentication message in time."""

    reason = "timeout"


class NoSessionId(AuthError):
    """The connection has no tcpcrypt session ID (not encrypted): nothing to authenticate."""

    reason = "no-session-id"


class WrongPsk(AuthError):
    """CMAC: the peer holds a different pre-shared key."""

    reason = "wrong-psk"


class WrongPassword(AuthError):
    """PAKE: the peer used a different password."""

    reason = "wrong-password"


class SessionIdMismatch(AuthError):
    """The peer authenticated a different session ID: a man in the middle, or a replay."""

    reason = "session-id-mismatch"


class BadSignature(AuthError):
    """Batch signing: the signature over the batch does not verify under the trusted key."""

    reason = "bad-signature"


class NotCovered(AuthError):
    """Batch signing: the signed batch does not contain this connection's session ID."""

    reason = "not-covered"


class PeerRejected(AuthError):
    """The peer reported that our authentication failed on its side (its reason in `detail`)."""

    reason = "peer-rejected"


class AuthConfigError(ValueError):
    """A bad parameter given to the auth library by its caller (raised before anything runs)."""
