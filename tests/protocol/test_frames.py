"""Frames: round trips, incremental opening, tampering, limits, rekeying, nonce uniqueness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt.aead import AEAD_NAMES, aead_by_name
from tcpcrypt.errors import DecodeError, PeerError, UsageError
from tcpcrypt.frames import FrameOpener, FrameSealer, frame_nonce
from tcpcrypt.key_schedule import SessionSecret


def keys_for(aead: str) -> tuple[FrameSealer, FrameOpener]:
    spec = aead_by_name(aead)
    chain = SessionSecret(b"\x42" * 32).key_chain(spec.key_length)
    return FrameSealer(spec, chain.key_ab, 64), FrameOpener(spec, chain.key_ab, 64 + 17)


@pytest.mark.parametrize("aead", AEAD_NAMES)
def test_frame_round_trips_for_every_aead(aead: str) -> None:
    sealer, opener = keys_for(aead)
    frame = sealer.seal(b"hello")
    assert len(frame) == 2 + 1 + 5 + 16
    assert int.from_bytes(frame[:2], "big") == 1 + 5 + 16
    assert opener.feed(bytes(frame)) == [b"hello"]


def test_opener_fed_byte_by_byte_delivers_each_frame_once_complete() -> None:
    sealer, opener = keys_for("aes-128-gcm")
    stream = bytes(sealer.seal(b"one") + sealer.seal(b"two"))
    delivered = []
    for index in range(len(stream)):
        delivered += opener.feed(stream[index : index + 1])
    assert delivered == [b"one", b"two"]


@settings(max_examples=30)
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=6), st.data())
def test_stream_split_anywhere_reassembles(chunks: list[bytes], data: st.DataObject) -> None:
    sealer, opener = keys_for("chacha20-poly1305")
    stream = b"".join(bytes(sealer.seal(chunk)) for chunk in chunks)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    out = [chunk for piece in pieces for chunk in opener.feed(piece)]
    assert b"".join(out) == b"".join(chunks)


def test_tampering_any_byte_is_detected_and_nothing_is_delivered() -> None:
    sealer, _ = keys_for("aes-128-gcm")
    frame = bytes(sealer.seal(b"secret data"))
    for index in range(len(frame)):
        _, opener = keys_for("aes-128-gcm")
        forged = bytearray(frame)
        forged[index] ^= 0x01
        delivered: list[bytearray] = []
        with pytest.raises(PeerError):
            delivered += opener.feed(bytes(forged))
            delivered += opener.feed(b"\x00" * 70_000)  # completes any forged length
        assert delivered == []


def test_reserved_control_bits_reset() -> None:
    spec = aead_by_name("aes-128-gcm")
    key = b"k" * 16
    cipher = spec.new(key)
    length = (1 + 3 + 16).to_bytes(2, "big")
    frame = length + cipher.encrypt(frame_nonce(0), b"\x02abc", length)
    opener = FrameOpener(spec, lambda _generation: key)
    with pytest.raises(PeerError) as caught:
        opener.feed(frame)
    assert caught.value.reason == "reserved-control-bits"


def test_short_and_long_lengths_are_refused_from_the_length_field() -> None:
    _, opener = keys_for("aes-128-gcm")
    with pytest.raises(DecodeError, match="frame-too-short"):
        opener.feed(b"\x00\x05")
    _, opener = keys_for("aes-128-gcm")
    with pytest.raises(DecodeError, match="frame-too-long"):
        opener.feed(b"\xff\xff")


def test_dead_opener_refuses_more_input() -> None:
    _, opener = keys_for("aes-128-gcm")
    with pytest.raises(DecodeError):
        opener.feed(b"\x00\x01")
    with pytest.raises(UsageError):
        opener.feed(b"")


def test_seal_refuses_data_above_the_frame_limit() -> None:
    sealer, _ = keys_for("aes-128-gcm")
    with pytest.raises(UsageError):
        sealer.seal(b"x" * 65)
    assert len(sealer.seal_stream(b"x" * 200)) == 4 * (2 + 1 + 16) + 200


def test_rekey_keeps_both_sides_in_step_and_never_reuses_a_nonce_under_one_key() -> None:
    spec = aead_by_name("aes-128-gcm")
    chain = SessionSecret(b"\x07" * 32).key_chain(16)
    used: set[tuple[bytes, bytes]] = set()
    sealer = FrameSealer(spec, chain.key_ab, 64)
    opener = FrameOpener(spec, chain.key_ab, 81)
    for index in range(30):
        rekey = index % 4 == 3
        nonce = frame_nonce(sealer.offset)
        frame = sealer.seal(bytes([index]) * 10, rekey=rekey)
        pair = (chain.key_ab(sealer.generation), nonce)
        assert pair not in used
        used.add(pair)
        assert opener.feed(bytes(frame)) == [bytes([index]) * 10]
        assert opener.generation == sealer.generation
    assert sealer.generation == 7


def test_frame_sealed_under_next_key_without_rekey_flag_is_refused() -> None:
    spec = aead_by_name("aes-128-gcm")
    chain = SessionSecret(b"\x07" * 32).key_chain(16)
    wrong = FrameSealer(spec, lambda j: chain.key_ab(j + 1))
    opener = FrameOpener(spec, chain.key_ab)
    with pytest.raises(PeerError, match="bad-rekey"):
        opener.feed(bytes(wrong.seal(b"x")))
