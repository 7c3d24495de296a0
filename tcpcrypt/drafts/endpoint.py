"""The drafts' profile on real TCP sockets: TCP-ENO (kind 253) is written and read by the
kernel program in the kernel's own handshake; the key exchange and frames run here.

Blocking and minimal: `connect` (host A) and `DraftListener.accept` (host B) return a
`DraftSocket` once the key exchange is done; a negotiation that falls back to plain TCP raises
`DraftFallback` (this profile has no plain-TCP mode of its own).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from tcpcrypt.drafts import eno03
from tcpcrypt.drafts.connection import DraftConnection, Role
from tcpcrypt.drafts.handshake import DRAFT_TEPS
from tcpcrypt.errors import TcpcryptError, UsageError
from tcpcrypt.kernel.api import KernelEno

_READ = 65536


class DraftFallback(TcpcryptError):
    """TCP-ENO did not select a draft TEP on this connection (`reason` says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"TCP-ENO fell back to plain TCP: {reason}")
        self.reason = reason


def _check_teps(teps: Sequence[int]) -> tuple[int, ...]:
    if not teps or any(tep not in DRAFT_TEPS for tep in teps):
        raise UsageError(f"the drafts' TEPs are {', '.join(hex(t) for t in DRAFT_TEPS)}")
    return tuple(teps)


class DraftSocket:
    """One established drafts-profile session over a connected TCP socket."""

    def __init__(self, sock: socket.socket, connection: DraftConnection) -> None:
        self.sock = sock
        self.connection = connection
        self._flush()
        while not connection.established:
            self._pump()

    @classmethod
    def _start(cls, sock: socket.socket, kernel: KernelEno, role: Role,
               aeads: tuple[int, ...]) -> DraftSocket:
        record = kernel.negotiation(sock)
        if record is None or record.state != "negotiated" or not record.draft:
            reason = "no record" if record is None else (record.reason or record.state)
            raise DraftFallback(reason)
        return cls(sock, DraftConnection(role, record.syn_option, record.synack_option,
                                         aeads=aeads))

    @property
    def session_id(self) -> bytes:
        assert self.connection.session_id is not None
        return self.connection.session_id

    def _flush(self) -> None:
        out = self.connection.data_to_send()
        if out:
            self.sock.sendall(out)  # each Init in one write: the reference reads it at once

    def _pump(self) -> bool:
        data = self.sock.recv(_READ)
        if not data:
            if not self.connection.established:
                raise ConnectionResetError("the peer closed during the key exchange")
            return False
        self.connection.receive(data)
        self._flush()
        return True

    def sendall(self, data: bytes) -> None:
        self.connection.send(data)
        self._flush()

    def recv(self) -> bytes:
        """Application data: what has arrived, waiting for some; b"" at the end of the stream."""
        while True:
            data = self.connection.read()
            if data:
                return data
            if self.connection.peer_finished or not self._pump():
                return b""

    def recv_exactly(self, count: int) -> bytes:
        out = bytearray()
        while len(out) < count:
            chunk = self.recv()
            if not chunk:
                raise ConnectionError(f"the stream ended after {len(out)} of {count} bytes")
            out += chunk
        return bytes(out)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> DraftSocket:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def connect(address: tuple[str, int], kernel: KernelEno, *, teps: Sequence[int] = (0x21,),
            aeads: tuple[int, ...] = (0x01,), timeout: float = 10.0) -> DraftSocket:
    """Host A: a TCP connection whose SYN offers `teps` as a kind-253 ENO option."""
    option = eno03.encode_option(_check_teps(teps))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        kernel.offer(sock, option)
        # Hold the handshake's ACK so that it rides on Init1, as the reference's own A does:
        # the reference's B (redirect mode) relays nothing back when A's bare ACK lets its
        # kernel accept before its proxy connection to the local server completed.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
        sock.connect(address)
        session = DraftSocket._start(sock, kernel, "A", aeads)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return session
    except BaseException:
        sock.close()
        raise


class DraftListener:
    """Host B: a listening socket answering kind-253 ENO with its first TEP that A offered."""

    def __init__(self, address: tuple[str, int], kernel: KernelEno, *,
                 teps: Sequence[int] = (0x21,), aeads: tuple[int, ...] = (0x01,),
                 timeout: float = 10.0) -> None:
        self.kernel, self.aeads, self.timeout = kernel, aeads, timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(address)
            kernel.listen(self.sock, _check_teps(teps), draft=True)
            self.sock.listen()
        except BaseException:
            self.sock.close()
            raise

    def accept(self) -> DraftSocket:
        conn, _ = self.sock.accept()
        try:
            conn.settimeout(self.timeout)
            return DraftSocket._start(conn, self.kernel, "B", self.aeads)
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        self.sock.close()
