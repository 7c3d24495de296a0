"""The daemon's data path: redirected connections relayed through `TcpcryptConnection`.

Outgoing: a local application's connection to a covered port is redirected to the outgoing
proxy port; the proxy opens the wire connection to the original destination itself (a marked
socket, not redirected again, opted in to the kernel's TCP-ENO before `connect()`), then
relays application bytes <-> frames. Incoming: a peer's connection to a covered port is
redirected to the incoming proxy port, whose listener opted in before `listen()`; the proxy
reads the accepted socket's negotiation from the kernel, connects to the local server at the
original address and relays frames <-> application bytes. A negotiation the kernel reports as
broken after ENO succeeded (`error`) resets the connection: never plain data there. When the
handshake fell back, both sides relay plain bytes; when the peer breaks the protocol, both
sockets are reset and the reason counted. The bytes themselves move in `relay.py`.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final

from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.daemon.budget import BufferBudget
from tcpcrypt.daemon.kernel_path import DaemonContext
from tcpcrypt.daemon.relay import (
    EncryptedRelay,
    PeerReset,
    PlainRelay,
    RelayLimits,
    abort_with_reset,
)
from tcpcrypt.daemon.rules import SOCKET_MARK
from tcpcrypt.daemon.sessions import Address, SessionRecord, SessionTable
from tcpcrypt.daemon.socket_calls import Acceptor, connect, stream_socket
from tcpcrypt.daemon.stats import Stats
from tcpcrypt.events import ConnectionReset, DataReceived, Established, Fallback

SO_ORIGINAL_DST: Final = 80
CONNECT_TIMEOUT_S: Final = 10.0

EstablishedHook = Callable[[SessionRecord, TcpcryptConnection], None]


def original_destination(sock: socket.socket) -> Address:
    """Where a redirected connection was going (the kernel's SO_ORIGINAL_DST)."""
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, address = struct.unpack_from("!H4s", raw, 2)
    return socket.inet_ntoa(address), port


def _address(value: object) -> Address:
    assert isinstance(value, tuple)
    return str(value[0]), int(value[1])


def _abort(*sockets: socket.socket) -> None:
    """Close with a reset so that the other end sees the failure."""
    for sock in sockets:
        abort_with_reset(sock)


class Proxy:
    """Accepts redirected connections on two ports and relays them."""

    def __init__(
        self, context: DaemonContext, sessions: SessionTable, stats: Stats,
        on_established: EstablishedHook, limits: RelayLimits | None = None,
        budget: BufferBudget | None = None, max_connections: int = 4096,
    ) -> None:
        self._limits = limits or RelayLimits()
        self._budget = budget
        self._max_connections = max_connections
        self._context = context
        self._sessions = sessions
        self._stats = stats
        self._on_established = on_established
        self._tasks: set[asyncio.Task[None]] = set()  # one per relayed connection
        self._listeners: list[socket.socket] = []
        self._acceptors: list[Acceptor] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # the serving loop, from start()

    @staticmethod
    def listen(port: int, context: DaemonContext | None = None) -> socket.socket:
        """A proxy listener, transparent so that the rules' guard delivers to it (and to
        nothing an unprivileged process could open on that port); with `context`, it answers
        TCP-ENO (the incoming side)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_IP, socket.IP_TRANSPARENT, 1)
        listener.bind(("0.0.0.0", port))
        if context is not None:
            context.prepare_listener(listener)
        listener.listen(1024)
        listener.setblocking(False)
        return listener

    def start(self, outgoing: socket.socket, incoming: Sequence[socket.socket]) -> None:
        """Serve the outgoing listener and the incoming ones (one per covered port)."""
        self._listeners = [outgoing, *incoming]
        self._acceptors = [Acceptor(outgoing, self._accepted_outgoing, self._accept_error)]
        self._acceptors += [Acceptor(listener, self._accepted_incoming, self._accept_error)
                            for listener in incoming]
        self._loop = asyncio.get_running_loop()
        for acceptor in self._acceptors:
            acceptor.start()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for acceptor in self._acceptors:
            acceptor.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for listener in self._listeners:
            listener.close()

    def _accept_error(self, error: OSError) -> None:
        self._stats.count("accept_errors", errno.errorcode.get(error.errno or 0, "?"))

    def _admit(self, sock: socket.socket) -> bool:
        """Whether one more connection may be relayed; if not it is reset (fail closed: a
        reset, never an unrelayed connection)."""
        if len(self._tasks) < self._max_connections:
            return True
        self._stats.count("refused", "too-many-connections")
        _abort(sock)
        return False

    def _accepted_outgoing(self, app: socket.socket, peer: Address) -> None:
        if self._admit(app):
            self._spawn(self._outgoing(app, peer))

    def _accepted_incoming(self, wire: socket.socket, peer: Address) -> None:
        if self._admit(wire):
            self._spawn(self._incoming(wire, peer))

    async def _connect(
        self, destination: Address, connection: TcpcryptConnection | None = None,
    ) -> socket.socket | None:
        """A marked socket connected to `destination`: with `connection`, a wire socket opted
        in to ENO; without, the connection to the local server."""
        sock = stream_socket(SOCKET_MARK)
        try:
            if connection is not None:
                self._context.kernel.offer(sock, connection.syn_option())
            await connect(sock, destination, CONNECT_TIMEOUT_S, local=connection is None)
            if connection is not None:
                self._context.after_connect(sock, connection)
            return sock
        except (TimeoutError, OSError) as error:
            code = getattr(error, "errno", None)
            self._stats.count("connect_failures", errno.errorcode.get(code or 0, "timeout"))
            sock.close()
            return None

    async def _outgoing(self, app: socket.socket, app_local: Address) -> None:
        try:
            destination = original_destination(app)
        except OSError:
            app.close()
            return
        connection = self._context.new_connection(True, destination)
        wire = await self._connect(destination, connection)
        if wire is None:
            _abort(app)
            return
        try:
            local = _address(wire.getsockname())
        except OSError:
            _abort(app, wire)
            return
        record = self._sessions.open("A", local, destination, app_local, destination)
        await self._carry(app, wire, connection, record)

    async def _incoming(self, wire: socket.socket, remote: Address) -> None:
        try:
            destination = original_destination(wire)
        except OSError:
            wire.close()
            return
        connection = self._context.accepted(wire)
        app = await self._connect(destination)
        if app is None:
            _abort(wire)
            return
        # the wire's local address as the network sees it is the original destination, not
        # the proxy port the redirect delivered it to
        record = self._sessions.open(
            "B", destination, remote, destination, _address(app.getsockname())
        )
        await self._carry(app, wire, connection, record)

    async def _carry(
        self, app: socket.socket, wire: socket.socket, connection: TcpcryptConnection,
        record: SessionRecord,
    ) -> None:
        self._stats.count("connections")
        try:
            if connection.state is ConnectionState.FALLBACK:
                reason = connection.reason or "fallback"
                record.state, record.reason = "fallback", reason
                self._stats.count("fallbacks", reason)
                await self._relay_plain(app, wire, record)
            elif connection.state is ConnectionState.RESET:  # ENO succeeded, then failed
                raise PeerReset(connection.reason or "reset")
            elif connection.state is ConnectionState.NEGOTIATING:
                raise PeerReset("handshake-incomplete")
            else:
                await self._relay_encrypted(app, wire, connection, record)
            if record.state not in ("fallback", "reset"):
                record.state = "closed"
        except PeerReset as reset:
            record.state, record.reason = "reset", str(reset)
            self._stats.count("resets", str(reset))
            _abort(app, wire)
        except (ConnectionError, OSError) as error:
            if record.state != "fallback":  # ended by a socket error: no longer "established"
                record.state = "aborted"
            record.reason = record.reason or type(error).__name__
            self._stats.count("socket_errors", type(error).__name__)
            _abort(app, wire)
        except asyncio.CancelledError:
            _abort(app, wire)
            raise
        except Exception as error:  # a bug must cost one connection, not the daemon
            record.state, record.reason = "reset", f"internal-{type(error).__name__}"
            self._stats.count("internal_errors", type(error).__name__)
            _abort(app, wire)
        finally:
            app.close()
            wire.close()
            self._stats.count("bytes_sent", amount=record.bytes_sent)
            self._stats.count("bytes_received", amount=record.bytes_received)
            self._sessions.close(record)

    async def _relay_plain(
        self, app: socket.socket, wire: socket.socket, record: SessionRecord
    ) -> None:
        await PlainRelay(record, self._limits, self._budget).run(app, wire)

    async def _relay_encrypted(
        self, app: socket.socket, wire: socket.socket, connection: TcpcryptConnection,
        record: SessionRecord,
    ) -> None:
        def events(connection: TcpcryptConnection, record: SessionRecord) -> bytes:
            return self._events(connection, record, wire)

        await EncryptedRelay(
            record, connection, events, self._limits, self._budget
        ).run(app, wire)

    def _events(
        self, connection: TcpcryptConnection, record: SessionRecord, wire: socket.socket
    ) -> bytes:
        """Apply the connection's events to the record; the application bytes they carry."""
        delivered: list[bytes] = []
        while (event := connection.next_event()) is not None:
            if isinstance(event, DataReceived):
                delivered.append(event.data)
            elif isinstance(event, Established):
                record.state, record.encrypted = "established", True
                record.suite, record.aead = event.suite, event.aead
                record.session_id, record.resumed = event.session_id.hex(), event.resumed
                self._stats.count("established")
                if event.resumed:
                    self._stats.count("resumed")
                self._context.established(wire, connection, record.role == "B")
                self._on_established(record, connection)
            elif isinstance(event, ConnectionReset):
                raise PeerReset(event.reason)
            elif isinstance(event, Fallback):  # cannot happen once the key exchange started
                raise PeerReset(f"late-fallback-{event.reason}")
        return b"".join(delivered)
