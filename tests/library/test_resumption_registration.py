"""When host B's library socket puts an established session's resumption identifiers in the
kernel's table: not inside accept(), but when B first waits for data, else before its first
answer leaves (a client that has an answer can always resume), or at close."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.library.context import TcpcryptContext
from tcpcrypt.library.sockets import TcpcryptSocket
from tcpcrypt.randomness import seeded_random

SYNACK = bytes([69, 4, 0x01, 0x23])
WHERE = (7000, 1)  # (listening port, netns cookie), as a listener passes them


class RecordingContext(TcpcryptContext):
    """A context whose kernel table is a list (the kernel tests cover the real table):
    each registration records whether the peer had received anything yet."""

    def __init__(self) -> None:
        super().__init__()
        self.registered: list[bool] = []
        self.peer: socket.socket | None = None

    def register_resumption(self, sock: socket.socket, connection: TcpcryptConnection,
                            where: tuple[int, int] | None = None) -> None:
        assert where == WHERE and connection.session_id is not None
        assert self.peer is not None
        try:
            self.peer.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            self.registered.append(False)  # nothing had left B yet
        else:
            self.registered.append(True)


Setup = tuple[TcpcryptConnection, socket.socket, TcpcryptSocket, RecordingContext]


@pytest.fixture
def setup() -> Iterator[Setup]:
    a = TcpcryptConnection(active=True, config=TcpcryptConfig(), random=seeded_random(1))
    b = TcpcryptConnection(active=False, config=TcpcryptConfig(), random=seeded_random(2))
    b.adopt_kernel_negotiation(a.syn_option(), SYNACK)
    a.on_synack(SYNACK)
    b.receive(a.data_to_send())
    a.receive(b.data_to_send())
    assert a.state is b.state is ConnectionState.ESTABLISHED
    b.data_to_send()
    ours, theirs = socket.socketpair()
    context = RecordingContext()
    context.peer = theirs
    wrapped = TcpcryptSocket(context, ours, server_side=True, connection=b, where=WHERE)
    wrapped._drain_events()  # B's Established, as accept() sees it
    yield a, theirs, wrapped, context
    theirs.close()
    wrapped.close()


def test_accept_leaves_the_registration_for_later(setup: Setup) -> None:
    _, _, _, context = setup
    assert context.registered == []


def test_b_registers_when_it_first_waits_for_data(setup: Setup) -> None:
    _, _, wrapped, context = setup
    wrapped.settimeout(0.05)
    with pytest.raises(TimeoutError):
        wrapped.recv(100)
    assert context.registered == [False]


def test_b_with_the_request_waiting_registers_before_its_answer_leaves(setup: Setup) -> None:
    a, peer, wrapped, context = setup
    a.send(b"request")
    peer.sendall(a.data_to_send())
    assert wrapped.recv(100) == b"request"
    assert context.registered == []  # the request was there: no wait to use
    wrapped.sendall(b"answer")
    assert context.registered == [False]  # registered, then the answer left
    wrapped.sendall(b"more")
    assert context.registered == [False]  # once


def test_b_registers_at_close_without_any_io(setup: Setup) -> None:
    _, _, wrapped, context = setup
    wrapped.close()
    assert context.registered == [False]
