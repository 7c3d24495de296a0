"""Init1/Init2 codec: round trips, incremental parsing, trailers, limits, garbage."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt.errors import DecodeError, UsageError
from tcpcrypt.init_messages import (
    MAX_INIT_MESSAGE,
    encode_init1,
    encode_init2,
    try_parse_init1,
    try_parse_init2,
)

PK = 32


@settings(max_examples=100)
@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=8),
       st.binary(min_size=32, max_size=32), st.binary(min_size=PK, max_size=PK),
       st.binary(max_size=40), st.binary(max_size=20))
def test_init1_round_trips_whole_bytewise_and_with_trailing_bytes(
    ids: list[int], nonce: bytes, key: bytes, trailer: bytes, extra: bytes
) -> None:
    message = encode_init1(ids, nonce, key, trailer)
    wire = message.raw
    assert try_parse_init1(wire + extra, PK) == (message, len(wire))
    for end in range(len(wire)):
        assert try_parse_init1(wire[:end], PK) is None


@settings(max_examples=100)
@given(st.integers(0, 0xFFFF), st.binary(min_size=32, max_size=32),
       st.binary(min_size=PK, max_size=PK), st.binary(max_size=40), st.binary(max_size=20))
def test_init2_round_trips_whole_bytewise_and_with_trailing_bytes(
    aead: int, nonce: bytes, key: bytes, trailer: bytes, extra: bytes
) -> None:
    message = encode_init2(aead, nonce, key, trailer)
    wire = message.raw
    assert try_parse_init2(wire + extra, PK) == (message, len(wire))
    for end in range(len(wire)):
        assert try_parse_init2(wire[:end], PK) is None


def test_known_init1_bytes() -> None:
    raw = encode_init1([1, 0x10], b"N" * 32, b"K" * 32).raw
    assert raw[:8] == bytes.fromhex("15101a0e") + (8 + 1 + 4 + 64).to_bytes(4, "big")
    assert raw[8:13] == bytes.fromhex("0200010010")


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (bytes.fromhex("deadbeef"), "bad-init-magic"),
        (bytes.fromhex("15101a0e00000010"), "init-too-short"),
        (bytes.fromhex("15101a0e") + (MAX_INIT_MESSAGE + 1).to_bytes(4, "big"), "init-too-long"),
        (bytes.fromhex("15101a0e00000100") + b"\x00", "no-ciphers"),
    ],
)
def test_bad_init1_is_refused_as_soon_as_visible(wire: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        try_parse_init1(wire, PK)
    assert caught.value.reason == reason


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_garbage_only_raises_decode_error(data: bytes) -> None:
    for parse in (try_parse_init1, try_parse_init2):
        with contextlib.suppress(DecodeError):
            parse(data, PK)


def test_encoders_refuse_bad_fields() -> None:
    with pytest.raises(UsageError):
        encode_init1([], b"N" * 32, b"K")
    with pytest.raises(UsageError):
        encode_init2(1, b"short", b"K")
    with pytest.raises(UsageError):
        encode_init1([1], b"N" * 32, b"K" * MAX_INIT_MESSAGE)
