"""The loopback man-in-the-middle relay forwards plaintext that arrived together with the
handshake's last message: decrypted inside the wrapper, it never makes the descriptor
readable again (a batch proof stuck there made the fallback's relay test time out under load)."""

from __future__ import annotations

import socket
import threading

from tcpcrypt.auth.loopback import MitmRelay
from tcpcrypt.inband import InbandTcpcryptSocket, inband_connect


class InitTwoWithData(InbandTcpcryptSocket):
    """Host B that holds Init2 back and writes it in one segment with its first message."""

    holding = True

    def _flush(self) -> None:
        if not self.holding:
            super()._flush()


def eager_server(listener: socket.socket, message: bytes) -> threading.Thread:
    def serve() -> None:
        conn, _ = listener.accept()
        conn.settimeout(10)
        server = InitTwoWithData(conn, active=False)
        server.handshake()
        server.connection.send(message)
        server.holding = False
        server._flush()  # Init2 and the frame: one write, one segment on loopback
        conn.recv(1)  # until the other side closes
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_frame_that_came_with_init2_is_pending_in_the_wrapper() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    thread = eager_server(listener, b"early")
    client = inband_connect(socket.create_connection(listener.getsockname()[:2], timeout=10))
    assert client.pending() == 5 and client.recv(100) == b"early" and client.pending() == 0
    client.close()
    thread.join(10)
    listener.close()


def test_the_relay_forwards_what_came_with_the_handshake() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    thread = eager_server(listener, b"proof-like message")
    with MitmRelay(listener.getsockname()[:2], timeout=5) as relay:
        raw = socket.create_connection(relay.address, timeout=10)
        client = inband_connect(raw)
        raw.settimeout(5)  # the old relay never forwarded it: this recv timed out
        assert client.recv(100) == b"proof-like message"
        client.close()
    thread.join(10)
    listener.close()
