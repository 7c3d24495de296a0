"""A library listener with `defer_accept` (TCP_DEFER_ACCEPT) over the kernel's TCP-ENO: the
kernel negotiates ENO as before and accept() returns once the first data arrived; a client
that sends nothing first (it waits for the server's greeting) is still accepted, after the
kernel's wait, and one that closes without sending fails cleanly. No timing is asserted."""

from __future__ import annotations

import pytest
from kernel_lab import Pair, finish

PORT = 7300


@pytest.fixture
def deferring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEER_DEFER_ACCEPT", "1")


@pytest.mark.usefixtures("deferring")
def test_a_deferring_listener_negotiates_full_and_resumed_sessions(pair: Pair) -> None:
    server = pair.start_server(pair.b, "lib-server", str(PORT), "3")
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "3")
    servers = finish(server)
    assert [c["encrypted"] for c in clients] == [True, True, True]
    assert [c["resumed"] for c in clients] == [s["resumed"] for s in servers] == [
        False, True, True]
    assert [c["sessid"] for c in clients] == [s["sessid"] for s in servers]
    assert [c["answer"] for c in clients] == [f"echo:secret-line-{i}\n" for i in range(3)]


@pytest.mark.usefixtures("deferring")
def test_clients_that_wait_for_the_server_first_are_still_accepted(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A resumed connection has no Init1: its client sends nothing until the greeting, and
    # a plain client neither; the kernel accepts them once its wait is over.
    monkeypatch.setenv("PEER_GREET", "1")
    server = pair.start_server(pair.b, "lib-server", str(PORT), "3")
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "2")
    plain = pair.peer(pair.a, "plain-client", pair.b_ip, str(PORT), "1")
    servers = finish(server)
    assert [c["greeting"] for c in clients + plain] == ["hello\n"] * 3
    assert [c["resumed"] for c in clients] == [False, True]
    assert [s["encrypted"] for s in servers] == [True, True, False]
    assert servers[2]["reason"] == "no-eno-syn"
    assert [c["answer"] for c in clients] == [f"echo:secret-line-{i}\n" for i in range(2)]


@pytest.mark.usefixtures("deferring")
def test_a_client_that_closes_without_init1_is_reset_not_served_plain(pair: Pair) -> None:
    server = pair.start_server(pair.b, "lib-server", str(PORT), "1")
    clients = pair.peer(pair.a, "raw-silent-client", pair.b_ip, str(PORT))
    servers = finish(server)
    assert clients[0]["kernel"]["state"] == "negotiated"
    assert servers[0]["error"] == "eof-during-key-exchange"
    assert clients[0].get("reset") is True or clients[0].get("answer") == ""


@pytest.mark.usefixtures("kernel_program")
def test_defer_accept_is_set_on_the_listener_only_when_asked() -> None:
    import socket

    import tcpcrypt

    for defer, expected in ((True, True), (False, False)):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            listener = tcpcrypt.TcpcryptContext(defer_accept=defer).wrap_socket(
                sock, server_side=True)
            value = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT)
            assert bool(value) is expected
            assert listener is not None
