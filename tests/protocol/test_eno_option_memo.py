"""Remembered ENO parses and encodings change no answer: a bad option or a badly typed field is
refused every time, even after an equal-valued good one was remembered."""

from __future__ import annotations

import pytest

from tcpcrypt.eno_option import (
    EnoOption,
    GlobalSuboption,
    TepSuboption,
    encode_eno_option,
    parse_eno_option,
)
from tcpcrypt.errors import DecodeError, UsageError


def test_a_remembered_parse_is_the_same_value_and_a_bytearray_parses_alike() -> None:
    option = bytes([69, 4, 0x01, 0x23])
    first, second = parse_eno_option(option), parse_eno_option(bytes(option))
    assert first == second == parse_eno_option(bytearray(option))
    assert first.teps == (TepSuboption(0x23),)


def test_a_malformed_option_is_refused_every_time() -> None:
    bad = bytes([69, 5, 0x23])  # length byte past the end
    for _ in range(3):
        with pytest.raises(DecodeError):
            parse_eno_option(bad)


def test_a_non_bool_b_is_refused_after_the_bool_one_was_encoded() -> None:
    good = EnoOption((GlobalSuboption(b=True), TepSuboption(0x23)))
    assert encode_eno_option(good) == bytes([69, 4, 0x01, 0x23])
    with pytest.raises(UsageError):
        encode_eno_option(EnoOption((GlobalSuboption(b=1), TepSuboption(0x23))))  # type: ignore[arg-type]


def test_bytearray_data_is_refused_after_equal_bytes_data_was_encoded() -> None:
    assert encode_eno_option(EnoOption((TepSuboption(0x23, b"\x01\x02"),))) == bytes(
        [69, 5, 0xA3, 0x01, 0x02])
    with pytest.raises(UsageError):
        encode_eno_option(EnoOption((TepSuboption(0x23, bytearray(b"\x01\x02")),)))  # type: ignore[arg-type]
