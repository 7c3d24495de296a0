"""The library socket's receive path once established: opened frames are handed over as
chunks, split across small reads, copied into `recv_into` buffers, and a bad frame resets."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.library.context import TcpcryptConnectionError, TcpcryptContext
from tcpcrypt.library.sockets import TcpcryptSocket
from tcpcrypt.randomness import seeded_random
from tcpcrypt.resumption import ResumptionCache

SYNACK = bytes([69, 4, 0x01, 0x23])


def _established() -> tuple[TcpcryptConnection, TcpcryptConnection]:
    a = TcpcryptConnection(active=True, config=TcpcryptConfig(), random=seeded_random(1))
    b = TcpcryptConnection(active=False, config=TcpcryptConfig(), random=seeded_random(2))
    b.adopt_kernel_negotiation(a.syn_option(), SYNACK)
    a.on_synack(SYNACK)
    b.receive(a.data_to_send())
    a.receive(b.data_to_send())
    assert a.state is b.state is ConnectionState.ESTABLISHED
    while b.next_event() is not None:
        pass
    return a, b


Pair = tuple[TcpcryptConnection, socket.socket, TcpcryptSocket]


@pytest.fixture
def pair() -> Iterator[Pair]:
    a, b = _established()
    ours, theirs = socket.socketpair()
    context = TcpcryptContext(cache=ResumptionCache(0))
    wrapped = TcpcryptSocket(context, ours, server_side=True, connection=b)
    yield a, theirs, wrapped
    theirs.close()
    wrapped.close()


def _send(a: TcpcryptConnection, peer: socket.socket, *pieces: bytes) -> None:
    for piece in pieces:
        a.send(piece)
    peer.sendall(a.data_to_send())


def test_small_reads_split_a_frame_and_keep_the_order(pair: Pair) -> None:
    a, peer, wrapped = pair
    _send(a, peer, b"hello world", b"second")
    got = b""
    while len(got) < len(b"hello worldsecond"):
        got += wrapped.recv(4)
    assert got == b"hello worldsecond"


def test_recv_into_gathers_waiting_frames_into_the_buffer(pair: Pair) -> None:
    a, peer, wrapped = pair
    _send(a, peer, b"abc", b"defgh")
    buffer = bytearray(6)
    assert wrapped.recv_into(buffer) == 6 and buffer == b"abcdef"
    assert wrapped.recv_into(buffer, 1) == 1 and buffer[:1] == b"g"
    assert wrapped.recv(100) == b"h"


def test_a_bad_frame_resets_and_returns_nothing(pair: Pair) -> None:
    a, peer, wrapped = pair
    a.send(b"secret")
    frame = bytearray(a.data_to_send())
    frame[-1] ^= 1  # the tag
    peer.sendall(bytes(frame))
    with pytest.raises(TcpcryptConnectionError, match="bad-tag"):
        wrapped.recv(100)


def test_the_peers_end_reads_as_empty(pair: Pair) -> None:
    a, peer, wrapped = pair
    _send(a, peer, b"last")
    peer.shutdown(socket.SHUT_WR)
    assert wrapped.recv(100) == b"last"
    assert wrapped.recv(100) == b""
