"""Blocking tcpcrypt sockets shaped like `ssl.SSLSocket`: `TcpcryptSocket` (a connection) and
`TcpcryptListener` (a wrapped listening socket whose `accept()` returns `TcpcryptSocket`s).

A connection drives the sans-IO core over the kernel's TCP socket: the handshake (Init1/Init2)
runs inside `connect()` / `accept()`; afterwards `send` seals frames and `recv` opens them.
After ENO succeeded, any failure resets the TCP connection (SO_LINGER 0) and raises
`TcpcryptConnectionError`: nothing is ever sent or returned in the clear. A connection whose
negotiation fell back is plain TCP (`encrypted` False, `getsessid()` None).
"""

from __future__ import annotations

import contextlib
import io
import select
import socket
import struct
from collections import deque
from typing import Any

from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.errors import UsageError
from tcpcrypt.events import ConnectionReset, DataReceived, Established
from tcpcrypt.kernel.api import before_connect
from tcpcrypt.library.context import TcpcryptConnectionError, TcpcryptContext, listening_place
from tcpcrypt.resumed_path import prepare_next

RECV_CHUNK = 65536
_HANDSHAKING = (ConnectionState.NEGOTIATING, ConnectionState.KEY_EXCHANGE)


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def wrap(context: TcpcryptContext, sock: socket.socket,
         server_side: bool) -> TcpcryptSocket | TcpcryptListener:
    if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
        raise UsageError("tcpcrypt wraps TCP sockets (AF_INET or AF_INET6, SOCK_STREAM)")
    if server_side:
        context.prepare_listener(sock)
        return TcpcryptListener(context, sock)
    if not before_connect(sock):
        raise UsageError("TCP-ENO rides on the SYN: wrap the socket before connect() "
                         "(or use tcpcrypt.create_connection)")
    return TcpcryptSocket(context, sock, server_side=False)


class TcpcryptSocket:
    """One tcpcrypt connection (or plain TCP after a fallback), used like a socket."""

    def __init__(self, context: TcpcryptContext, sock: socket.socket, *, server_side: bool,
                 connection: TcpcryptConnection | None = None,
                 where: tuple[int, int] | None = None) -> None:
        self.context = context
        self._sock = sock
        self.server_side = server_side
        self._connection = connection
        self._where = where  # B: (listening port, netns cookie), known to its listener
        self._plain: deque[bytes | bytearray | memoryview] = deque()  # plaintext not yet read
        # B: the established session's resumption identifiers still to be put in the kernel's
        # table: done when B would first wait for data, else before its first answer leaves,
        # or at close (off accept()'s path; see docs/library.md)
        self._unregistered = False
        self._eof = False
        self._closed = False

    # --- establishing ---------------------------------------------------------------------
    def connect(self, address: tuple[Any, ...]) -> None:
        if self._connection is not None:
            raise UsageError("already connected")
        peer = (str(address[0]), int(address[1]))
        self._connection = self.context.prepare_active(self._sock, peer)
        self._sock.connect(address)
        self.context.after_connect(self._sock, self._connection)
        self._handshake()

    def _handshake(self) -> None:
        """Run the key exchange to its end (Established, a fallback, or a reset)."""
        connection = self._require()
        sock = self._sock
        out = connection.data_to_send() if connection._outgoing else b""
        while True:
            self._write(out)
            if connection.state not in _HANDSHAKING:
                break
            try:
                data = sock.recv(RECV_CHUNK)
            except OSError as error:
                self._fail(f"socket-error-{type(error).__name__}")
            if not data:
                self._fail("eof-during-key-exchange")
            connection.receive(data)
            self._drain_events(connection)
            out = connection.data_to_send()
        if connection._events or connection.state is ConnectionState.RESET:
            self._drain_events(connection)

    def _require(self) -> TcpcryptConnection:
        if self._connection is None:
            raise UsageError("not connected")
        return self._connection

    def _fail(self, reason: str) -> Any:
        """Reset the TCP connection and raise; the core's reason wins when it has one."""
        connection = self._connection
        if connection is not None:
            connection.abort(reason)
            reason = connection.reason or reason
        if not self._closed:
            self._closed = True
            reset(self._sock)
        raise TcpcryptConnectionError(reason)

    def _drain_events(self, connection: TcpcryptConnection | None = None) -> None:
        """Act on the core's events (`connection`: this socket's, when the caller has it)."""
        if connection is None:
            connection = self._require()
        events = connection._events  # read in place (the core's queue): no call per event
        while events:
            event = events.popleft()
            kind = type(event)
            if kind is DataReceived:
                self._plain.append(event.data)  # type: ignore[union-attr]
            elif kind is ConnectionReset:
                self._fail(event.reason)  # type: ignore[union-attr]
            elif kind is Established:
                if self._where is not None:
                    self.context.established_unregistered(connection)
                    self._unregistered = True
                else:
                    self.context.established(self._sock, connection, self.server_side)
        if connection.state is ConnectionState.RESET:
            self._fail(connection.reason or "reset")

    def _register(self) -> None:
        """B: put the session's resumption identifiers in the kernel's table (once). A table
        that refuses it (full, unloaded) costs only that resumption: A then gets a full key
        exchange, never this connection."""
        self._unregistered = False
        connection = self._connection
        if connection is not None and connection.state is ConnectionState.ESTABLISHED and (
            not self._closed
        ):
            with contextlib.suppress(OSError):
                self.context.register_resumption(self._sock, connection, self._where)

    def _flush(self) -> None:
        self._write(self._require().data_to_send())

    def _write(self, out: bytes) -> None:
        """The core's bytes to the socket (none: nothing); a socket error resets."""
        if out:
            try:
                self._sock.sendall(out)
            except OSError as error:
                self._fail(f"socket-error-{type(error).__name__}")

    # --- what the application sees ----------------------------------------------------------
    @property
    def encrypted(self) -> bool:
        return self._connection is not None and self._connection.session_id is not None

    @property
    def resumed(self) -> bool:
        return self._connection is not None and self._connection.resumed

    @property
    def tep(self) -> str | None:
        """The key-agreement suite's name (e.g. "x25519"), None without encryption."""
        return self._connection.suite if self.encrypted and self._connection else None

    @property
    def fallback_reason(self) -> str | None:
        connection = self._connection
        return connection.reason if connection and not self.encrypted else None

    def getsessid(self) -> bytes | None:
        """The session ID (33+ bytes), or None when the connection is plain TCP."""
        return self._connection.session_id if self._connection else None

    def send(self, data: bytes | bytearray | memoryview) -> int:
        connection = self._connection
        if connection is None:
            raise UsageError("not connected")
        if self._closed:
            raise OSError("the socket is closed")
        if connection.state is ConnectionState.ESTABLISHED:
            connection.send(data)  # type: ignore[arg-type]  # sealed at once: no copy needed
        else:
            connection.send(bytes(data))
        if self._unregistered:  # before any answer leaves: A may resume once it has one
            self._register()
        self._write(connection.data_to_send())
        return len(data)

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        self.send(data)

    def _fill(self) -> None:
        """Read from the socket until some plaintext waits in `_plain`, or the peer's end."""
        connection = self._connection
        if connection is None:
            raise UsageError("not connected")
        plain = self._plain
        while not plain and not self._eof:
            try:
                data = self._recv_registering() if self._unregistered else self._sock.recv(
                    RECV_CHUNK)
            except TimeoutError:
                raise
            except OSError as error:
                if connection.state is ConnectionState.ESTABLISHED:
                    self._fail(f"socket-error-{type(error).__name__}")
                raise
            if not data:
                self._eof = True
                break
            if connection.state is ConnectionState.ESTABLISHED and not connection._events:
                plain.extend(connection.receive_established(data))  # frames opened in place
                if connection.state is not ConnectionState.ESTABLISHED:
                    self._drain_events(connection)  # a bad frame: reset and raise
                continue
            connection.receive(data)
            self._drain_events(connection)
            self._flush()

    def _recv_registering(self) -> bytes:
        """B's recv() while the session is unregistered: registered first when the recv()
        would wait (the peer's data is then on its way). A blocking socket tries a recv()
        that does not wait (what a server whose client spoke first needs: one syscall);
        others ask poll(2) first."""
        sock = self._sock
        if sock.gettimeout() is None:
            try:
                return sock.recv(RECV_CHUNK, socket.MSG_DONTWAIT)
            except BlockingIOError:
                self._register()
                return sock.recv(RECV_CHUNK)
        if not self._readable():
            self._register()
        return sock.recv(RECV_CHUNK)

    def _readable(self) -> bool:
        """Whether a recv() would return at once (one poll(2) with no wait)."""
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))

    def recv(self, size: int = RECV_CHUNK) -> bytes:
        self._fill()
        plain = self._plain
        if not plain:
            return b""
        chunk = plain[0]
        if len(chunk) <= size:
            plain.popleft()
            return bytes(chunk)
        plain[0] = memoryview(chunk)[size:]
        return bytes(memoryview(chunk)[:size])

    def recv_into(self, buffer: bytearray | memoryview, nbytes: int = 0) -> int:
        """Plaintext into `buffer` (at most `nbytes` when given): what is waiting, copied
        once from the opened frames, at least one byte unless the peer ended."""
        view = memoryview(buffer).cast("B")
        room = min(nbytes, len(view)) if nbytes else len(view)
        self._fill()
        plain = self._plain
        done = 0
        while plain and done < room:
            chunk = plain[0]
            size = len(chunk)
            if size <= room - done:
                view[done : done + size] = chunk
                done += size
                plain.popleft()
            else:
                take = room - done
                view[done:room] = memoryview(chunk)[:take]
                plain[0] = memoryview(chunk)[take:]
                done = room
        return done

    def makefile(self, mode: str = "r", buffering: int | None = None, *,
                 encoding: str | None = None, errors: str | None = None,
                 newline: str | None = None) -> Any:
        """A file object over the connection, like `socket.makefile`."""
        raw = _SocketIO(self, mode)
        binary = "b" in mode
        size = io.DEFAULT_BUFFER_SIZE if buffering in (None, -1) else buffering
        buffered: io.BufferedIOBase | _SocketIO
        if size == 0:
            if not binary:
                raise ValueError("unbuffered streams must be binary")
            return raw
        if "r" in mode and "w" in mode:
            buffered = io.BufferedRWPair(raw, raw, size)
        elif "w" in mode:
            buffered = io.BufferedWriter(raw, size)
        else:
            buffered = io.BufferedReader(raw, size)
        if binary:
            return buffered
        return io.TextIOWrapper(buffered, encoding, errors, newline)

    def shutdown(self, how: int) -> None:
        if self._unregistered:
            self._register()
        self._sock.shutdown(how)

    def close(self) -> None:
        if not self._closed:
            if self._unregistered:
                self._register()
            self._closed = True
            self._sock.close()
            connection = self._connection
            if connection is not None and connection.resumable is not None:
                # after the last byte: key the next resumption (if this end cached one)
                prepare_next(connection, self.context.resumed_paths)

    def fileno(self) -> int:
        return self._sock.fileno()

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self._sock.gettimeout()

    def setsockopt(self, *args: Any) -> None:
        self._sock.setsockopt(*args)

    def getpeername(self) -> Any:
        return self._sock.getpeername()

    def getsockname(self) -> Any:
        return self._sock.getsockname()

    def __enter__(self) -> TcpcryptSocket:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _SocketIO(io.RawIOBase):
    """The raw layer of `makefile()`."""

    def __init__(self, owner: TcpcryptSocket, mode: str) -> None:
        super().__init__()
        self._owner, self._mode = owner, mode

    def readable(self) -> bool:
        return "r" in self._mode

    def writable(self) -> bool:
        return "w" in self._mode

    def readinto(self, buffer: Any) -> int:
        return self._owner.recv_into(buffer)

    def write(self, data: Any) -> int:
        self._owner.sendall(bytes(data))
        return len(data)


class TcpcryptListener:
    """A wrapped listening socket: `listen()`, then `accept()` returns `TcpcryptSocket`s."""

    def __init__(self, context: TcpcryptContext, sock: socket.socket) -> None:
        self.context = context
        self._sock = sock
        self._where: tuple[int, int] | None = None  # (port, netns cookie), read once
        # The kernel handle whose table holds this listener's record (and so its accepted
        # sockets' records), and the socket's numbers: read once, not on every accept
        self._kernel = context.kernel
        self._kind = (int(sock.family), int(sock.type), sock.proto)

    def listen(self, backlog: int = 128) -> None:
        self._sock.listen(backlog)

    def accept(self) -> tuple[TcpcryptSocket, Any]:
        """The next connection, its key exchange done (or fallen back to plain TCP).
        A connection whose key exchange fails is reset and `TcpcryptConnectionError` raised."""
        # `socket.accept()` without its per-call enum conversions of the listener's family
        # and type (the same socket object and the same blocking rule otherwise)
        listener = self._sock
        fd, address = listener._accept()  # type: ignore[attr-defined]
        family, kind, proto = self._kind
        raw = socket.socket(family, kind, proto, fileno=fd)
        if socket.getdefaulttimeout() is None and listener.gettimeout():
            raw.setblocking(True)
        context = self.context
        connection = context.accepted(raw, self._kernel)
        where = None
        if context.cache.capacity:  # B registers resumable sessions under these
            where = self._where
            if where is None:
                where = self._where = listening_place(listener)
        wrapped = TcpcryptSocket(context, raw, server_side=True, connection=connection,
                                 where=where)
        if connection.state is ConnectionState.RESET:
            wrapped._fail(connection.reason or "reset")
        wrapped._handshake()
        return wrapped, address

    def fileno(self) -> int:
        return self._sock.fileno()

    def getsockname(self) -> Any:
        return self._sock.getsockname()

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def setsockopt(self, *args: Any) -> None:
        self._sock.setsockopt(*args)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> TcpcryptListener:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
