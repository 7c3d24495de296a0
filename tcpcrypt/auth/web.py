"""The session ID for web applications: WSGI and ASGI middleware setting `TCP_CRYPT_SESSID`.

Like the 2010 Apache module mod_tcpcrypt, the middleware puts the session ID of the request's
connection (lower-case hex, TEP byte first) into the WSGI environ or the ASGI scope as
`TCP_CRYPT_SESSID`, and removes the key when the connection has none, so an application can
bind a login or a cookie to the tcpcrypt session. Where the ID comes from:

* WSGI: the connection's socket in the environ (`tcpcrypt.socket`, set by
  `TcpcryptWSGIServer`, or `gunicorn.socket`): its `getsessid()` if it has one, else the local
  tcpcryptd is asked (`tcpcrypt.control.getsessid`);
* ASGI: the scope's `extensions["tcpcrypt"]["session_id"]` when the server fills it, else
  tcpcryptd is asked by the scope's server and client addresses.

Request headers cannot forge the key: WSGI turns headers into `HTTP_*` names, and the key is
overwritten or removed on every request.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from tcpcrypt.control import DaemonUnavailable, getsessid, request
from tcpcrypt.inband import inband_accept, peer_offers_inband

ENV_KEY = "TCP_CRYPT_SESSID"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Scope = MutableMapping[str, Any]
AsgiApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]


def _ask_daemon(sock: socket.socket) -> bytes | None:
    try:
        return getsessid(sock)
    except (DaemonUnavailable, OSError, ValueError):
        return None


def environ_session_id(environ: dict[str, Any]) -> bytes | None:
    """The session ID of the connection behind a WSGI request, or None."""
    sock = environ.get("tcpcrypt.socket") or environ.get("gunicorn.socket")
    if sock is None:
        return None
    getter = getattr(sock, "getsessid", None)
    if callable(getter):
        value = getter()
        return bytes(value) if value else None
    return _ask_daemon(sock) if isinstance(sock, socket.socket) else None


def scope_session_id(scope: Scope) -> bytes | None:
    """The session ID of the connection behind an ASGI request, or None."""
    extension = scope.get("extensions", {}).get("tcpcrypt", {})
    if isinstance(extension.get("session_id"), bytes):
        return bytes(extension["session_id"])
    server, client = scope.get("server"), scope.get("client")
    if not server or not client:
        return None
    try:
        reply = request({"op": "lookup", "local": f"{server[0]}:{server[1]}",
                         "remote": f"{client[0]}:{client[1]}"})
    except (DaemonUnavailable, OSError, ValueError):
        return None
    session = reply.get("session") or {}
    if not session.get("encrypted") or not session.get("session_id"):
        return None
    return bytes.fromhex(session["session_id"])


class SessionIdMiddleware:
    """WSGI middleware: `environ["TCP_CRYPT_SESSID"]` = the connection's session ID (hex)."""

    def __init__(self, app: WsgiApp,
                 lookup: Callable[[dict[str, Any]], bytes | None] = environ_session_id) -> None:
        self.app = app
        self.lookup = lookup

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        session_id = self.lookup(environ)
        if session_id:
            environ[ENV_KEY] = session_id.hex()
        else:
            environ.pop(ENV_KEY, None)
        return self.app(environ, start_response)


class SessionIdASGIMiddleware:
    """ASGI middleware: `scope["TCP_CRYPT_SESSID"]` for http and websocket connections."""

    def __init__(self, app: AsgiApp,
                 lookup: Callable[[Scope], bytes | None] = scope_session_id) -> None:
        self.app = app
        self.lookup = lookup

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope.get("type") in ("http", "websocket"):
            scope = dict(scope)
            session_id = await asyncio.to_thread(self.lookup, scope)
            if session_id:
                scope[ENV_KEY] = session_id.hex()
            else:
                scope.pop(ENV_KEY, None)
        await self.app(scope, receive, send)


class _Handler(WSGIRequestHandler):
    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ["tcpcrypt.socket"] = self.connection
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        pass


class TcpcryptWSGIServer(ThreadingMixIn, WSGIServer):
    """`wsgiref`'s server, a thread per connection; a client that opens with an in-band
    tcpcrypt offer gets tcpcrypt, any other client plain HTTP (and no `TCP_CRYPT_SESSID`)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: WsgiApp, timeout: float = 10.0) -> None:
        super().__init__(address, _Handler)
        self.set_app(app)
        self.connection_timeout = timeout

    def finish_request(self, request: Any, client_address: Any) -> None:
        """In the connection's thread: the in-band handshake if offered, then HTTP."""
        request.settimeout(self.connection_timeout)
        try:
            conn = inband_accept(request) if peer_offers_inband(request) else request
        except OSError:
            return  # the handshake failed: the server closes the socket
        self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]
