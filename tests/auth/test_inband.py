"""The in-band shim over real loopback TCP: both ends get the same real session ID, data
crosses encrypted, a server without a common suite falls back (no session ID), and a server
can tell an in-band offer from other first bytes."""

from __future__ import annotations

import socket
import threading

from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.inband import (
    OFFER_MAGIC,
    InbandTcpcryptSocket,
    inband_accept,
    inband_connect,
    peer_offers_inband,
)


def pair(server_config: TcpcryptConfig | None = None
         ) -> tuple[InbandTcpcryptSocket, InbandTcpcryptSocket, socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[InbandTcpcryptSocket] = []
    thread = threading.Thread(
        target=lambda: accepted.append(inband_accept(listener.accept()[0], server_config)))
    thread.start()
    raw = socket.create_connection(listener.getsockname()[:2], timeout=10)
    client = inband_connect(raw)
    thread.join(10)
    listener.close()
    return client, accepted[0], raw


def test_both_ends_share_a_real_session_id_and_the_wire_is_not_plaintext() -> None:
    client, server, raw = pair()
    sid = client.getsessid()
    assert sid is not None and sid == server.getsessid() and len(sid) == 33
    assert sid[0] == 0x23  # X25519's TEP byte starts the session ID
    client.sendall(b"x" * 100_000)
    received = bytearray()
    while len(received) < 100_000:
        received += server.recv(65536)
    assert received == b"x" * 100_000
    assert client.connection.state.value == "established"
    client.close()
    server.close()


def test_no_common_suite_falls_back_without_a_session_id() -> None:
    client, server, _ = pair(TcpcryptConfig(suites=("x448",)))
    assert client.getsessid() is None and server.getsessid() is None
    client.sendall(b"plain")
    assert server.recv(10) == b"plain"
    client.close()
    server.close()


def test_an_offer_is_recognised_by_peeking_and_other_bytes_are_not() -> None:
    for first, expected in ((OFFER_MAGIC + b"\x01", True), (b"\x16\x03\x01", False),
                            (b"GET / HTTP/1.1\r\n", False)):
        a, b = socket.socketpair()
        a.sendall(first)
        assert peer_offers_inband(b) is expected
        assert b.recv(100) == first  # nothing consumed
        a.close()
        b.close()
