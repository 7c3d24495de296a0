"""Init1/Init2 codec: exact layout, round trips fed whole, byte by byte and with trailing bytes;
bad magic, lengths and cipher counts refused as soon as visible; garbage raises only
DecodeError."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt.errors import DecodeError, UsageError
from tcpcrypt.init_messages import (
    MAX_INIT_MESSAGE,
    Init1,
    Init2,
    encode_init1,
    encode_init2,
    try_parse_init1,
    try_parse_init2,
)

PK = 32
NONCE = bytes(range(32))
INIT1_MAGIC = bytes.fromhex("15101a0e")
INIT2_MAGIC = bytes.fromhex("097105e0")

Parser = Callable[[bytes, int], object]
ids_strategy = st.lists(st.integers(0, 0xFF), min_size=1, max_size=8)
nonces = st.binary(min_size=32, max_size=32)


def test_init1_layout_is_magic_length_count_ids_nonce_key_trailer() -> None:
    raw = encode_init1([0x01, 0x10], NONCE, b"K" * PK, trailer=b"TT").raw
    assert raw == (
        INIT1_MAGIC + (8 + 1 + 2 + 32 + PK + 2).to_bytes(4, "big") + b"\x02" + b"\x01\x10"
        + NONCE + b"K" * PK + b"TT"
    )


def test_init2_layout_is_magic_length_aead_nonce_key_trailer() -> None:
    raw = encode_init2(0x02, NONCE, b"K" * PK).raw
    assert raw == INIT2_MAGIC + (8 + 1 + 32 + PK).to_bytes(4, "big") + b"\x02" + NONCE + (
        b"K" * PK
    )


@settings(max_examples=60)
@given(ids_strategy, nonces, st.binary(min_size=PK, max_size=PK), st.binary(max_size=40),
       st.binary(max_size=20))
def test_init1_round_trips_whole_bytewise_and_with_trailing_bytes(
    ids: list[int], nonce: bytes, key: bytes, trailer: bytes, extra: bytes
) -> None:
    message = encode_init1(ids, nonce, key, trailer)
    wire = message.raw
    assert try_parse_init1(wire + extra, PK) == (message, len(wire))
    assert try_parse_init1(bytearray(wire), PK) == (message, len(wire))
    assert try_parse_init1(memoryview(wire + extra), PK) == (message, len(wire))
    for end in range(len(wire)):
        assert try_parse_init1(wire[:end], PK) is None


@settings(max_examples=60)
@given(st.integers(0, 0xFF), nonces, st.binary(min_size=PK, max_size=PK),
       st.binary(max_size=40), st.binary(max_size=20))
def test_init2_round_trips_whole_bytewise_and_with_trailing_bytes(
    aead: int, nonce: bytes, key: bytes, trailer: bytes, extra: bytes
) -> None:
    message = encode_init2(aead, nonce, key, trailer)
    wire = message.raw
    assert try_parse_init2(wire + extra, PK) == (message, len(wire))
    assert try_parse_init2(memoryview(wire), PK) == (message, len(wire))
    for end in range(len(wire)):
        assert try_parse_init2(wire[:end], PK) is None


@pytest.mark.parametrize("pk_length", [0, 56, 133, 256])
def test_the_public_key_length_comes_from_the_suite(pk_length: int) -> None:
    key = bytes(range(256))[:pk_length]
    init1 = encode_init1([1], NONCE, key, trailer=b"xyz")
    init2 = encode_init2(1, NONCE, key)
    assert try_parse_init1(init1.raw, pk_length) == (init1, len(init1.raw))
    assert try_parse_init2(init2.raw, pk_length) == (init2, len(init2.raw))


@pytest.mark.parametrize(
    ("parse", "magic"), [(try_parse_init1, INIT1_MAGIC), (try_parse_init2, INIT2_MAGIC)]
)
def test_a_wrong_magic_byte_is_refused_as_soon_as_it_arrives(parse: Parser, magic: bytes) -> None:
    for index in range(4):
        wrong = magic[:index] + bytes((magic[index] ^ 0x80,))
        with pytest.raises(DecodeError) as caught:
            parse(wrong, PK)
        assert caught.value.reason == "bad-init-magic"
    assert parse(magic[:3], PK) is None


@pytest.mark.parametrize(
    ("parse", "magic"), [(try_parse_init1, INIT1_MAGIC), (try_parse_init2, INIT2_MAGIC)]
)
def test_a_length_field_beyond_the_limit_is_refused_without_waiting(
    parse: Parser, magic: bytes
) -> None:
    assert parse(magic + MAX_INIT_MESSAGE.to_bytes(4, "big"), 0) is None
    with pytest.raises(DecodeError) as caught:
        parse(magic + (MAX_INIT_MESSAGE + 1).to_bytes(4, "big"), PK)
    assert caught.value.reason == "init-too-long"


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (INIT1_MAGIC + (8 + 1 + 1 + 32 + PK - 1).to_bytes(4, "big"), "init-too-short"),
        (INIT1_MAGIC + (8 + 1 + 2 + 32 + PK).to_bytes(4, "big") + b"\x03", "init-too-short"),
        (INIT1_MAGIC + (100).to_bytes(4, "big") + b"\x00", "no-ciphers"),
    ],
    ids=["below-minimum", "below-minimum-for-its-cipher-count", "zero-ciphers"],
)
def test_bad_init1_headers_are_refused_as_soon_as_visible(wire: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        try_parse_init1(wire, PK)
    assert caught.value.reason == reason


def test_init2_below_its_minimum_is_refused() -> None:
    with pytest.raises(DecodeError) as caught:
        try_parse_init2(INIT2_MAGIC + (8 + 1 + 32 + PK - 1).to_bytes(4, "big"), PK)
    assert caught.value.reason == "init-too-short"


def test_the_trailer_is_kept_in_raw_and_as_a_field() -> None:
    message = encode_init2(1, NONCE, b"K" * PK, trailer=b"future extension")
    parsed = try_parse_init2(message.raw + b"frame bytes", PK)
    assert parsed is not None
    init2, used = parsed
    assert isinstance(init2, Init2)
    assert (init2.trailer, init2.raw, used) == (b"future extension", message.raw, len(message.raw))


@settings(max_examples=300)
@given(st.binary(max_size=120), st.sampled_from([0, 32, 65]))
def test_garbage_raises_only_decode_errors(data: bytes, pk_length: int) -> None:
    for parse in (try_parse_init1, try_parse_init2):
        with contextlib.suppress(DecodeError):
            parse(data, pk_length)


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_garbage_behind_a_right_magic_raises_only_decode_errors(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        result = try_parse_init1(INIT1_MAGIC + data, PK)
        assert result is None or isinstance(result[0], Init1)
    with contextlib.suppress(DecodeError):
        result2 = try_parse_init2(INIT2_MAGIC + data, PK)
        assert result2 is None or isinstance(result2[0], Init2)


def test_encoders_refuse_impossible_fields() -> None:
    with pytest.raises(UsageError):
        encode_init1([], NONCE, b"K")
    with pytest.raises(UsageError):
        encode_init1([1] * 256, NONCE, b"K")
    with pytest.raises(UsageError):
        encode_init1([0x10000], NONCE, b"K")
    with pytest.raises(UsageError):
        encode_init2(-1, NONCE, b"K")
    with pytest.raises(UsageError):
        encode_init2(1, b"short", b"K")
    with pytest.raises(UsageError):
        encode_init1([1], NONCE, b"K" * MAX_INIT_MESSAGE)
    with pytest.raises(UsageError):
        try_parse_init1(b"", -1)
