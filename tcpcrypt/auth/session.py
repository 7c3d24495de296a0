"""Where a connection's session ID comes from, the role labels, and the guarded attempt.

The application names the source: a callable returning the session ID, or nothing, in which
case the connection's own `getsessid()` is asked (the in-process library's sockets, the
in-band shim of `tcpcrypt.inband`; for sockets under tcpcryptd pass `daemon_session_id(sock)`,
which waits for the daemon's key exchange to finish). Role labels go into everything a side
proves, so a proof made by the client can never be reflected back as the server's.
"""

from __future__ import annotations

import enum
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tcpcrypt.auth.errors import AuthConfigError, AuthError, MessageTruncated, NoSessionId
from tcpcrypt.auth.wire import StreamLike, reject_and_close
from tcpcrypt.control import DEFAULT_CONTROL_NAME, DaemonUnavailable, session_of

SessionIdSource = Callable[[], bytes | None]


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"

    @property
    def label(self) -> bytes:
        return self.value.encode("ascii")

    @property
    def peer(self) -> Role:
        return Role.SERVER if self is Role.CLIENT else Role.CLIENT


SETTLED_STATES = ("fallback", "reset", "closed", "aborted")


def daemon_session_id(sock: socket.socket, *, wait_s: float = 5.0,
                      name: str = DEFAULT_CONTROL_NAME) -> SessionIdSource:
    """A source asking tcpcryptd for `sock`'s session ID, waiting up to `wait_s` while the
    daemon still negotiates or exchanges keys (it does so right after connect() returns)."""
    def source() -> bytes | None:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                session = session_of(sock, name)
            except DaemonUnavailable:
                return None  # no tcpcryptd here: the connection is plain TCP
            if session and session.get("encrypted") and session.get("session_id"):
                return bytes.fromhex(session["session_id"])
            settled = session is not None and session.get("state") in SETTLED_STATES
            if settled or time.monotonic() >= deadline:
                return None
            time.sleep(0.005)
    return source


def session_id_of(stream: Any, source: SessionIdSource | None = None) -> bytes:
    """The tcpcrypt session ID of `stream`'s connection; NoSessionId if it has none."""
    if source is None:
        getter = getattr(stream, "getsessid", None)
        if not callable(getter):
            raise AuthConfigError("no session ID source: pass one, or a socket with getsessid()")
        source = getter
    session_id = source()
    if not session_id:
        raise NoSessionId("the connection is not encrypted with tcpcrypt")
    return bytes(session_id)


@contextmanager
def guarded(stream: StreamLike, timeout: float | None) -> Iterator[None]:
    """Run one authentication attempt: any failure rejects and closes the connection.

    `timeout` (seconds) bounds each read of the attempt, when the stream has `settimeout`;
    the stream's own timeout is put back afterwards.
    """
    if timeout is not None and timeout <= 0:
        raise AuthConfigError(f"timeout must be positive, not {timeout}")
    settimeout = getattr(stream, "settimeout", None)
    previous = getattr(stream, "gettimeout", lambda: None)()
    if timeout is not None and callable(settimeout):
        settimeout(timeout)
    try:
        yield
    except AuthError as error:
        reject_and_close(stream, error)
        raise
    except OSError as error:
        wrapped = MessageTruncated(f"connection failed during authentication: {error}")
        reject_and_close(stream, wrapped)
        raise wrapped from error
    if timeout is not None and callable(settimeout):
        settimeout(previous)
