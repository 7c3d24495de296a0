"""Relaying one proxied connection between the application's socket and the wire socket.

Both sockets are handed to the event loop as transports (asyncio Protocols), so they stay
registered with the loop for the connection's whole life and bytes arrive by callback. The
earlier design awaited `loop.sock_recv` / `loop.sock_sendall` per read and write, which
registers and unregisters the socket with epoll each time: about 40 `epoll_ctl` calls per
short connection, measured with strace.

Bounds: when one side's write buffer passes `RelayLimits.write_high_water`, reading from the
other side pauses until it drains; application bytes given to the connection before the keys
exist stop reading past PENDING_PLAINTEXT_LIMIT; and every relay reports what it holds to the
daemon's `BufferBudget`, which pauses reading everywhere while the total is over its limit.
A connection that carries no byte either way for `RelayLimits.idle_timeout_s` (established,
fallen back, or half closed) is reset (`idle-timeout`).

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
from dataclasses import dataclass
from typing import Any, Final, cast

from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.daemon.budget import BufferBudget
from tcpcrypt.daemon.sessions import SessionRecord

KEY_EXCHANGE_TIMEOUT_S: Final = 10.0
PENDING_PLAINTEXT_LIMIT: Final = 1024 * 1024
"""Application bytes buffered before the keys exist; reading from the application pauses
beyond this until the connection is established."""


@dataclass(frozen=True)
class RelayLimits:
    """Per-connection bounds (the daemon's --idle-timeout sets the first)."""

    idle_timeout_s: float = 900.0
    write_high_water: int = 1024 * 1024

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
        self.blocked = False  # the other side's write buffer is full: do not read here
        self.reading = True

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
            self.transport.set_write_buffer_limits(high=self.relay.limits.write_high_water)

    def data_received(self, data: bytes) -> None:
        if not self.relay.started:
            self.early.append(data)
            return
        self.relay.active()
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
        self.relay.other(self).blocked = True
        self.relay.refresh_reading()

    def resume_writing(self) -> None:
        self.relay.other(self).blocked = False
        self.relay.refresh_reading()


class _Relay:
    """Two sides, the byte counters of the record, and a future for the outcome."""

    def __init__(
        self, record: SessionRecord, limits: RelayLimits | None = None,
        budget: BufferBudget | None = None,
    ) -> None:
        self.record = record
        self.limits = limits or RelayLimits()
        self.budget = budget
        self.app = _Side(self, "app")
        self.wire = _Side(self, "wire")
        self.started = False
        self.finished = False
        self.done: asyncio.Future[None] | None = None  # made in run(), inside the loop
        self.last_active = 0.0
        self.idle_timer: asyncio.TimerHandle | None = None
        # the loop, kept: each asyncio.get_running_loop() is a getpid() system call (a fork
        # check) and `active()` runs for every read
        self.loop: asyncio.AbstractEventLoop | None = None

    def other(self, side: _Side) -> _Side:
        return self.wire if side is self.app else self.app

    async def run(self, app: socket.socket, wire: socket.socket) -> None:
        loop = self.loop = asyncio.get_running_loop()
        self.done = loop.create_future()
        try:
            for side, sock in ((self.app, app), (self.wire, wire)):
                transport, _ = await loop.connect_accepted_socket(side.itself, sock)
                side.attach(transport)
        except BaseException:
            self.close(reset=True)
            raise
        self.started = True
        self.active()
        self.idle_timer = loop.call_later(self.limits.idle_timeout_s, self.check_idle)
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

    def hold_reading(self, side: _Side) -> bool:
        """Whether the subclass wants `side` not read for now."""
        return False

    # --- bounds -------------------------------------------------------------------------------
    def active(self) -> None:
        assert self.loop is not None
        self.last_active = self.loop.time()

    def check_idle(self) -> None:
        if self.finished:
            return
        quiet_until = self.last_active + self.limits.idle_timeout_s
        loop = self.loop
        assert loop is not None
        if loop.time() >= quiet_until:
            self.fail(PeerReset("idle-timeout"))
        else:
            self.idle_timer = loop.call_at(quiet_until, self.check_idle)

    def held_bytes(self) -> int:
        """Bytes this relay holds: both write buffers (for the budget)."""
        return sum(
            side.transport.get_write_buffer_size() for side in (self.app, self.wire)
            if side.transport is not None and not side.transport.is_closing()
        )

    def budget_lifted(self) -> None:
        if not self.finished:
            self.refresh_reading()

    def refresh_reading(self) -> None:
        """Pause or resume reading each side, by every bound at once."""
        over_budget = self.budget is not None and self.budget.over
        for side in (self.app, self.wire):
            transport = side.transport
            if transport is None or transport.is_closing():
                continue
            read = not (side.blocked or over_budget or self.hold_reading(side))
            if read != side.reading:
                side.reading = read
                if read:
                    transport.resume_reading()
                else:
                    transport.pause_reading()
        if over_budget and self.budget is not None:
            self.budget.wait(self)

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
        transport = side.transport
        if data and transport is not None and not transport.is_closing():
            transport.write(data)
            budget = self.budget
            # the transport sends at once when it can: only a buffered write changes the count
            if budget is not None and (transport.get_write_buffer_size() or budget.holds(self)):
                budget.update(self)
                if budget.over:
                    self.refresh_reading()

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
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        if self.budget is not None:
            self.budget.release(self)
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
        self, record: SessionRecord, connection: TcpcryptConnection, events: EventHandler,
        limits: RelayLimits | None = None, budget: BufferBudget | None = None,
    ) -> None:
        super().__init__(record, limits, budget)
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
            assert self.loop is not None
            self.deadline = self.loop.call_later(
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
            self.refresh_reading()
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
                if self.budget is not None:
                    self.budget.update(self)
                if self.pending > PENDING_PLAINTEXT_LIMIT or (self.budget and self.budget.over):
                    self.refresh_reading()
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

    def hold_reading(self, side: _Side) -> bool:
        return side is self.app and self.pending > PENDING_PLAINTEXT_LIMIT

    def held_bytes(self) -> int:
        return super().held_bytes() + self.pending

    def close(self, *, reset: bool) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        super().close(reset=reset)
