"""TCP-ENO option codec: round trips, every truncation, trailing bytes, garbage."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt.eno_option import (
    EnoOption,
    GlobalSuboption,
    TepSuboption,
    encode_eno_option,
    parse_eno_option,
)
from tcpcrypt.errors import DecodeError, UsageError

teps = st.builds(TepSuboption, st.integers(0x20, 0x7F), st.binary(max_size=9))


@st.composite
def options(draw: st.DrawFn) -> EnoOption:
    suboptions: list[GlobalSuboption | TepSuboption] = []
    if draw(st.booleans()):
        suboptions.append(GlobalSuboption(draw(st.booleans()), draw(st.integers(0, 3))))
    suboptions.extend(draw(st.lists(teps, max_size=3)))
    return EnoOption(tuple(suboptions))


@settings(max_examples=200)
@given(options())
def test_encode_then_parse_round_trips(option: EnoOption) -> None:
    try:
        wire = encode_eno_option(option)
    except UsageError:
        return  # larger than the 40 bytes a TCP option may have
    assert parse_eno_option(wire) == option
    assert parse_eno_option(wire + b"\x01\x01garbage") == option  # bytes past the length


def test_known_bytes() -> None:
    option = EnoOption((GlobalSuboption(b=True), TepSuboption(0x21),
                        TepSuboption(0x23, b"\xaa" * 9), TepSuboption(0x24, b"\xbb")))
    wire = encode_eno_option(option)
    assert wire == bytes([69, 17, 0x01, 0x21, 0x89, 0xA3]) + b"\xaa" * 9 + bytes([0xA4, 0xBB])
    assert parse_eno_option(wire) == option


def test_experimental_form_is_accepted_on_receipt() -> None:
    assert parse_eno_option(bytes([253, 6, 0x45, 0x4E, 0x21, 0x23])) == EnoOption(
        (TepSuboption(0x21), TepSuboption(0x23))
    )


@given(options())
def test_every_truncated_prefix_raises_decode_error_or_parses(option: EnoOption) -> None:
    try:
        wire = encode_eno_option(option)
    except UsageError:
        return
    for end in range(len(wire)):
        with contextlib.suppress(DecodeError):
            parse_eno_option(wire[:end])


@settings(max_examples=500)
@given(st.binary(max_size=45))
def test_random_bytes_only_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parse_eno_option(data)


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", "eno-truncated"),
        (bytes([69, 9, 0x21]), "eno-bad-length"),
        (bytes([2, 4, 5, 0xB4]), "eno-bad-kind"),
        (bytes([253, 4, 0x12, 0x34]), "eno-bad-kind"),
        (bytes([69, 4, 0x21, 0x01]), "eno-bad-suboption"),
        (bytes([69, 4, 0x83, 0xA1]), "eno-truncated"),
        (bytes([69, 4, 0x80, 0x21]), "eno-bad-suboption"),
    ],
)
def test_malformed_options_name_their_reason(wire: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_eno_option(wire)
    assert caught.value.reason == reason


def test_encoder_refuses_what_cannot_be_sent() -> None:
    with pytest.raises(UsageError):
        encode_eno_option(EnoOption((TepSuboption(0x23, b"x" * 40),)))
    with pytest.raises(UsageError):
        encode_eno_option(EnoOption((TepSuboption(0x10),)))
    with pytest.raises(UsageError):
        encode_eno_option(EnoOption((TepSuboption(0x21), GlobalSuboption())))
