"""Two real connections in memory: every suite x AEAD, fallbacks, tampering, resumption."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt.aead import AEAD_NAMES
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.errors import UsageError
from tcpcrypt.events import ConnectionReset, Established, Fallback
from tcpcrypt.pair import Pair, connect_pair
from tcpcrypt.randomness import seeded_random
from tcpcrypt.resumption import ResumptionCache
from tcpcrypt.suites import SUITE_NAMES, RsaKeyHolder


@pytest.fixture(scope="module")
def rsa_keys() -> RsaKeyHolder:
    holder = RsaKeyHolder(lifetime_s=float("inf"))
    holder.key_for(0.0)
    return holder


def make_pair(seed: int = 1, **kwargs: object) -> Pair:
    return connect_pair(random_a=seeded_random(seed), random_b=seeded_random(seed + 100),
                        **kwargs)  # type: ignore[arg-type]


def exchange(pair: Pair, a_to_b: bytes, b_to_a: bytes) -> None:
    pair.a.connection.send(a_to_b)
    pair.b.connection.send(b_to_a)
    pair.pump()


@pytest.mark.parametrize(("suite", "aead"), list(itertools.product(SUITE_NAMES, AEAD_NAMES)))
def test_a_and_b_agree_on_session_id_and_carry_data(
    suite: str, aead: str, rsa_keys: RsaKeyHolder
) -> None:
    config = TcpcryptConfig(suites=(suite,), aeads=(aead,))
    pair = make_pair(config_a=config, config_b=config, rsa_keys=rsa_keys)
    assert pair.outcome() == "encrypted"
    a, b = pair.a.connection, pair.b.connection
    assert a.session_id == b.session_id and a.session_id is not None
    assert (a.suite, a.aead, b.suite, b.aead) == (suite, aead, suite, aead)
    exchange(pair, b"GET / HTTP/1.0\r\n\r\n" * 50, b"200 OK" * 5000)
    assert bytes(pair.b.received) == b"GET / HTTP/1.0\r\n\r\n" * 50
    assert bytes(pair.a.received) == b"200 OK" * 5000


def test_b_picks_its_preferred_aead_among_those_a_offers() -> None:
    pair = make_pair(
        config_a=TcpcryptConfig(aeads=("aes-128-gcm", "chacha20-poly1305")),
        config_b=TcpcryptConfig(aeads=("chacha20-poly1305", "aes-256-gcm")),
    )
    assert pair.a.connection.aead == pair.b.connection.aead == "chacha20-poly1305"


def test_no_common_aead_resets_both() -> None:
    pair = make_pair(config_a=TcpcryptConfig(aeads=("aes-128-gcm",)),
                     config_b=TcpcryptConfig(aeads=("aes-256-gcm",)))
    assert pair.b.connection.state is ConnectionState.RESET
    assert pair.b.connection.reason == "no-common-aead"


def _split_bytewise(_direction: str, data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def test_stream_split_into_single_bytes_still_works() -> None:
    pair = make_pair(transform=_split_bytewise)
    exchange(pair, b"hello", b"world")
    assert pair.outcome() == "encrypted"
    assert (bytes(pair.a.received), bytes(pair.b.received)) == (b"world", b"hello")


@pytest.mark.parametrize(("segment", "reason"),
                         [("syn", "no-eno-syn"), ("synack", "no-eno-synack")])
def test_stripped_option_falls_back_to_plain_tcp_cleanly(segment: str, reason: str) -> None:
    pair = make_pair(option_filter=lambda seg, opt: None if seg == segment else opt)
    assert pair.a.connection.state is ConnectionState.FALLBACK
    assert pair.b.connection.state is ConnectionState.FALLBACK
    exchange(pair, b"plain request", b"plain answer")
    assert bytes(pair.b.received) == b"plain request"
    assert bytes(pair.a.received) == b"plain answer"
    assert any(isinstance(e, Fallback) for e in pair.a.events + pair.b.events)
    assert reason in {pair.a.connection.reason, pair.b.connection.reason}


def test_stripped_ack_option_fails_closed_without_leaking_application_data() -> None:
    pair = make_pair(option_filter=lambda seg, opt: None if seg == "ack" else opt)
    assert pair.b.connection.reason == "no-eno-ack"
    pair.a.connection.send(b"TOP SECRET")
    pair.b.connection.send(b"plain from b")
    pair.pump()
    assert pair.a.connection.state is ConnectionState.RESET
    assert b"TOP SECRET" not in bytes(pair.b.received)


def test_any_tampered_byte_after_the_handshake_resets_and_delivers_nothing() -> None:
    pair = make_pair()
    pair.a.connection.send(b"secret payload")
    wire = pair.a.connection.data_to_send()
    for index in range(len(wire)):
        fresh = make_pair()
        fresh.a.connection.send(b"secret payload")
        assert fresh.a.connection.data_to_send() == wire  # replayable with the same seeds
        forged = bytearray(wire)
        forged[index] ^= 0x80
        fresh.b.connection.receive(bytes(forged))
        fresh.b.connection.receive(b"\x00" * 70_000)  # completes any forged length
        fresh.pump()
        assert b"secret" not in bytes(fresh.b.received)
        assert any(isinstance(e, ConnectionReset) for e in fresh.b.events), index


@pytest.mark.parametrize("side", ["init1", "init2"])
def test_tampered_init_message_never_yields_a_working_session(side: str) -> None:
    def corrupt(direction: str, data: bytes) -> list[bytes]:
        target = "a->b" if side == "init1" else "b->a"
        if direction == target and not corrupt.done:  # type: ignore[attr-defined]
            corrupt.done = True  # type: ignore[attr-defined]
            forged = bytearray(data)
            forged[-1] ^= 0x01  # inside the public key
            return [bytes(forged)]
        return [data]

    corrupt.done = False  # type: ignore[attr-defined]
    pair = make_pair(transform=corrupt)
    exchange(pair, b"from a", b"from b")
    assert b"from a" not in bytes(pair.b.received) or b"from b" not in bytes(pair.a.received)
    assert "reset" in pair.outcome()


def test_resumption_skips_the_key_exchange_and_ids_are_single_use() -> None:
    cache_a, cache_b = ResumptionCache(), ResumptionCache()
    first = make_pair(1, cache_a=cache_a, cache_b=cache_b)
    assert not first.a.connection.resumed
    second = make_pair(2, cache_a=cache_a, cache_b=cache_b)
    assert second.a.connection.resumed and second.b.connection.resumed
    assert second.a.connection.session_id == second.b.connection.session_id
    assert second.a.connection.session_id != first.a.connection.session_id
    assert second.a.connection.secret is not None and second.a.connection.secret.index == 1
    exchange(second, b"again", b"ok")
    assert bytes(second.b.received) == b"again"

    # Replaying the SYN of the second connection: B has used that identifier up.
    replay_a = TcpcryptConnection(active=True, random=seeded_random(9), cache=ResumptionCache(),
                                  peer="b")
    b = TcpcryptConnection(active=False, random=seeded_random(10), cache=cache_b)
    used_id = first.a.connection.secret.resumption_ids()[0]  # type: ignore[union-attr]
    syn = replay_a.syn_option()
    forged_syn = syn[:-1] + bytes((syn[-1] | 0x80,)) + used_id
    forged_syn = bytes((forged_syn[0], len(forged_syn))) + forged_syn[2:]
    b.on_syn(forged_syn)
    b.synack_option()
    assert not b.resumed


def test_resumption_without_b_cache_falls_back_to_a_full_key_exchange() -> None:
    cache_a = ResumptionCache()
    make_pair(1, cache_a=cache_a, cache_b=ResumptionCache())
    pair = make_pair(2, cache_a=cache_a, cache_b=ResumptionCache())
    assert pair.outcome() == "encrypted" and not pair.a.connection.resumed


def test_rekey_in_both_directions_keeps_data_flowing() -> None:
    pair = make_pair()
    for round_number in range(3):
        pair.a.connection.rekey()
        pair.b.connection.rekey()
        exchange(pair, b"a%d" % round_number, b"b%d" % round_number)
    assert bytes(pair.b.received) == b"a0a1a2"
    assert bytes(pair.a.received) == b"b0b1b2"


def test_automatic_rekey_after_interval() -> None:
    config = TcpcryptConfig(rekey_interval_bytes=100, max_frame_plaintext=50)
    pair = make_pair(config_a=config, config_b=config)
    exchange(pair, b"x" * 1000, b"")
    assert bytes(pair.b.received) == b"x" * 1000
    assert pair.a.connection._sealer is not None and pair.a.connection._sealer.generation >= 5


@settings(max_examples=40)
@given(st.binary(min_size=1, max_size=300))
def test_random_bytes_instead_of_init1_end_in_a_reset_or_waiting(garbage: bytes) -> None:
    b = TcpcryptConnection(active=False, random=seeded_random(3))
    a = TcpcryptConnection(active=True, random=seeded_random(4))
    b.on_syn(a.syn_option())
    a.on_synack(b.synack_option())
    b.on_ack(a.ack_option())
    b.receive(garbage)
    assert b.state in (ConnectionState.KEY_EXCHANGE, ConnectionState.RESET)
    events = []
    while (event := b.next_event()) is not None:
        events.append(event)
    assert not any(isinstance(e, Established) for e in events) or b.state is ConnectionState.RESET


def test_misuse_raises_usage_error() -> None:
    a = TcpcryptConnection(active=True, random=seeded_random(1))
    with pytest.raises(UsageError):
        a.rekey()
    with pytest.raises(UsageError):
        TcpcryptConfig(suites=("rot13",))
