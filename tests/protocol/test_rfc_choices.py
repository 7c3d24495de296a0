"""The RFC questions settled on evidence (docs/protocol.md, "Settled on evidence"): each test
pins one choice that changed, so a regression to the old behaviour fails here."""

from __future__ import annotations

from tcpcrypt.aead import aead_by_name
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.constants import TEP_EXPERIMENTAL
from tcpcrypt.eno_option import parse_eno_option
from tcpcrypt.frames import MAX_FRAME_PLAINTEXT, FrameOpener, FrameSealer
from tcpcrypt.init_messages import encode_init1, encode_init2, try_parse_init1, try_parse_init2
from tcpcrypt.key_schedule import SessionSecret
from tcpcrypt.pair import connect_pair
from tcpcrypt.randomness import seeded_random
from tcpcrypt.resumption import ResumptionCache
from tcpcrypt.suites import get_suite

NONCE, KEY = b"N" * 32, b"K" * 32


def test_aead_ids_take_one_byte_each_in_init1_and_init2() -> None:
    init1 = encode_init1([0x01, 0x02, 0x10], NONCE, KEY).raw
    assert init1[8:12] == bytes([3, 0x01, 0x02, 0x10]) and init1[12:44] == NONCE
    assert len(init1) == 4 + 4 + 1 + 3 + 32 + 32
    init2 = encode_init2(0x10, NONCE, KEY).raw
    assert init2[8] == 0x10 and init2[9:41] == NONCE and len(init2) == 4 + 4 + 1 + 32 + 32
    parsed1, parsed2 = try_parse_init1(init1, len(KEY)), try_parse_init2(init2, len(KEY))
    assert parsed1 is not None and parsed1[0].aead_ids == (0x01, 0x02, 0x10)
    assert parsed2 is not None and parsed2[0].aead_id == 0x10


def test_the_rsa_suite_uses_the_experimental_tep() -> None:
    assert get_suite("rsa-exp3-2048").tep == TEP_EXPERIMENTAL == 0x20


def test_a_receiver_opens_every_frame_length_the_length_field_allows() -> None:
    spec = aead_by_name("aes-128-gcm")
    chain = SessionSecret(b"s" * 32).key_chain(spec.key_length)
    frame = FrameSealer(spec, chain.key_ab, MAX_FRAME_PLAINTEXT).seal(b"x" * MAX_FRAME_PLAINTEXT)
    assert len(frame) == 2 + 0xFFFF
    assert FrameOpener(spec, chain.key_ab).feed(frame) == [bytearray(b"x" * MAX_FRAME_PLAINTEXT)]


def test_a_connection_takes_frames_longer_than_it_sends_itself() -> None:
    big = TcpcryptConfig(max_frame_plaintext=60_000)
    pair = connect_pair(big, TcpcryptConfig(), random_a=seeded_random(1),
                        random_b=seeded_random(2))
    pair.a.connection.send(b"y" * 60_000)
    pair.pump()
    assert pair.outcome() == "encrypted" and bytes(pair.b.received) == b"y" * 60_000


def test_resumption_identifiers_come_from_the_secret_the_resumed_session_uses() -> None:
    cache_a, cache_b = ResumptionCache(), ResumptionCache()
    first = connect_pair(random_a=seeded_random(1), random_b=seeded_random(2),
                         cache_a=cache_a, cache_b=cache_b)
    old = first.a.connection.secret
    assert old is not None
    seen: dict[str, bytes | None] = {}

    def watch(segment: str, option: bytes | None) -> bytes | None:
        seen[segment] = option
        return option

    second = connect_pair(random_a=seeded_random(3), random_b=seeded_random(4),
                          cache_a=cache_a, cache_b=cache_b, option_filter=watch)
    assert second.a.connection.resumed and second.b.connection.resumed
    next_secret = old.next()
    assert second.a.connection.secret == second.b.connection.secret == next_secret
    a_id, b_id = next_secret.resumption_ids()
    syn, synack = seen["syn"], seen["synack"]
    assert syn is not None and synack is not None
    assert a_id in [tep.data for tep in parse_eno_option(syn).teps]
    assert b_id in [tep.data for tep in parse_eno_option(synack).teps]
    assert old.resumption_ids()[0] not in syn  # nothing derived from the old ss[i] is sent


def test_the_resumption_cache_keeps_only_the_next_secret() -> None:
    cache_a, cache_b = ResumptionCache(), ResumptionCache()
    pair = connect_pair(random_a=seeded_random(1), random_b=seeded_random(2),
                        cache_a=cache_a, cache_b=cache_b)
    secret = pair.a.connection.secret
    assert secret is not None
    held_a = cache_a.peek("b", 0.0)
    held_b = cache_b.peek(secret.next().resumption_ids()[0], 0.0)
    assert held_a is not None and held_b is not None
    assert held_a.secret == held_b.secret == secret.next()  # ss[i] itself is not kept
