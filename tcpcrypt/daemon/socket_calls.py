"""The daemon's per-connection socket calls, each made with as few system calls as it takes.

Measured with `strace -f` on the server daemon (docs/daemon.md, "Where the time goes"): the
event loop's `sock_connect` resolves even a numeric address in a worker thread under uvloop
(a futex wake-up, a thread switch and an eventfd round trip per connection), `sock_accept`
registers and unregisters the listener with epoll for every connection, and sockets were put
in non-blocking mode and given TCP_NODELAY twice (once here, once by the transport). Here:

* `stream_socket` makes a non-blocking TCP socket in one `socket()` call (SOCK_NONBLOCK).
* `connect` connects without a resolver; a connection to a server on this host is usually
  complete when `connect()` returns (the loopback handshake runs inside the call), which
  one `getpeername()` confirms, and then no event-loop round trip is spent waiting for it.
* `Acceptor` keeps a listener registered for reading for its whole life and accepts every
  waiting connection per wake-up; a connection reset while it queued is counted and skipped,
  running out of descriptors rests the listener for ACCEPT_RETRY_S.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Callable
from typing import Final

ACCEPT_BATCH: Final = 64
"""Connections accepted per wake-up at most, so that one listener cannot starve the rest."""
ACCEPT_RETRY_S: Final = 0.05
"""After an accept error (out of descriptors, say), the listener rests this long."""
PER_CONNECTION_ERRORS: Final = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})
"""Accept errors that concern one connection only (it was reset while queued, or a firewall
refused it): counted, and accepting goes on without a rest."""

Address = tuple[str, int]


def stream_socket(mark: int | None = None) -> socket.socket:
    """A non-blocking IPv4 TCP socket, carrying socket mark `mark` when given."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    if mark is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
        except OSError:
            sock.close()
            raise
    return sock


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


def _raise_socket_error(sock: socket.socket) -> None:
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise OSError(code, os.strerror(code))


async def connect(sock: socket.socket, address: Address, timeout_s: float, *,
                  local: bool = False) -> None:
    """Connect the non-blocking `sock` to `address`; OSError when that fails, TimeoutError
    after `timeout_s`. With `local` (a server on this host), first check whether `connect()`
    itself completed the handshake."""
    code = sock.connect_ex(address)
    if code == 0:
        return
    if code not in (errno.EINPROGRESS, errno.EAGAIN):
        raise OSError(code, os.strerror(code))
    if local and _connected(sock):
        return
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def writable() -> None:
        if not ready.done():
            ready.set_result(None)

    def expired() -> None:
        if not ready.done():
            ready.set_exception(TimeoutError(f"connect to {address[0]}:{address[1]} timed out"))

    fd = sock.fileno()
    loop.add_writer(fd, writable)
    timer = loop.call_later(timeout_s, expired)
    try:
        await ready
    finally:
        timer.cancel()
        loop.remove_writer(fd)
    _raise_socket_error(sock)


class Acceptor:
    """Accepts connections on one listening socket and hands each to `handler` with the
    peer's address; errors are passed to `on_error` and the listener rests a moment."""

    def __init__(self, listener: socket.socket,
                 handler: Callable[[socket.socket, Address], None],
                 on_error: Callable[[OSError], None]) -> None:
        self.listener = listener
        self._handler = handler
        self._on_error = on_error
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.listener.fileno(), self._ready)

    def stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.listener.fileno())
        self._loop = None

    def _ready(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                # the socket's own accept() would convert family and type to enums twice
                fd, peer = self.listener._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                self._on_error(error)
                if error.errno in PER_CONNECTION_ERRORS:
                    continue
                self._rest()  # out of descriptors or memory: let some go first
                return
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0, fileno=fd)
            self._handler(sock, (str(peer[0]), int(peer[1])))

    def _rest(self) -> None:
        loop = self._loop
        if loop is None:
            return
        loop.remove_reader(self.listener.fileno())
        self._retry = loop.call_later(ACCEPT_RETRY_S, self._resume)

    def _resume(self) -> None:
        self._retry = None
        if self._loop is not None:
            self._loop.add_reader(self.listener.fileno(), self._ready)
