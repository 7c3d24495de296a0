"""Frames: layout, round trips (whole, byte by byte, split anywhere), tampering, limits,
control bits, rekeying in step, and no (key, nonce) pair ever used twice."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt.aead import AEAD_NAMES, aead_by_name
from tcpcrypt.errors import AuthenticationError, DecodeError, PeerError, UsageError
from tcpcrypt.frames import (
    DEFAULT_MAX_FRAME_PLAINTEXT,
    FRAME_OVERHEAD,
    FrameOpener,
    FrameSealer,
    frame_nonce,
)
from tcpcrypt.key_schedule import KeyChain, SessionSecret


def chain_for(aead: str, seed: int = 0x42) -> KeyChain:
    return SessionSecret(bytes((seed,)) * 32).key_chain(aead_by_name(aead).key_length)


def endpoints(aead: str = "aes-128-gcm", limit: int = 64) -> tuple[FrameSealer, FrameOpener]:
    spec = aead_by_name(aead)
    chain = chain_for(aead)
    return FrameSealer(spec, chain.key_ab, limit), FrameOpener(spec, chain.key_ab, limit + 17)


def split_frames(stream: bytes) -> list[tuple[int, bytes]]:
    """(offset, frame bytes) of each frame in a direction's stream, read from the length fields."""
    frames, position = [], 0
    while position < len(stream):
        end = position + 2 + int.from_bytes(stream[position : position + 2], "big")
        frames.append((position, stream[position:end]))
        position = end
    return frames


def test_nonce_is_the_magic_then_the_64_bit_offset() -> None:
    assert frame_nonce(0) == bytes.fromhex("44415441") + bytes(8)
    assert frame_nonce(0x0102030405060708) == bytes.fromhex("44415441" "0102030405060708")


@pytest.mark.parametrize("aead", AEAD_NAMES)
def test_a_frame_is_length_then_aead_of_control_and_data_under_the_offset_nonce(aead: str) -> None:
    spec = aead_by_name(aead)
    chain = chain_for(aead)
    sealer = FrameSealer(spec, chain.key_ab)
    first, second = sealer.seal(b"hello"), sealer.seal(b"world!")
    assert first[:2] == (1 + 5 + 16).to_bytes(2, "big")
    raw = spec.new(chain.key_ab(0))
    assert raw.decrypt(frame_nonce(0), first[2:], first[:2]) == b"\x00hello"
    assert raw.decrypt(frame_nonce(len(first)), second[2:], second[:2]) == b"\x00world!"
    assert sealer.offset == len(first) + len(second)


@pytest.mark.parametrize("aead", AEAD_NAMES)
def test_frames_round_trip_for_every_aead(aead: str) -> None:
    sealer, opener = endpoints(aead)
    stream = sealer.seal(b"hello") + sealer.seal(b"") + sealer.seal(b"x" * 64)
    assert opener.feed(stream) == [b"hello", b"", b"x" * 64]
    assert opener.offset == sealer.offset == len(stream)


def test_opener_fed_byte_by_byte_delivers_each_frame_once_complete() -> None:
    sealer, opener = endpoints()
    first, second = sealer.seal(b"one"), sealer.seal(b"two")
    stream = first + second
    delivered: list[tuple[int, bytes]] = []
    for index in range(len(stream)):
        for chunk in opener.feed(stream[index : index + 1]):
            delivered.append((index, bytes(chunk)))
    assert delivered == [(len(first) - 1, b"one"), (len(stream) - 1, b"two")]
    assert opener.buffered == 0


def test_trailing_bytes_of_the_next_frame_are_kept_until_it_completes() -> None:
    sealer, opener = endpoints()
    first, second = sealer.seal(b"one"), sealer.seal(b"two")
    assert opener.feed(first + second[:5]) == [b"one"]
    assert opener.buffered == 5
    assert opener.feed(bytearray(second[5:])) == [b"two"]


@settings(max_examples=40)
@given(st.sampled_from(AEAD_NAMES), st.lists(st.binary(max_size=64), min_size=1, max_size=6),
       st.data())
def test_a_stream_split_anywhere_reassembles(
    aead: str, chunks: list[bytes], data: st.DataObject
) -> None:
    sealer, opener = endpoints(aead)
    stream = b"".join(sealer.seal(chunk) for chunk in chunks)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    out = [bytes(chunk) for piece in pieces for chunk in opener.feed(memoryview(piece))]
    assert out == chunks


@settings(max_examples=20)
@given(st.binary(max_size=300), st.integers(1, 70))
def test_seal_stream_splits_into_frames_of_at_most_the_limit(data: bytes, limit: int) -> None:
    spec = aead_by_name("chacha20-poly1305")
    chain = chain_for("chacha20-poly1305")
    sealer, opener = FrameSealer(spec, chain.key_ab, limit), FrameOpener(spec, chain.key_ab)
    stream = bytes(sealer.seal_stream(data))
    frames = split_frames(stream)
    assert len(frames) == -(-len(data) // limit)
    assert len(stream) == len(data) + FRAME_OVERHEAD * len(frames)
    assert b"".join(opener.feed(stream)) == data


def test_seal_stream_with_nothing_sends_nothing_unless_asked_to_rekey() -> None:
    sealer, opener = endpoints()
    assert sealer.seal_stream(b"") == b""
    frame = sealer.seal_stream(b"", rekey=True)
    assert len(frame) == FRAME_OVERHEAD
    assert opener.feed(frame) == [b""]
    assert (sealer.generation, opener.generation) == (1, 1)


def test_tampering_with_any_byte_is_detected_and_nothing_is_delivered() -> None:
    sealer, _ = endpoints()
    frame = sealer.seal(b"secret data")
    for index in range(len(frame)):
        _, opener = endpoints()
        forged = bytearray(frame)
        forged[index] ^= 0x01
        delivered: list[bytearray] = []
        with pytest.raises(PeerError):
            delivered += opener.feed(forged)
            delivered += opener.feed(b"\x00" * 70_000)  # completes a forged, longer length
        assert delivered == []


def test_a_frame_from_the_other_direction_fails_authentication() -> None:
    spec = aead_by_name("aes-256-gcm")
    chain = chain_for("aes-256-gcm")
    frame = FrameSealer(spec, chain.key_ba).seal(b"from b")
    with pytest.raises(AuthenticationError) as caught:
        FrameOpener(spec, chain.key_ab).feed(frame)
    assert caught.value.reason == "bad-tag"


def test_a_replayed_frame_fails_because_its_offset_moved_on() -> None:
    sealer, opener = endpoints()
    frame = sealer.seal(b"once")
    assert opener.feed(frame) == [b"once"]
    with pytest.raises(AuthenticationError):
        opener.feed(frame)


def forge(key: bytes, offset: int, plaintext: bytes, aead: str = "aes-128-gcm") -> bytes:
    """A frame sealed by hand with any control byte."""
    header = (len(plaintext) + 16).to_bytes(2, "big")
    return header + aead_by_name(aead).new(key).encrypt(frame_nonce(offset), plaintext, header)


@pytest.mark.parametrize("control", [0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x03])
def test_reserved_control_bits_are_refused(control: int) -> None:
    chain = chain_for("aes-128-gcm")
    opener = FrameOpener(aead_by_name("aes-128-gcm"), chain.key_ab)
    with pytest.raises(PeerError) as caught:
        opener.feed(forge(chain.key_ab(0), 0, bytes((control,)) + b"abc"))
    assert caught.value.reason == "reserved-control-bits"


def test_a_rekey_flag_under_the_current_key_is_refused() -> None:
    chain = chain_for("aes-128-gcm")
    opener = FrameOpener(aead_by_name("aes-128-gcm"), chain.key_ab)
    with pytest.raises(PeerError) as caught:
        opener.feed(forge(chain.key_ab(0), 0, b"\x01abc"))
    assert caught.value.reason == "bad-rekey"


def test_a_frame_under_the_next_key_without_the_rekey_flag_is_refused() -> None:
    chain = chain_for("aes-128-gcm")
    opener = FrameOpener(aead_by_name("aes-128-gcm"), chain.key_ab)
    with pytest.raises(PeerError) as caught:
        opener.feed(forge(chain.key_ab(1), 0, b"\x00abc"))
    assert caught.value.reason == "bad-rekey"


def test_a_frame_two_generations_ahead_fails_authentication() -> None:
    chain = chain_for("aes-128-gcm")
    opener = FrameOpener(aead_by_name("aes-128-gcm"), chain.key_ab)
    with pytest.raises(AuthenticationError):
        opener.feed(forge(chain.key_ab(2), 0, b"\x01abc"))


def test_lengths_out_of_range_are_refused_from_the_length_field_alone() -> None:
    for field, reason in ((b"\x00\x00", "frame-too-short"), (b"\x00\x10", "frame-too-short"),
                          (b"\x00\x52", "frame-too-long"), (b"\xff\xff", "frame-too-long")):
        _, opener = endpoints(limit=64)  # longest accepted ciphertext: 64 + 17 = 0x51
        with pytest.raises(DecodeError) as caught:
            opener.feed(field)
        assert caught.value.reason == reason
    _, opener = endpoints(limit=64)
    assert opener.feed(b"\x00\x51") == []  # the largest accepted length waits for its bytes


def test_a_dead_opener_refuses_more_input() -> None:
    _, opener = endpoints()
    with pytest.raises(DecodeError):
        opener.feed(b"\x00\x01")
    with pytest.raises(UsageError):
        opener.feed(b"")


def test_valid_frames_before_a_bad_one_in_the_same_feed_are_not_delivered() -> None:
    sealer, opener = endpoints()
    good, bad = sealer.seal(b"good"), bytearray(sealer.seal(b"bad"))
    bad[-1] ^= 1
    with pytest.raises(AuthenticationError):
        opener.feed(good + bad)


def test_seal_refuses_data_above_the_frame_limit() -> None:
    sealer, _ = endpoints(limit=64)
    assert sealer.max_frame_plaintext == 64
    with pytest.raises(UsageError):
        sealer.seal(b"x" * 65)


def test_impossible_limits_are_usage_errors() -> None:
    spec = aead_by_name("aes-128-gcm")
    chain = chain_for("aes-128-gcm")
    for limit in (0, 0xFFFF - 17 + 1):
        with pytest.raises(UsageError):
            FrameSealer(spec, chain.key_ab, limit)
    for limit in (16, 0x10000):
        with pytest.raises(UsageError):
            FrameOpener(spec, chain.key_ab, limit)


def test_default_limits_let_a_default_sealer_talk_to_a_default_opener() -> None:
    spec = aead_by_name("aes-128-gcm")
    chain = chain_for("aes-128-gcm")
    sealer, opener = FrameSealer(spec, chain.key_ab), FrameOpener(spec, chain.key_ab)
    data = bytes(DEFAULT_MAX_FRAME_PLAINTEXT)
    assert opener.feed(sealer.seal(data)) == [data]


@pytest.mark.parametrize("aead", AEAD_NAMES)
def test_rekeying_keeps_both_sides_in_step_and_no_key_nonce_pair_repeats(aead: str) -> None:
    spec = aead_by_name(aead)
    chain = chain_for(aead)
    sealer, opener = FrameSealer(spec, chain.key_ab, 64), FrameOpener(spec, chain.key_ab, 81)
    stream = bytearray()
    for index in range(40):
        rekey = index % 3 == 2
        frame = sealer.seal(bytes([index]) * (index % 7), rekey=rekey)
        stream += frame
        assert opener.feed(frame) == [bytes([index]) * (index % 7)]
        assert opener.generation == sealer.generation
    assert sealer.generation == 13
    # Which (key, nonce) sealed each frame, found independently of the sealer's bookkeeping.
    used: list[tuple[bytes, bytes]] = []
    for offset, frame in split_frames(bytes(stream)):
        pair = next(
            (key, frame_nonce(offset))
            for key in map(chain.key_ab, range(sealer.generation + 1))
            if opens(spec.name, key, offset, frame)
        )
        used.append(pair)
    assert len(used) == 40
    assert len(set(used)) == len(used)


def opens(aead: str, key: bytes, offset: int, frame: bytes) -> bool:
    try:
        aead_by_name(aead).new(key).decrypt(frame_nonce(offset), frame[2:], frame[:2])
    except InvalidTag:
        return False
    return True


def test_the_rekey_frame_is_the_first_under_the_next_key_and_carries_the_flag() -> None:
    spec = aead_by_name("aes-128-gcm")
    chain = chain_for("aes-128-gcm")
    sealer = FrameSealer(spec, chain.key_ab)
    before = sealer.seal(b"old")
    flagged = sealer.seal(b"new", rekey=True)
    after = sealer.seal(b"newer")
    new_key = spec.new(chain.key_ab(1))
    assert opens("aes-128-gcm", chain.key_ab(0), 0, before)
    offset = len(before)
    assert new_key.decrypt(frame_nonce(offset), flagged[2:], flagged[:2]) == b"\x01new"
    offset += len(flagged)
    assert new_key.decrypt(frame_nonce(offset), after[2:], after[:2]) == b"\x00newer"


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=120), max_size=5))
def test_garbage_raises_only_peer_errors(pieces: list[bytes]) -> None:
    _, opener = endpoints(limit=64)
    try:
        for piece in pieces:
            assert opener.feed(piece) == []  # garbage never authenticates
    except PeerError:
        pass
