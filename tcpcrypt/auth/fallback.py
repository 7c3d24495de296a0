"""A TLS-compatible wrapper: tcpcrypt plus a batch-signed session ID where the peer offers it,
real TLS (Python's `ssl`) otherwise; the paper's "OpenSSL-compatible library".

`TcpcryptOrTlsContext.wrap_socket` has the shape of `ssl.SSLContext.wrap_socket`. A server
peeks at the first bytes: an in-band tcpcrypt offer gets tcpcrypt and this connection's proof
from the shared `Batcher` (one signature per batch of connections instead of one per
handshake); anything else (a TLS ClientHello) gets the wrapped `ssl.SSLContext`. A client that
trusts the server's batch-signing key offers tcpcrypt first; if the server does not answer the
offer it reconnects once to the same address and speaks TLS. A server that answers the offer
but fails authentication raises the `AuthError`: that is an attack, never a reason to fall
back. With the kernel path (ENO in the SYN) the choice would cost no reconnect; with the
in-band shim used here it costs one refused connection against a TLS-only server.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

from tcpcrypt.auth.batch_sign import serve_batch_signed, verify_batch_signed
from tcpcrypt.auth.batcher import Batcher
from tcpcrypt.auth.errors import AuthConfigError
from tcpcrypt.auth.signing import PublicKey
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.inband import InbandHandshakeError, InbandTcpcryptSocket, peer_offers_inband


class TcpcryptAuthenticatedSocket(InbandTcpcryptSocket):
    """A tcpcrypt connection whose session ID the server's batch signature authenticated."""

    def version(self) -> str:
        return "tcpcrypt"

    def send(self, data: bytes, /) -> int:
        self.sendall(data)
        return len(data)


WrappedSocket = TcpcryptAuthenticatedSocket | ssl.SSLSocket


class TcpcryptOrTlsContext:
    """Holds the TLS context and, per side, what tcpcrypt authentication needs."""

    def __init__(self, tls: ssl.SSLContext, *, batcher: Batcher | None = None,
                 trusted_key: PublicKey | None = None,
                 tcpcrypt_config: TcpcryptConfig | None = None,
                 timeout: float = 10.0) -> None:
        if timeout <= 0:
            raise AuthConfigError(f"timeout must be positive, not {timeout}")
        self.tls = tls
        self.batcher = batcher
        self.trusted_key = trusted_key
        self.tcpcrypt_config = tcpcrypt_config
        self.timeout = timeout
        self.last_protocol = ""  # "tcpcrypt" or "tls", for logs and tests

    def wrap_socket(self, sock: socket.socket, server_side: bool = False,
                    server_hostname: str | None = None) -> WrappedSocket:
        if server_side:
            return self._wrap_server(sock)
        return self._wrap_client(sock, server_hostname)

    def _wrap_server(self, sock: socket.socket) -> WrappedSocket:
        if self.batcher is not None:
            previous = sock.gettimeout()
            sock.settimeout(self.timeout)
            offered = peer_offers_inband(sock)
            sock.settimeout(previous)
            if offered:
                wrapped = TcpcryptAuthenticatedSocket(sock, active=False,
                                                      config=self.tcpcrypt_config)
                wrapped.handshake()
                if wrapped.getsessid() is not None:
                    serve_batch_signed(wrapped, self.batcher, timeout=self.timeout)
                    self.last_protocol = "tcpcrypt"
                    return wrapped
                sock.close()
                raise InbandHandshakeError("tcpcrypt was offered but not agreed")
        self.last_protocol = "tls"
        return self.tls.wrap_socket(sock, server_side=True)

    def _wrap_client(self, sock: socket.socket, server_hostname: str | None) -> WrappedSocket:
        if self.trusted_key is not None:
            peer, previous = sock.getpeername(), sock.gettimeout()
            wrapped = TcpcryptAuthenticatedSocket(sock, active=True, config=self.tcpcrypt_config)
            try:
                sock.settimeout(self.timeout)
                wrapped.handshake()
                sock.settimeout(previous)
            except (InbandHandshakeError, OSError):
                sock.close()
                sock = socket.create_connection(peer[:2], timeout=self.timeout)
                sock.settimeout(previous)
            else:
                if wrapped.getsessid() is not None:
                    verify_batch_signed(wrapped, self.trusted_key, timeout=self.timeout)
                    self.last_protocol = "tcpcrypt"
                    return wrapped
                with contextlib.suppress(OSError):
                    sock.close()
                raise InbandHandshakeError("the server answered the offer without tcpcrypt")
        self.last_protocol = "tls"
        return self.tls.wrap_socket(sock, server_side=False, server_hostname=server_hostname)
