"""The `auth` experiment counts a man-in-the-middle as detected only when the client refused on
an authentication error it raised itself, never when nothing answered (a stalled relay or
server times out, which is no detection)."""

from __future__ import annotations

from experiments.auth import MethodSides, _through_relay
from tcpcrypt.auth import verify_batch_signed
from tcpcrypt.auth.errors import AuthError
from tcpcrypt.auth.loopback import LoopbackServer, MitmRelay
from tcpcrypt.auth.signing import SigningKey
from tcpcrypt.inband import InbandTcpcryptSocket


def test_a_client_that_hears_nothing_is_not_counted_as_a_detection() -> None:
    key = SigningKey.generate("ed25519")

    def silent_server(sock: InbandTcpcryptSocket) -> AuthError:
        sock.recv(1)  # says nothing; returns when the client gives up and closes
        return AuthError("the server never answered")

    def client(sock: InbandTcpcryptSocket) -> bytes:
        verify_batch_signed(sock, key.public_key(), timeout=0.5)
        return b""

    sides = MethodSides(silent_server, client, mutual=False)
    with LoopbackServer(silent_server) as server, MitmRelay(server.address) as relay:
        assert _through_relay(server, relay, sides) is False
