"""tcpcrypt over an already connected socket, with TCP-ENO carried in the stream: a shim.

Without a kernel path the TCP-ENO options cannot ride in the SYN, SYN-ACK and ACK, so this shim
sends them as the first bytes of the stream (`OFFER_MAGIC`, then one record per segment:
presence byte, length byte, option bytes) and then lets the sans-IO `TcpcryptConnection` run
its real key exchange (Init1/Init2) and framing over the same socket. Both ends get the real
session ID from `getsessid()`. It exists so that the authentication library, its tests and the
`auth` experiments run over real loopback TCP before the in-process kernel-path library
(`tcpcrypt.wrap_socket`) is available; it is not wire-compatible with RFC 8547 on its own.
"""

from __future__ import annotations

import io
import socket
import struct
from typing import Any

from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.events import ConnectionReset, DataReceived
from tcpcrypt.randomness import RandomSource, system_random

OFFER_MAGIC = b"\xe0ENO"  # first bytes an in-band offerer sends (never a TLS record type)
_RECORD = struct.Struct("!BB")  # option present (0/1), option length
_READ = 65536


class InbandHandshakeError(ConnectionError):
    """The in-band negotiation or the key exchange failed (the reason is the message)."""


class InbandTcpcryptSocket:
    """A connected socket running tcpcrypt; `sendall`/`recv` carry plaintext, framed inside."""

    def __init__(self, sock: socket.socket, *, active: bool,
                 config: TcpcryptConfig | None = None,
                 random: RandomSource = system_random) -> None:
        self.sock = sock
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # small handshake and authentication messages must not wait for delayed ACKs
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection = TcpcryptConnection(active=active, config=config, random=random)
        self._plaintext = bytearray()
        self._eof = False
        self._files = 0  # open makefile() files: like a socket, close waits for them
        self._close_requested = False

    # --- the handshake --------------------------------------------------------------------
    def handshake(self) -> None:
        """Exchange the ENO options in band, then run Init1/Init2 until keys exist or not."""
        conn = self.connection
        if conn.active:
            self.sock.sendall(OFFER_MAGIC + self._record(conn.syn_option()))
            conn.on_synack(self._read_record())
            ack = self._record(conn.ack_option())
            self.sock.sendall(ack + conn.data_to_send())  # the ACK's record and Init1 together
        else:
            if self._read_exactly(len(OFFER_MAGIC)) != OFFER_MAGIC:
                raise InbandHandshakeError("the peer did not open with an in-band ENO offer")
            conn.on_syn(self._read_record())
            self.sock.sendall(self._record(conn.synack_option()))
            conn.on_ack(self._read_record())
        self._flush()
        while conn.state is ConnectionState.KEY_EXCHANGE:
            self._feed(self._recv_raw())
        if conn.state is ConnectionState.RESET:
            raise InbandHandshakeError(f"tcpcrypt key exchange failed: {conn.reason}")

    @staticmethod
    def _record(option: bytes | None) -> bytes:
        if option is None:
            return _RECORD.pack(0, 0)
        return _RECORD.pack(1, len(option)) + option

    def _read_record(self) -> bytes | None:
        present, length = _RECORD.unpack(self._read_exactly(_RECORD.size))
        option = self._read_exactly(length)
        if present not in (0, 1) or (present == 0 and length):
            raise InbandHandshakeError("malformed in-band ENO record")
        return option if present else None

    def _read_exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise InbandHandshakeError("connection ended during the in-band handshake")
            data += chunk
        return bytes(data)

    # --- the stream -----------------------------------------------------------------------
    def _recv_raw(self) -> bytes:
        data = self.sock.recv(_READ)
        if not data:
            if self.connection.state is ConnectionState.KEY_EXCHANGE:
                raise InbandHandshakeError("connection ended during the key exchange")
            self._eof = True
        return data

    def _feed(self, data: bytes) -> None:
        self.connection.receive(data)
        self._flush()
        while (event := self.connection.next_event()) is not None:
            if isinstance(event, DataReceived):
                self._plaintext += event.data
            elif isinstance(event, ConnectionReset):
                raise ConnectionResetError(f"tcpcrypt reset: {event.reason}")

    def _flush(self) -> None:
        out = self.connection.data_to_send()
        if out:
            self.sock.sendall(out)

    def sendall(self, data: bytes, /) -> None:
        self.connection.send(bytes(data))
        self._flush()

    def recv(self, size: int, /) -> bytes:
        while not self._plaintext and not self._eof:
            self._feed(self._recv_raw())
        chunk = bytes(self._plaintext[:size])
        del self._plaintext[:size]
        return chunk

    def pending(self) -> int:
        """Plaintext bytes already decrypted and waiting here, which a `select()` on the
        descriptor cannot see (as `ssl.SSLSocket.pending`): a frame that arrived with the
        handshake's last message, or what a short `recv` left."""
        return len(self._plaintext)

    def getsessid(self) -> bytes | None:
        """The tcpcrypt session ID (TEP byte first), or None if the connection fell back."""
        return self.connection.session_id

    # --- the socket underneath ------------------------------------------------------------
    def settimeout(self, value: float | None) -> None:
        self.sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self.sock.gettimeout()

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)

    def close(self) -> None:
        self._close_requested = True
        if self._files <= 0:
            self.sock.close()

    def _file_closed(self) -> None:
        self._files -= 1
        if self._close_requested and self._files <= 0:
            self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    def makefile(self, mode: str = "rb", buffering: int | None = None) -> io.IOBase:
        """A binary file over the plaintext (what `socketserver` and `http.client` use)."""
        if mode not in ("rb", "wb"):
            raise ValueError(f"only binary 'rb' or 'wb' files, not {mode!r}")
        raw = _PlaintextIO(self)
        self._files += 1
        if buffering == 0:
            return raw
        size = buffering if buffering and buffering > 0 else io.DEFAULT_BUFFER_SIZE
        return io.BufferedReader(raw, size) if mode == "rb" else io.BufferedWriter(raw, size)

    def getpeername(self) -> Any:
        return self.sock.getpeername()

    def getsockname(self) -> Any:
        return self.sock.getsockname()

    def __enter__(self) -> InbandTcpcryptSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PlaintextIO(io.RawIOBase):
    def __init__(self, owner: InbandTcpcryptSocket) -> None:
        self._owner = owner

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._owner.recv(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def write(self, data: Any) -> int:
        self._owner.sendall(bytes(data))
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._owner._file_closed()
        super().close()


def inband_connect(sock: socket.socket,
                   config: TcpcryptConfig | None = None) -> InbandTcpcryptSocket:
    """Run the client (host A) side on a connected socket; returns once keys exist."""
    wrapped = InbandTcpcryptSocket(sock, active=True, config=config)
    wrapped.handshake()
    return wrapped


def inband_accept(sock: socket.socket,
                  config: TcpcryptConfig | None = None) -> InbandTcpcryptSocket:
    """Run the server (host B) side on an accepted socket; returns once keys exist."""
    wrapped = InbandTcpcryptSocket(sock, active=False, config=config)
    wrapped.handshake()
    return wrapped


def peer_offers_inband(sock: socket.socket) -> bool:
    """Whether the first bytes waiting on `sock` are an in-band offer (peeked, not consumed)."""
    seen = b""
    while len(seen) < len(OFFER_MAGIC):
        seen = sock.recv(len(OFFER_MAGIC), socket.MSG_PEEK)
        if not seen or not OFFER_MAGIC.startswith(seen):
            return False
    return seen == OFFER_MAGIC
