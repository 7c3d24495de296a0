"""The in-process tcpcrypt library, shaped like Python's `ssl` (docs/library.md).

TCP-ENO is negotiated by the kernel program (`tcpcrypt.kernel`); this package drives the
sans-IO core over the kernel's TCP socket, blocking (`sockets`) or with asyncio (`aio`).
"""

from __future__ import annotations

import socket
from typing import Any

from tcpcrypt.library.context import TcpcryptConnectionError, TcpcryptContext, default_context
from tcpcrypt.library.sockets import TcpcryptListener, TcpcryptSocket

__all__ = ["TcpcryptConnectionError", "TcpcryptContext", "TcpcryptListener", "TcpcryptSocket",
           "create_connection", "wrap_socket"]


def wrap_socket(sock: socket.socket, server_side: bool = False) -> Any:
    """`TcpcryptContext.wrap_socket` with the default context."""
    return default_context().wrap_socket(sock, server_side)


def create_connection(address: tuple[str, int], timeout: float | None = None,
                      context: TcpcryptContext | None = None) -> TcpcryptSocket:
    """Connect to `address` with tcpcrypt (plain TCP if the peer does not speak it)."""
    context = context or default_context()
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(
        address[0], address[1], type=socket.SOCK_STREAM
    ):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            wrapped = context.wrap_socket(sock)
            assert isinstance(wrapped, TcpcryptSocket)
            wrapped.connect(sockaddr)
            return wrapped
        except TcpcryptConnectionError:
            raise
        except OSError as error:
            sock.close()
            last = error
    raise last or OSError(f"cannot resolve {address[0]}")
