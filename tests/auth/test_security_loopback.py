"""Every method over real loopback TCP with a real tcpcrypt key exchange: success every time
without a man in the middle; with a relay terminating tcpcrypt on both sides, detection every
time, a clear AuthError, a closed connection and never the server's data; wrong PSK, wrong
password, a batch proof replayed from another connection or for a batch without our session
ID, truncated and garbage messages: each with its own error."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tcpcrypt.auth import (
    Batcher,
    Role,
    SigningKey,
    authenticate_cmac,
    pake_client,
    pake_server,
    serve_batch_signed,
    verify_batch_signed,
)
from tcpcrypt.auth.batch_proof import encode_proof, sign_batch
from tcpcrypt.auth.errors import (
    AuthError,
    MessageMalformed,
    MessageTruncated,
    NoSessionId,
    NotCovered,
    PeerRejected,
    SessionIdMismatch,
    WrongPassword,
    WrongPsk,
)
from tcpcrypt.auth.loopback import LoopbackServer, MitmRelay, connect_inband
from tcpcrypt.auth.wire import MessageType, encode_message
from tcpcrypt.inband import InbandTcpcryptSocket

SECRET_DATA = b"account balance: 1000"
PSK = os.urandom(16)
PASSWORD = "correct horse battery staple"
ATTEMPTS = 5


@dataclass
class Method:
    name: str
    server: Callable[[InbandTcpcryptSocket], bytes]
    client: Callable[[InbandTcpcryptSocket], bytes]
    server_detects_mitm: bool  # mutual methods; batch signing authenticates the server only


@pytest.fixture(scope="module")
def batch_key() -> SigningKey:
    return SigningKey.generate("rsa-2048")


@pytest.fixture(scope="module")
def batcher(batch_key: SigningKey) -> Iterator[Batcher]:
    with Batcher(batch_key, max_batch=8, window_s=0.005) as shared:
        yield shared


@pytest.fixture(params=["cmac", "batch-sign", "pake"])
def method(request: pytest.FixtureRequest, batch_key: SigningKey, batcher: Batcher) -> Method:
    if request.param == "cmac":
        return Method("cmac", lambda s: authenticate_cmac(s, PSK, Role.SERVER),
                      lambda s: authenticate_cmac(s, PSK, Role.CLIENT), True)
    if request.param == "batch-sign":
        return Method("batch-sign", lambda s: serve_batch_signed(s, batcher),
                      lambda s: verify_batch_signed(s, batch_key.public_key()), False)
    return Method("pake", lambda s: pake_server(s, PASSWORD),
                  lambda s: pake_client(s, PASSWORD), True)


def serving_secret(authenticate: Callable[[InbandTcpcryptSocket], bytes]
                   ) -> Callable[[InbandTcpcryptSocket], bytes]:
    """A server application: authenticate, then (only then) send its secret data."""
    def handler(sock: InbandTcpcryptSocket) -> bytes:
        sid = authenticate(sock)
        sock.sendall(SECRET_DATA)
        return sid
    return handler


def test_every_method_succeeds_every_time_without_a_mitm(method: Method) -> None:
    with LoopbackServer(serving_secret(method.server)) as server:
        for _ in range(ATTEMPTS):
            client = connect_inband(server.address)
            sid = method.client(client)
            assert sid == client.getsessid()
            assert server.results.get(timeout=10) == sid  # the same ID at both ends
            received = b""
            while len(received) < len(SECRET_DATA):
                received += client.recv(100)
            assert received == SECRET_DATA
            client.close()


def test_every_method_detects_the_relay_every_time(method: Method) -> None:
    with LoopbackServer(serving_secret(method.server)) as server, \
            MitmRelay(server.address) as relay:
        for _ in range(ATTEMPTS):
            client = connect_inband(relay.address)
            with pytest.raises(AuthError) as raised:
                method.client(client)
            assert isinstance(raised.value, SessionIdMismatch | PeerRejected)
            assert client.fileno() == -1  # closed: the application can read nothing
            outcome = server.results.get(timeout=10)
            if method.server_detects_mitm:
                assert isinstance(outcome, AuthError)
        client_sids = [pair[0] for pair in relay.session_pairs]
        assert all(a != b for a, b in relay.session_pairs)
        assert len(set(client_sids)) == ATTEMPTS


def test_the_server_side_of_mutual_methods_sees_the_mismatch_itself() -> None:
    for server_auth, client_auth in (
        (lambda s: authenticate_cmac(s, PSK, Role.SERVER),
         lambda s: authenticate_cmac(s, PSK, Role.CLIENT)),
    ):
        with LoopbackServer(server_auth) as server, MitmRelay(server.address) as relay:
            client = connect_inband(relay.address)
            with pytest.raises(SessionIdMismatch):
                client_auth(client)
            assert isinstance(server.results.get(timeout=10), SessionIdMismatch)


def test_a_wrong_psk_is_its_own_error_on_both_sides() -> None:
    with LoopbackServer(lambda s: authenticate_cmac(s, PSK, Role.SERVER)) as server:
        client = connect_inband(server.address)
        with pytest.raises(WrongPsk):
            authenticate_cmac(client, os.urandom(16), Role.CLIENT)
        assert isinstance(server.results.get(timeout=10), WrongPsk | PeerRejected)


def test_a_wrong_password_is_its_own_error_and_the_server_hears_why() -> None:
    with LoopbackServer(lambda s: pake_server(s, PASSWORD)) as server:
        client = connect_inband(server.address)
        with pytest.raises(WrongPassword):
            pake_client(client, "not the password")
        outcome = server.results.get(timeout=10)
        assert isinstance(outcome, PeerRejected) and outcome.detail == "wrong-password"


def test_a_cmac_reflected_back_to_its_sender_is_refused() -> None:
    def reflector(sock: InbandTcpcryptSocket) -> None:
        sock.sendall(sock.recv(4096))  # echoes the client's own tag back

    with LoopbackServer(reflector) as server:
        client = connect_inband(server.address)
        with pytest.raises(SessionIdMismatch):  # role labels bind direction
            authenticate_cmac(client, PSK, Role.CLIENT)


def send_then_close(payload: bytes) -> Callable[[InbandTcpcryptSocket], None]:
    def handler(sock: InbandTcpcryptSocket) -> None:
        sock.sendall(payload)  # the server closes the connection after the handler
    return handler


@pytest.mark.parametrize(("payload", "error"), [
    (b"\x01\x01\x00\x18" + bytes(10), MessageTruncated),  # body cut short, then closed
    (b"\x01", MessageTruncated),
    (b"", MessageTruncated),
    (b"HTTP/1.1 200 OK\r\n\r\n", MessageMalformed),
    (b"\x01\x01\x00\x03abc", MessageMalformed),  # right type, body of the wrong size
    (b"\x01\x04\x00\x02\x00\x00", MessageMalformed),  # a message of another method
])
def test_truncated_and_garbage_messages_are_refused_with_their_own_error(
        payload: bytes, error: type[AuthError]) -> None:
    with LoopbackServer(send_then_close(payload)) as server:
        client = connect_inband(server.address)
        with pytest.raises(error):
            authenticate_cmac(client, PSK, Role.CLIENT)
        assert client.fileno() == -1


def test_garbage_instead_of_a_batch_proof_or_a_spake2_message(batch_key: SigningKey) -> None:
    garbage = b"\x01\x04\x00\x05hello"  # a BATCH_PROOF header with a nonsense body
    with LoopbackServer(send_then_close(garbage)) as server, pytest.raises(MessageMalformed):
        verify_batch_signed(connect_inband(server.address), batch_key.public_key())
    not_a_point = b"\x01\x02\x00\x21" + b"B" + bytes([0xFF]) * 32
    with LoopbackServer(send_then_close(not_a_point)) as server, \
            pytest.raises(MessageMalformed, match="SPAKE2"):
        pake_client(connect_inband(server.address), PASSWORD)


def test_a_connection_without_a_session_id_is_refused_before_anything_is_sent() -> None:
    class PlainConnection:
        closed = False

        def getsessid(self) -> bytes | None:
            return None

        def sendall(self, data: bytes, /) -> None:
            raise AssertionError("nothing may be sent")

        def recv(self, size: int, /) -> bytes:
            raise AssertionError("nothing may be read")

        def close(self) -> None:
            self.closed = True

    plain = PlainConnection()
    with pytest.raises(NoSessionId):
        authenticate_cmac(plain, PSK, Role.CLIENT)
    assert plain.closed


def test_a_proof_replayed_from_another_connection_is_refused_over_the_wire(
        batch_key: SigningKey, batcher: Batcher) -> None:
    captured: list[bytes] = []

    def honest_then_replaying(sock: InbandTcpcryptSocket) -> None:
        if not captured:  # first connection: record the honest proof it was sent
            sid = sock.getsessid()
            assert sid is not None
            captured.append(encode_message(MessageType.BATCH_PROOF,
                                           encode_proof(batcher.sign(sid, 10))))
        sock.sendall(captured[0])

    with LoopbackServer(honest_then_replaying) as server:
        first = connect_inband(server.address)
        verify_batch_signed(first, batch_key.public_key())
        second = connect_inband(server.address)
        with pytest.raises(SessionIdMismatch):
            verify_batch_signed(second, batch_key.public_key())
        assert second.fileno() == -1


def test_a_signed_batch_that_does_not_hold_our_session_id_is_refused_over_the_wire(
        batch_key: SigningKey) -> None:
    def vouching_for_a_batch_of_others(sock: InbandTcpcryptSocket) -> None:
        sid = sock.getsessid()
        assert sid is not None
        others = [bytes([0x23]) + os.urandom(32) for _ in range(4)]
        proof = dataclasses.replace(sign_batch(batch_key, others)[1], session_id=sid)
        sock.sendall(encode_message(MessageType.BATCH_PROOF, encode_proof(proof)))

    with LoopbackServer(vouching_for_a_batch_of_others) as server:
        client = connect_inband(server.address)
        with pytest.raises(NotCovered):
            verify_batch_signed(client, batch_key.public_key())
        assert client.fileno() == -1
