"""tcpcrypt with asyncio: a Protocol layer and streams, like `ssl=` in asyncio.

* `create_connection(protocol_factory, host, port, context=None)` -> (transport, protocol)
  and `create_server(protocol_factory, host, port, context=None)` -> `asyncio.Server`: the
  application's protocol sees plaintext through a transport that encrypts;
* `open_connection(host, port, context=None)` -> (reader, writer) and
  `start_server(client_connected_cb, host, port, context=None)`: the streams version.

The application's protocol gets `connection_made` once the key exchange is over (or the
connection fell back to plain TCP). After ENO succeeded, a failure resets the TCP connection and
the application sees `connection_lost(TcpcryptConnectionError)`; nothing goes out in the clear.
The transport's `get_extra_info("tcpcrypt")` is the `TcpcryptConnection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.events import ConnectionReset, DataReceived, Established
from tcpcrypt.library.context import TcpcryptConnectionError, TcpcryptContext, default_context
from tcpcrypt.resumed_path import prepare_next

ProtocolFactory = Callable[[], asyncio.Protocol]


class TcpcryptTransport(asyncio.Transport):
    """What the application's protocol writes to: bytes in, frames out."""

    def __init__(self, layer: TcpcryptProtocol) -> None:
        super().__init__()
        self._layer = layer

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._layer.send(bytes(data))

    def writelines(self, lines: Any) -> None:
        self.write(b"".join(lines))

    def write_eof(self) -> None:
        self._layer.raw.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        self._layer.raw.close()

    def abort(self) -> None:
        self._layer.raw.abort()

    def is_closing(self) -> bool:
        return self._layer.raw.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "tcpcrypt":
            return self._layer.connection
        return self._layer.raw.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._layer.raw.pause_reading()

    def resume_reading(self) -> None:
        self._layer.raw.resume_reading()

    def is_reading(self) -> bool:
        return self._layer.raw.is_reading()

    def get_write_buffer_size(self) -> int:
        return self._layer.raw.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._layer.raw.set_write_buffer_limits(high, low)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._layer.app

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._layer.app = protocol


class TcpcryptProtocol(asyncio.Protocol):
    """The layer between the TCP transport and the application's protocol."""

    def __init__(self, context: TcpcryptContext, app: asyncio.Protocol, server_side: bool,
                 connection: TcpcryptConnection | None = None,
                 ready: asyncio.Future[TcpcryptTransport] | None = None) -> None:
        self.context, self.app, self.server_side = context, app, server_side
        self.connection = connection
        self._ready = ready
        self.raw: asyncio.Transport = None  # type: ignore[assignment]
        self._transport = TcpcryptTransport(self)
        self._started = False
        self._failed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.raw = transport
        sock = transport.get_extra_info("socket")
        if self.server_side:
            self.connection = self.context.accepted(sock)
        else:
            assert self.connection is not None
            self.context.after_connect(sock, self.connection)
        self._progress()

    def data_received(self, data: bytes) -> None:
        if self._failed or self.connection is None:
            return
        self.connection.receive(data)
        self._progress()

    def eof_received(self) -> bool | None:
        if not self._started:
            self._fail("eof-during-key-exchange")
            return None
        return self.app.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._started:
            self.app.connection_lost(exc)
        elif self._ready is not None and not self._ready.done():
            self._ready.set_exception(exc or ConnectionError("closed during the key exchange"))
        if not self.server_side and self.connection is not None:  # build A's next resumption
            prepare_next(self.connection, self.context.resumed_paths)

    def pause_writing(self) -> None:
        if self._started:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if self._started:
            self.app.resume_writing()

    def send(self, data: bytes) -> None:
        if self._failed or self.connection is None:
            reason = self.connection.reason if self.connection else None
            raise TcpcryptConnectionError(reason or "closed")
        self.connection.send(data)
        self._flush()

    def _flush(self) -> None:
        assert self.connection is not None
        out = self.connection.data_to_send()
        if out:
            self.raw.write(out)

    def _progress(self) -> None:
        connection = self.connection
        assert connection is not None
        self._flush()
        while (event := connection.next_event()) is not None and not self._failed:
            if isinstance(event, DataReceived):
                self.app.data_received(event.data)
            elif isinstance(event, ConnectionReset):
                self._fail(event.reason)
            elif isinstance(event, Established):
                self.context.established(self.raw.get_extra_info("socket"), connection,
                                         self.server_side)
        if connection.state is ConnectionState.RESET:
            self._fail(connection.reason or "reset")
        elif not self._started and connection.state in (ConnectionState.ESTABLISHED,
                                                        ConnectionState.FALLBACK):
            self._started = True
            self.app.connection_made(self._transport)
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(self._transport)

    def _fail(self, reason: str) -> None:
        if self._failed:
            return
        self._failed = True
        assert self.connection is not None
        self.connection.abort(reason)
        sock = self.raw.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        error = TcpcryptConnectionError(self.connection.reason or reason)
        if self._started:
            self.app.connection_lost(error)
            self._started = False  # the raw transport's connection_lost is not passed on
        elif self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
        self.raw.abort()


async def create_connection(protocol_factory: ProtocolFactory, host: str, port: int,
                            context: TcpcryptContext | None = None
                            ) -> tuple[TcpcryptTransport, asyncio.Protocol]:
    """Connect with tcpcrypt; returns once the key exchange is over (or fell back)."""
    context = context or default_context()
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        connection = context.prepare_active(sock, (str(address[0]), int(address[1])))
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    ready: asyncio.Future[TcpcryptTransport] = loop.create_future()
    app = protocol_factory()
    await loop.create_connection(
        lambda: TcpcryptProtocol(context, app, False, connection, ready), sock=sock)
    return await ready, app


async def create_server(protocol_factory: ProtocolFactory, host: str, port: int,
                        context: TcpcryptContext | None = None,
                        backlog: int = 128) -> asyncio.Server:
    """Listen with tcpcrypt; each connection's protocol starts after its key exchange."""
    context = context or default_context()
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    context.prepare_listener(sock)
    sock.listen(backlog)
    sock.setblocking(False)
    return await loop.create_server(
        lambda: TcpcryptProtocol(context, protocol_factory(), True), sock=sock)


async def open_connection(host: str, port: int, context: TcpcryptContext | None = None,
                          limit: int = 2**16
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    app = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await create_connection(lambda: app, host, port, context)
    return reader, asyncio.StreamWriter(transport, app, reader, loop)


async def start_server(
    client_connected_cb: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                  Awaitable[None] | None],
    host: str, port: int, context: TcpcryptContext | None = None, limit: int = 2**16,
) -> asyncio.Server:
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.Protocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return await create_server(factory, host, port, context)
