"""Relaying one proxied connection between the application's socket and the wire socket.

Both sockets are handed to the event loop as transports (asyncio Protocols), so they stay
registered with the loop for the connection's whole life and bytes arrive by callback. The
earlier design awaited `loop.sock_recv` / `loop.sock_sendall` per read and write, which
registers and unregisters the socket with epoll each time: about 40 `epoll_ctl` calls per
short connection, measured with strace. Flow control: when one side's write buffer fills,
reading from the other side pauses until it drains.

`PlainRelay` copies bytes both ways (fallback to TCP). `EncryptedRelay` drives a
`TcpcryptConnection`: wire bytes in, application bytes out, and the reverse. Either finishes
when both directions have reached end of stream, or fails with `PeerReset` (the peer broke the
protocol) or an `OSError`; on failure both sockets are closed with a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import Any, Final, cast

from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.daemon.sessions import SessionRecord

KEY_EXCHANGE_TIMEOUT_S: Final = 10.0
WRITE_HIGH_WATER: Final = 4 * 1024 * 1024
PENDING_PLAINTEXT_LIMIT: Final = 4 * 1024 * 1024
"""Application bytes buffered before the keys exist; reading from the application pauses
beyond this until the connection is established."""

EventHandler = Callable[[TcpcryptConnection, SessionRecord], bytes]
"""Applies the connection's events to the record; returns the application bytes they carry
(raises `PeerReset` when an event says the connection must be reset)."""


class PeerReset(Exception):
    """The tcpcrypt connection must be reset (the reason is the message)."""


def reset_on_close(sock: Any) -> None:
    """SO_LINGER 0: closing the socket then sends a reset (a socket already closed is left)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def abort_with_reset(sock: socket.socket) -> None:
    """Close so that the other end sees a reset, whoever owns the socket now."""
    reset_on_close(sock)
    sock.close()


class _Side(asyncio.Protocol):
    """One of the two sockets of a relayed connection; reports everything to its relay."""

    def __init__(self, relay: _Relay, name: str) -> None:
        self.relay = relay
        self.name = name  # "app" or "wire"
        self.transport: asyncio.Transport | None = None
        self.early: list[bytes] = []  # read before the other side was there (uvloop reads at once)
        self.early_eof = False
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.attach(transport)

    def itself(self) -> _Side:
        """The protocol factory for this side's transport."""
        return self

    def attach(self, transport: asyncio.BaseTransport) -> None:
        """Take the transport (uvloop returns it before it calls connection_made)."""
        if self.transport is None:
            # uvloop's transports implement asyncio.Transport without subclassing it
            self.transport = cast(asyncio.Transport, transport)
            self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        if not self.relay.started:
            self.early.append(data)
            return
        self.relay.guarded(self.relay.on_data, self, data)

    def eof_received(self) -> bool:
        if not self.relay.started:
            self.early_eof = True
            return True
        self.eof = True
        self.relay.guarded(self.relay.on_eof, self)
        return True  # keep the socket open for the other direction

    def replay_early(self) -> None:
        """Hand the relay what arrived before it started."""
        early, self.early = self.early, []
        for data in early:
            self.relay.guarded(self.relay.on_data, self, data)
        if self.early_eof:
            self.early_eof = False
            self.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.on_lost(self, exc)

    def pause_writing(self) -> None:
        other = self.relay.other(self).transport
        if other is not None:
            other.pause_reading()

    def resume_writing(self) -> None:
        other = self.relay.other(self).transport
        if other is not None and not other.is_closing():
            other.resume_reading()


class _Relay:
    """Two sides, the byte counters of the record, and a future for the outcome."""

    def __init__(self, record: SessionRecord) -> None:
        self.record = record
        self.app = _Side(self, "app")
        self.wire = _Side(self, "wire")
        self.started = False
        self.finished = False
        self.done: asyncio.Future[None] | None = None  # made in run(), inside the loop

    def other(self, side: _Side) -> _Side:
        return self.wire if side is self.app else self.app

    async def run(self, app: socket.socket, wire: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self.done = loop.create_future()
        try:
            for side, sock in ((self.app, app), (self.wire, wire)):
                transport, _ = await loop.connect_accepted_socket(side.itself, sock)
                side.attach(transport)
        except BaseException:
            self.close(reset=True)
            raise
        self.started = True
        self.guarded(self.on_start)
        for side in (self.app, self.wire):
            side.replay_early()
        await self.done

    # --- hooks for the subclasses -----------------------------------------------------------
    def on_start(self) -> None:
        """Both transports exist and are about to read."""

    def on_data(self, side: _Side, data: bytes) -> None:
        raise NotImplementedError

    def on_eof(self, side: _Side) -> None:
        raise NotImplementedError

    # --- shared machinery ---------------------------------------------------------------------
    def guarded(self, handler: Callable[..., None], *args: object) -> None:
        """Run a handler; any exception ends the relay with it (both sockets reset)."""
        if self.finished:
            return
        try:
            handler(*args)
        except Exception as error:  # noqa: BLE001 - reported through the future
            self.fail(error)

    def write(self, side: _Side, data: bytes) -> None:
        if data and side.transport is not None and not side.transport.is_closing():
            side.transport.write(data)

    def write_eof(self, side: _Side) -> None:
        transport = side.transport
        if transport is not None and not transport.is_closing() and transport.can_write_eof():
            transport.write_eof()
        self.finish_if_both_ended()

    def finish_if_both_ended(self) -> None:
        if self.app.eof and self.wire.eof and not self.finished:
            self.finished = True
            self.close(reset=False)
            if self.done is not None:
                self.done.set_result(None)

    def fail(self, error: BaseException) -> None:
        if self.finished:
            return
        self.finished = True
        self.close(reset=True)
        if self.done is not None:
            self.done.set_exception(error)

    def on_lost(self, side: _Side, exc: Exception | None) -> None:
        if self.finished:
            return
        if exc is not None:
            self.fail(exc)
        elif not side.eof:  # closed by the loop without an end of stream (should not happen)
            self.fail(ConnectionResetError(f"{side.name} socket closed"))

    def close(self, *, reset: bool) -> None:
        for side in (self.app, self.wire):
            transport = side.transport
            if transport is None:
                continue
            if reset:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    reset_on_close(sock)
                transport.abort()
            else:
                transport.close()


class PlainRelay(_Relay):
    """Plain bytes both ways (the connection fell back to TCP)."""

    def on_data(self, side: _Side, data: bytes) -> None:
        self.write(self.other(side), data)
        if side is self.app:
            self.record.bytes_sent += len(data)
        else:
            self.record.bytes_received += len(data)

    def on_eof(self, side: _Side) -> None:
        self.write_eof(self.other(side))


class EncryptedRelay(_Relay):
    """Application bytes <-> tcpcrypt frames, through the connection's sans-IO core."""

    def __init__(
        self, record: SessionRecord, connection: TcpcryptConnection, events: EventHandler
    ) -> None:
        super().__init__(record)
        self.connection = connection
        self.events = events
        self.pending = 0  # application bytes given to the connection before the keys existed
        self.app_ended_early = False  # the application closed before the keys existed
        self.deadline: asyncio.TimerHandle | None = None

    def on_start(self) -> None:
        self.record.state = "key-exchange"
        self.deliver()  # a resumed session is established already
        self.flush()  # Init1 (host A), or nothing
        if self.connection.state is not ConnectionState.ESTABLISHED:
            self.deadline = asyncio.get_running_loop().call_later(
                KEY_EXCHANGE_TIMEOUT_S, self.guarded, self.key_exchange_timeout
            )

    def key_exchange_timeout(self) -> None:
        if self.connection.state is not ConnectionState.ESTABLISHED:
            raise PeerReset("key-exchange-timeout")

    def flush(self) -> None:
        self.write(self.wire, self.connection.data_to_send())

    def deliver(self) -> None:
        delivered = self.events(self.connection, self.record)
        if delivered:
            self.write(self.app, delivered)
            self.record.bytes_received += len(delivered)
        if self.connection.state is not ConnectionState.ESTABLISHED:
            return
        if self.pending:
            self.pending = 0
            if self.app.transport is not None and not self.app.transport.is_closing():
                self.app.transport.resume_reading()
        if self.app_ended_early:  # its held data is sealed now: end the wire stream after it
            self.app_ended_early = False
            self.flush()
            self.write_eof(self.wire)

    def on_data(self, side: _Side, data: bytes) -> None:
        connection = self.connection
        if side is self.app:
            if connection.state is ConnectionState.RESET:
                raise PeerReset(connection.reason or "reset")
            connection.send(data)
            self.record.bytes_sent += len(data)
            if connection.state is not ConnectionState.ESTABLISHED:
                self.pending += len(data)
                if self.pending > PENDING_PLAINTEXT_LIMIT and self.app.transport is not None:
                    self.app.transport.pause_reading()
        else:
            connection.receive(data)
            self.deliver()
        self.flush()

    def on_eof(self, side: _Side) -> None:
        if side is self.app:
            if self.connection.state is not ConnectionState.ESTABLISHED:
                self.app_ended_early = True  # Init2 still to come: end the stream after it
                return
            self.flush()
            self.write_eof(self.wire)
            return
        if self.connection.state is not ConnectionState.ESTABLISHED:
            raise PeerReset("closed-during-key-exchange")
        self.write_eof(self.app)

    def close(self, *, reset: bool) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        super().close(reset=reset)
