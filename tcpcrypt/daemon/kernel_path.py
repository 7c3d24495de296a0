"""The daemon's TCP-ENO through the kernel program (docs/kernel.md) instead of NFQUEUE.

The daemon's own sockets opt in through the same steps as the library (`TcpcryptContext`):
its outgoing wire sockets before `connect()` (host A), its incoming proxy listener before
`listen()` (host B); every other socket on the host stays plain TCP. No handshake packet
reaches the daemon: it reads each wire socket's negotiation by fd and replays it in the
sans-IO core, which then runs the key exchange over the socket.

`ensure_loaded()` loads and attaches the program when it is not loaded yet (one line on
standard output says so); it stays loaded for other daemons and the library until
`tcpcrypt kernel unload` (or the emulation runtime's teardown).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from tcpcrypt.connection import TcpcryptConnection
from tcpcrypt.kernel import loader
from tcpcrypt.kernel.api import KernelEno
from tcpcrypt.library.context import TcpcryptContext
from tcpcrypt.resumption import ResumptionCache

KeyLogHook = Callable[[TcpcryptConnection], None]


def ensure_loaded() -> str | None:
    """Load the kernel program if it is not (then say what was done); raises
    `loader.KernelUnavailable` with a one-line reason when it cannot be."""
    if loader.is_loaded():
        return None
    return f"tcpcryptd: loaded the TCP-ENO kernel program: {loader.load()}"


class DaemonContext(TcpcryptContext):
    """The library's context with the daemon's cache, kernel handle and key log."""

    def __init__(self, suites: tuple[str, ...], aeads: tuple[str, ...],
                 cache: ResumptionCache, kernel: KernelEno) -> None:
        super().__init__(suites, aeads, cache)
        self._kernel = kernel
        self.on_keys: KeyLogHook | None = None

    @property
    def kernel(self) -> KernelEno:
        return self._kernel

    def established(self, sock: socket.socket, connection: TcpcryptConnection,
                    server_side: bool) -> None:
        """Host B registers the session for resumption in the kernel's table (keyed by the
        proxy listener's port, where redirected SYNs arrive); the key log is the daemon's."""
        secret, session_id = connection.secret, connection.session_id
        if secret is None or session_id is None:
            return
        if server_side and self.cache.capacity:
            self.register_resumption(sock, connection)
        if self.on_keys is not None:
            self.on_keys(connection)
