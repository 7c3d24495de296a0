"""The TLS-compatible wrapper on the kernel path: TCP-ENO in the SYN decides, TLS otherwise.

`KernelTcpcryptOrTlsContext.wrap_socket` has the shape of `ssl.SSLContext.wrap_socket` for a
socket that is not connected yet (the kernel program puts the ENO option on the SYN at
`connect()` and answers it on a listening socket at `listen()`, so the wrapping must come
first). A connection on which tcpcrypt was negotiated authenticates the server's batch-signed
session ID (`serve_batch_signed` / `verify_batch_signed`); a connection on which it was not
(the peer has no tcpcrypt, or the path stripped the option) is plain TCP, and the real `ssl`
handshake runs on that same connection: no reconnect, unlike the in-band `fallback` module. A
tcpcrypt connection whose proof fails raises the `AuthError`; it never falls back to TLS.
"""

from __future__ import annotations

import os
import socket
import ssl
from typing import Any

from tcpcrypt.auth.batch_sign import serve_batch_signed, verify_batch_signed
from tcpcrypt.auth.batcher import Batcher
from tcpcrypt.auth.errors import AuthConfigError
from tcpcrypt.auth.signing import PublicKey
from tcpcrypt.library.context import TcpcryptContext
from tcpcrypt.library.sockets import TcpcryptListener, TcpcryptSocket

WrappedConnection = TcpcryptSocket | ssl.SSLSocket


def _plain_socket(connection: TcpcryptSocket) -> socket.socket:
    """The kernel socket under a connection that fell back, as a plain socket object."""
    plain = socket.socket(fileno=os.dup(connection.fileno()))
    connection.close()  # its descriptor only: the connection lives on in `plain`
    return plain


class _Listener:
    """`accept()` gives a batch-authenticated tcpcrypt connection or a TLS one."""

    def __init__(self, owner: KernelTcpcryptOrTlsContext, inner: TcpcryptListener) -> None:
        self._owner = owner
        self._inner = inner

    def listen(self, backlog: int = 128) -> None:
        self._inner.listen(backlog)

    def accept(self) -> tuple[WrappedConnection, Any]:
        connection, address = self._inner.accept()
        if connection.encrypted:
            assert self._owner.batcher is not None
            serve_batch_signed(connection, self._owner.batcher, timeout=self._owner.timeout)
            self._owner.last_protocol = "tcpcrypt"
            return connection, address
        self._owner.last_protocol = "tls"
        plain = _plain_socket(connection)
        plain.settimeout(self._owner.timeout)
        return self._owner.tls.wrap_socket(plain, server_side=True), address

    def fileno(self) -> int:
        return self._inner.fileno()

    def getsockname(self) -> Any:
        return self._inner.getsockname()

    def close(self) -> None:
        self._inner.close()


class _Client:
    """Connects with tcpcrypt offered in the SYN; afterwards used like the connection it got."""

    def __init__(self, owner: KernelTcpcryptOrTlsContext, inner: TcpcryptSocket,
                 server_hostname: str | None) -> None:
        self._owner = owner
        self._inner: WrappedConnection | TcpcryptSocket = inner
        self._hostname = server_hostname

    def connect(self, address: tuple[Any, ...]) -> None:
        inner = self._inner
        assert isinstance(inner, TcpcryptSocket)
        inner.connect(address)
        if inner.encrypted:
            assert self._owner.trusted_key is not None
            verify_batch_signed(inner, self._owner.trusted_key, timeout=self._owner.timeout)
            self._owner.last_protocol = "tcpcrypt"
            return
        self._owner.last_protocol = "tls"
        self._inner = self._owner.tls.wrap_socket(_plain_socket(inner),
                                                  server_hostname=self._hostname)

    def version(self) -> str | None:
        if isinstance(self._inner, ssl.SSLSocket):
            return self._inner.version()
        return "tcpcrypt"

    def __getattr__(self, name: str) -> Any:  # sendall, recv, close, getsessid, ...
        return getattr(self._inner, name)


class KernelTcpcryptOrTlsContext:
    """The TLS context plus what each side needs for tcpcrypt: the server's batcher, the
    client's trusted key, and the library context (suites, AEADs, resumption cache)."""

    def __init__(self, tls: ssl.SSLContext, *, batcher: Batcher | None = None,
                 trusted_key: PublicKey | None = None,
                 library: TcpcryptContext | None = None, timeout: float = 10.0) -> None:
        if timeout <= 0:
            raise AuthConfigError(f"timeout must be positive, not {timeout}")
        self.tls = tls
        self.batcher = batcher
        self.trusted_key = trusted_key
        self.library = library or TcpcryptContext()
        self.timeout = timeout
        self.last_protocol = ""

    def wrap_socket(self, sock: socket.socket, server_side: bool = False,
                    server_hostname: str | None = None) -> Any:
        """A listener (server side, before listen()) or a client (before connect())."""
        if server_side:
            if self.batcher is None:
                raise AuthConfigError("a server needs a Batcher to sign session IDs")
            inner = self.library.wrap_socket(sock, server_side=True)
            assert isinstance(inner, TcpcryptListener)
            return _Listener(self, inner)
        if self.trusted_key is None:
            raise AuthConfigError("a client needs the server's trusted public key")
        inner_client = self.library.wrap_socket(sock, server_side=False)
        assert isinstance(inner_client, TcpcryptSocket)
        return _Client(self, inner_client, server_hostname)
