"""The drafts' frames: 3-byte header as associated data, flags byte, 8-byte little-endian
offset nonce counting whole frames, at most 1,244 data bytes per frame sent."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tcpcrypt.aead import aead_by_id
from tcpcrypt.drafts.records import MAX_SEND_DATA, DraftOpener, DraftSealer
from tcpcrypt.errors import AuthenticationError, DecodeError

KEY = bytes(range(16))
AES128 = aead_by_id(0x01)


def test_first_frame_is_header_then_aesgcm_under_a_zero_nonce() -> None:
    frame = DraftSealer(AES128, KEY).seal(b"hello")
    assert frame[:3] == bytes((0, 0, 1 + 5 + 16))
    expected = AESGCM(KEY).encrypt(bytes(8), b"\x00hello", frame[:3])
    assert frame[3:] == expected


def test_second_frame_nonce_counts_the_first_frames_bytes_little_endian() -> None:
    sealer = DraftSealer(AES128, KEY)
    first = sealer.seal(b"a" * 100)
    second = sealer.seal(b"b")
    nonce = len(first).to_bytes(8, "little")
    assert AESGCM(KEY).decrypt(nonce, second[3:], second[:3]) == b"\x00b"


def test_long_data_is_cut_into_frames_of_at_most_1244_bytes() -> None:
    stream = DraftSealer(AES128, KEY).seal_all(b"x" * 3000)
    lengths = []
    while stream:
        length = int.from_bytes(stream[1:3], "big")
        lengths.append(length - 17)
        stream = stream[3 + length:]
    assert lengths == [MAX_SEND_DATA, MAX_SEND_DATA, 3000 - 2 * MAX_SEND_DATA]


def test_opener_reassembles_frames_split_anywhere() -> None:
    stream = DraftSealer(AES128, KEY).seal_all(b"data " * 500) + DraftSealer(
        AES128, KEY).seal(b"", fin=False)[:0]
    opener = DraftOpener(AES128, KEY)
    received = b"".join(opener.feed(stream[i:i + 7]) for i in range(0, len(stream), 7))
    assert received == b"data " * 500


def test_fin_flag_is_reported() -> None:
    opener = DraftOpener(AES128, KEY)
    assert opener.feed(DraftSealer(AES128, KEY).seal(b"end", fin=True)) == b"end"
    assert opener.fin


def test_tampered_header_fails_authentication() -> None:
    frame = bytearray(DraftSealer(AES128, KEY).seal(b"hello"))
    frame[0] = 0
    frame[-1] ^= 1
    with pytest.raises(AuthenticationError):
        DraftOpener(AES128, KEY).feed(bytes(frame))


def test_nonzero_control_byte_is_refused() -> None:
    frame = bytearray(DraftSealer(AES128, KEY).seal(b"hello"))
    frame[0] = 1
    with pytest.raises(DecodeError, match="bad-control"):
        DraftOpener(AES128, KEY).feed(bytes(frame))
