"""The daemon's relay over real loopback sockets, under asyncio and under uvloop (which reads a
socket before the relay has both sides): application bytes through two relays and a wire,
half-closes, an application that ends its stream before the keys exist, a corrupted frame,
a key exchange that never finishes. No root needed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import uvloop

from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.daemon import relay
from tcpcrypt.daemon.relay import EncryptedRelay, PeerReset, PlainRelay
from tcpcrypt.daemon.sessions import SessionRecord
from tcpcrypt.events import ConnectionReset, DataReceived, Established
from tcpcrypt.randomness import seeded_random

Runner = Callable[[Coroutine[Any, Any, None]], None]
RUNNERS: dict[str, Runner] = {"asyncio": asyncio.run, "uvloop": uvloop.run}


@pytest.fixture(params=sorted(RUNNERS))
def run_loop(request: pytest.FixtureRequest) -> Runner:
    return RUNNERS[request.param]


def loopback_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return client, server


def daemon_side(sock: socket.socket) -> socket.socket:
    sock.setblocking(False)
    return sock


def record(role: str) -> SessionRecord:
    address = ("127.0.0.1", 1)
    return SessionRecord(1, role, address, address, address, address)


def negotiated(seed: int = 1) -> tuple[TcpcryptConnection, TcpcryptConnection]:
    """A and B after TCP-ENO chose tcpcrypt: the key exchange is next."""
    a = TcpcryptConnection(active=True, random=seeded_random(seed), peer="b", now=0.0)
    b = TcpcryptConnection(active=False, random=seeded_random(seed + 1), now=0.0)
    b.on_syn(a.syn_option())
    a.on_synack(b.synack_option())
    b.on_ack(a.ack_option())
    return a, b


def apply_events(connection: TcpcryptConnection, rec: SessionRecord) -> bytes:
    delivered = []
    while (event := connection.next_event()) is not None:
        if isinstance(event, DataReceived):
            delivered.append(event.data)
        elif isinstance(event, Established):
            rec.state, rec.encrypted = "established", True
        elif isinstance(event, ConnectionReset):
            raise PeerReset(event.reason)
    return b"".join(delivered)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


class Chain:
    """app A (test) - relay A - wire - relay B - app B (test)."""

    def __init__(self) -> None:
        self.app_a, app_a_daemon = loopback_pair()
        wire_a, wire_b = loopback_pair()
        app_b_daemon, self.app_b = loopback_pair()
        self.sockets = (app_a_daemon, wire_a, wire_b, app_b_daemon)
        a, b = negotiated()
        self.record_a, self.record_b = record("A"), record("B")
        self.connections = (a, b)
        self.outcomes: dict[str, BaseException | None] = {}

    async def relay_both(self) -> None:
        app_a_daemon, wire_a, wire_b, app_b_daemon = (daemon_side(s) for s in self.sockets)
        a, b = self.connections

        async def one(name: str, coroutine: Coroutine[Any, Any, None]) -> None:
            try:
                await coroutine
                self.outcomes[name] = None
            except BaseException as error:  # noqa: BLE001 - recorded for the test
                self.outcomes[name] = error

        await asyncio.gather(
            one("A", EncryptedRelay(self.record_a, a, apply_events).run(app_a_daemon, wire_a)),
            one("B", EncryptedRelay(self.record_b, b, apply_events).run(app_b_daemon, wire_b)),
        )


@pytest.fixture
def chain() -> Iterator[Chain]:
    made = Chain()
    yield made
    for sock in (made.app_a, made.app_b, *made.sockets):
        sock.close()


def in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_encrypted_relays_carry_both_directions_and_half_closes(
    chain: Chain, run_loop: Runner
) -> None:
    request, response = os.urandom(3_000_000), os.urandom(5_000_000)
    got: dict[str, bytes] = {}

    def server() -> None:
        got["request"] = read_all(chain.app_b)  # until A's half-close
        chain.app_b.sendall(response)
        chain.app_b.shutdown(socket.SHUT_WR)

    def client() -> None:
        chain.app_a.sendall(request)
        chain.app_a.shutdown(socket.SHUT_WR)
        got["response"] = read_all(chain.app_a)

    threads = [in_thread(server), in_thread(client)]
    run_loop(chain.relay_both())
    for thread in threads:
        thread.join(10)
    assert hashlib.sha256(got["request"]).digest() == hashlib.sha256(request).digest()
    assert hashlib.sha256(got["response"]).digest() == hashlib.sha256(response).digest()
    assert chain.outcomes == {"A": None, "B": None}
    assert chain.record_a.encrypted and chain.record_b.encrypted
    assert (chain.record_a.bytes_sent, chain.record_a.bytes_received) == (
        len(request), len(response))


def test_an_application_that_ends_its_stream_before_the_keys_exist_loses_nothing(
    chain: Chain, run_loop: Runner
) -> None:
    chain.app_a.sendall(b"GET / HTTP/1.0\r\n\r\n")
    chain.app_a.shutdown(socket.SHUT_WR)  # before either relay started: Init2 still to come
    got: dict[str, bytes] = {}

    def server() -> None:
        got["request"] = read_all(chain.app_b)
        chain.app_b.sendall(b"HTTP/1.0 200 OK\r\n\r\nhello")
        chain.app_b.shutdown(socket.SHUT_WR)

    thread = in_thread(server)
    run_loop(chain.relay_both())
    thread.join(10)
    assert got["request"] == b"GET / HTTP/1.0\r\n\r\n"
    assert read_all(chain.app_a) == b"HTTP/1.0 200 OK\r\n\r\nhello"
    assert chain.outcomes == {"A": None, "B": None}


def test_a_corrupted_frame_resets_the_application_and_delivers_nothing_of_it(
    run_loop: Runner,
) -> None:
    a, b = negotiated()
    peer, wire_b = loopback_pair()  # the test speaks for A on `peer`
    app_b_daemon, app_b = loopback_pair()
    rec = record("B")
    outcome: dict[str, BaseException | None] = {}

    def host_a() -> None:
        peer.sendall(a.data_to_send())  # Init1
        while a.state is not ConnectionState.ESTABLISHED:
            a.receive(peer.recv(65536))
        a.send(b"secret request")
        frame = bytearray(a.data_to_send())
        frame[-1] ^= 0x01  # flip a bit of the tag
        peer.sendall(bytes(frame))

    async def relay_b() -> None:
        try:
            await EncryptedRelay(rec, b, apply_events).run(
                daemon_side(app_b_daemon), daemon_side(wire_b))
            outcome["B"] = None
        except BaseException as error:  # noqa: BLE001
            outcome["B"] = error

    thread = in_thread(host_a)
    run_loop(relay_b())
    thread.join(10)
    assert isinstance(outcome["B"], PeerReset)
    with pytest.raises(ConnectionResetError):
        read_all(app_b)
    for sock in (peer, wire_b, app_b_daemon, app_b):
        sock.close()


def test_a_key_exchange_that_never_finishes_is_reset_after_the_deadline(
    chain: Chain, run_loop: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay, "KEY_EXCHANGE_TIMEOUT_S", 0.3)
    _, b = negotiated()
    silent_peer, wire_b = loopback_pair()  # sends no Init1
    app_b_daemon, app_b = loopback_pair()
    outcome: dict[str, BaseException | None] = {}

    async def relay_b() -> None:
        try:
            await EncryptedRelay(record("B"), b, apply_events).run(
                daemon_side(app_b_daemon), daemon_side(wire_b))
            outcome["B"] = None
        except BaseException as error:  # noqa: BLE001
            outcome["B"] = error

    run_loop(relay_b())
    assert isinstance(outcome["B"], PeerReset) and str(outcome["B"]) == "key-exchange-timeout"
    for sock in (silent_peer, wire_b, app_b_daemon, app_b):
        sock.close()


def test_plain_relay_copies_bytes_both_ways_until_both_ends_close(run_loop: Runner) -> None:
    app, app_daemon = loopback_pair()
    wire_daemon, peer = loopback_pair()
    rec = record("A")
    data = os.urandom(2_000_000)
    got: dict[str, bytes] = {}

    def peer_side() -> None:
        got["at_peer"] = read_all(peer)
        peer.sendall(data[::-1])
        peer.shutdown(socket.SHUT_WR)

    def app_side() -> None:
        app.sendall(data)
        app.shutdown(socket.SHUT_WR)
        got["at_app"] = read_all(app)

    threads = [in_thread(peer_side), in_thread(app_side)]
    run_loop(PlainRelay(rec).run(daemon_side(app_daemon), daemon_side(wire_daemon)))
    for thread in threads:
        thread.join(10)
    assert got == {"at_peer": data, "at_app": data[::-1]}
    assert (rec.bytes_sent, rec.bytes_received) == (len(data), len(data))
    for sock in (app, app_daemon, wire_daemon, peer):
        sock.close()
