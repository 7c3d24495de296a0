"""TCP-ENO option codec: round trips, known bytes, truncation, trailing bytes, garbage, misuse."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt.constants import ENO_OPTION_KIND
from tcpcrypt.eno_option import (
    MAX_LENGTH_BYTE_DATA,
    MAX_TCP_OPTION,
    EnoOption,
    GlobalSuboption,
    TepSuboption,
    encode_eno_option,
    length_byte,
    parse_eno_option,
)
from tcpcrypt.errors import DecodeError, UsageError

teps = st.builds(TepSuboption, st.integers(0x20, 0x7F), st.binary(max_size=12))
globals_ = st.builds(GlobalSuboption, st.booleans(), st.integers(0, 3))


@st.composite
def options(draw: st.DrawFn) -> EnoOption:
    """Options that fit in 40 bytes: TEPs, and an optional global suboption anywhere."""
    suboptions: list[GlobalSuboption | TepSuboption] = list(draw(st.lists(teps, max_size=6)))
    if draw(st.booleans()):
        suboptions.insert(draw(st.integers(0, len(suboptions))), draw(globals_))
    option = EnoOption(tuple(suboptions))
    try:
        encode_eno_option(option)
    except UsageError:
        # Too long for a TCP option: keep only what fits, each TEP without data.
        option = EnoOption(tuple(s if isinstance(s, GlobalSuboption) else TepSuboption(s.tep)
                                 for s in suboptions))
    return option


@settings(max_examples=300)
@given(options())
def test_encode_then_parse_round_trips(option: EnoOption) -> None:
    wire = encode_eno_option(option)
    assert wire[0] == ENO_OPTION_KIND and wire[1] == len(wire) <= MAX_TCP_OPTION
    assert parse_eno_option(wire) == option


@given(options(), st.binary(min_size=1, max_size=20))
def test_bytes_past_the_length_byte_are_ignored(option: EnoOption, garbage: bytes) -> None:
    assert parse_eno_option(encode_eno_option(option) + garbage) == option


@given(options())
def test_every_truncated_prefix_raises_eno_truncated(option: EnoOption) -> None:
    wire = encode_eno_option(option)
    for end in range(len(wire)):
        with pytest.raises(DecodeError) as caught:
            parse_eno_option(wire[:end])
        assert caught.value.reason == "eno-truncated"


@settings(max_examples=1000)
@given(st.binary(max_size=45))
def test_random_bytes_raise_only_decode_error_and_valid_parses_re_encode(data: bytes) -> None:
    try:
        parsed = parse_eno_option(data)
    except DecodeError as error:
        assert error.reason in {"eno-truncated", "eno-bad-length", "eno-bad-kind",
                                "eno-bad-suboption"}
        return
    # Anything that parses re-encodes (never longer) to an option that parses the same.
    assert parse_eno_option(encode_eno_option(parsed)) == parsed


@given(st.binary(max_size=38))
def test_arbitrary_body_under_kind_69_parses_or_names_a_reason(body: bytes) -> None:
    wire = bytes((ENO_OPTION_KIND, 2 + len(body))) + body
    try:
        parse_eno_option(wire)
    except DecodeError as error:
        assert error.reason in {"eno-truncated", "eno-bad-suboption"}


@pytest.mark.parametrize(
    ("option", "wire"),
    [
        (EnoOption(), bytes([69, 2])),
        (EnoOption((TepSuboption(0x21),)), bytes([69, 3, 0x21])),
        (EnoOption((GlobalSuboption(b=True), TepSuboption(0x23))), bytes([69, 4, 0x01, 0x23])),
        (EnoOption((GlobalSuboption(application_aware=3),)), bytes([69, 3, 0x06])),
        (EnoOption((GlobalSuboption(b=True, application_aware=1),)), bytes([69, 3, 0x03])),
        # The last TEP with data: v=1 byte, the data runs to the end of the option.
        (EnoOption((TepSuboption(0x23, b"\xaa\xbb"),)), bytes([69, 5, 0xA3, 0xAA, 0xBB])),
        # A TEP with data before another: length byte 100nnnnn, then the v=1 TEP byte, then
        # nnnnn+1 data bytes (9 bytes of data: nnnnn = 8, 0x88).
        (
            EnoOption((GlobalSuboption(b=True), TepSuboption(0x21),
                       TepSuboption(0x23, b"\xaa" * 9), TepSuboption(0x24, b"\xbb"))),
            bytes([69, 17, 0x01, 0x21, 0x88, 0xA3]) + b"\xaa" * 9 + bytes([0xA4, 0xBB]),
        ),
        # A resumption offer (9-byte identifier) ahead of a plain TEP.
        (
            EnoOption((TepSuboption(0x23, bytes(range(9))), TepSuboption(0x21))),
            bytes([69, 14, 0x88, 0xA3]) + bytes(range(9)) + bytes([0x21]),
        ),
        # One data byte behind a length byte: nnnnn = 0.
        (
            EnoOption((TepSuboption(0x23, b"\x07"), TepSuboption(0x21))),
            bytes([69, 6, 0x80, 0xA3, 0x07, 0x21]),
        ),
        # The global suboption is written where the caller puts it, here after the TEPs (as
        # the reference implementation sends it).
        (EnoOption((TepSuboption(0x21), TepSuboption(0x23), GlobalSuboption(b=True))),
         bytes([69, 5, 0x21, 0x23, 0x01])),
        # A TEP with data is not the last suboption when a global one follows it: length byte.
        (EnoOption((TepSuboption(0x23, b"\xaa\xbb"), GlobalSuboption(application_aware=1))),
         bytes([69, 7, 0x81, 0xA3, 0xAA, 0xBB, 0x02])),
    ],
)
def test_known_options_encode_to_known_bytes(option: EnoOption, wire: bytes) -> None:
    assert encode_eno_option(option) == wire
    assert parse_eno_option(wire) == option


@pytest.mark.parametrize(
    ("wire", "option"),
    [
        # The drafts' experimental form: kind 253, ExID 0x454E.
        (bytes([253, 6, 0x45, 0x4E, 0x21, 0x23]), EnoOption((TepSuboption(0x21),
                                                              TepSuboption(0x23)))),
        (bytes([253, 4, 0x45, 0x4E]), EnoOption()),
        # Reserved bits of the global suboption are ignored on receipt.
        (bytes([69, 3, 0x19]), EnoOption((GlobalSuboption(b=True),))),
        # A v=1 TEP byte with nothing after it: a TEP without data.
        (bytes([69, 3, 0xA1]), EnoOption((TepSuboption(0x21),))),
        # A length byte may also precede the last TEP; 0x80 = the TEP byte and one data byte.
        (bytes([69, 5, 0x80, 0xA1, 0x22]), EnoOption((TepSuboption(0x21, b"\x22"),))),
        (bytes([69, 6, 0x81, 0xA1, 0x07, 0x08]), EnoOption((TepSuboption(0x21, b"\x07\x08"),))),
        (bytes([69, 6, 0x80, 0xA1, 0x07, 0x22]),
         EnoOption((TepSuboption(0x21, b"\x07"), TepSuboption(0x22)))),
        # The global suboption anywhere: after the TEPs (the reference implementation's place),
        # between them, after a length-byte suboption.
        (bytes([69, 5, 0x21, 0x23, 0x02]),
         EnoOption((TepSuboption(0x21), TepSuboption(0x23), GlobalSuboption(application_aware=1)))),
        (bytes([69, 5, 0x21, 0x01, 0x23]),
         EnoOption((TepSuboption(0x21), GlobalSuboption(b=True), TepSuboption(0x23)))),
        (bytes([69, 14, 0x88, 0xA3]) + bytes(9) + bytes([0x01]),
         EnoOption((TepSuboption(0x23, bytes(9)), GlobalSuboption(b=True)))),
        # Only the first global suboption counts; later ones are ignored on receipt.
        (bytes([69, 4, 0x01, 0x00]), EnoOption((GlobalSuboption(b=True),))),
        (bytes([69, 5, 0x00, 0x21, 0x01]), EnoOption((GlobalSuboption(), TepSuboption(0x21)))),
        (bytes([69, 6, 0x21, 0x01, 0x23, 0x06]),
         EnoOption((TepSuboption(0x21), GlobalSuboption(b=True), TepSuboption(0x23)))),
    ],
)
def test_other_valid_forms_are_accepted(wire: bytes, option: EnoOption) -> None:
    assert parse_eno_option(wire) == option


def test_experimental_form_carries_the_same_suboptions_as_kind_69() -> None:
    option = EnoOption((GlobalSuboption(b=True), TepSuboption(0x21, b"x" * 5),
                        TepSuboption(0x23)))
    wire = encode_eno_option(option)
    experimental = bytes([253, wire[1] + 2, 0x45, 0x4E]) + wire[2:]
    assert parse_eno_option(experimental) == option


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", "eno-truncated"),
        (bytes([69]), "eno-truncated"),
        (bytes([69, 9, 0x21]), "eno-truncated"),
        (bytes([69, 1]), "eno-bad-length"),
        (bytes([69, 0]), "eno-bad-length"),
        (bytes([69, 41]) + bytes([0x21] * 39), "eno-bad-length"),
        (bytes([253, 3, 0x45]), "eno-bad-length"),
        (bytes([253, 6, 0x45]), "eno-truncated"),
        (bytes([2, 4, 5, 0xB4]), "eno-bad-kind"),
        (bytes([253, 4, 0x12, 0x34]), "eno-bad-kind"),
        (bytes([69, 4, 0x83, 0xA1]), "eno-truncated"),
        # A length byte needs its TEP byte and at least one data byte after it.
        (bytes([69, 4, 0x80, 0xA1]), "eno-truncated"),
        (bytes([69, 5, 0x81, 0xA1, 0x07]), "eno-truncated"),
        (bytes([69, 12, 0x88, 0xA3]) + bytes(8), "eno-truncated"),
        (bytes([69, 5, 0x80, 0x21, 0x00]), "eno-bad-suboption"),
        (bytes([69, 6, 0x81, 0x90, 0xA1, 0x00]), "eno-bad-suboption"),
        (bytes([69, 5, 0x80, 0x01, 0x00]), "eno-bad-suboption"),
    ],
)
def test_malformed_options_name_their_reason(wire: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_eno_option(wire)
    assert caught.value.reason == reason


@pytest.mark.parametrize("size", range(1, MAX_LENGTH_BYTE_DATA + 1))
def test_a_length_byte_counts_nnnnn_plus_one_data_bytes_after_the_tep_byte(size: int) -> None:
    option = EnoOption((TepSuboption(0x23, bytes([0x5A]) * size), TepSuboption(0x21)))
    wire = encode_eno_option(option)
    assert wire[2:4] == bytes([0x80 | (size - 1), 0xA3])
    assert wire[4:] == bytes([0x5A]) * size + bytes([0x21])
    assert parse_eno_option(wire) == option


def test_encoder_uses_a_length_byte_up_to_32_data_bytes_before_the_last_tep() -> None:
    fits = EnoOption((TepSuboption(0x23, b"x" * 32), TepSuboption(0x21)))
    wire = encode_eno_option(fits)
    assert wire[2:4] == bytes([0x9F, 0xA3]) and len(wire) == 37
    assert parse_eno_option(wire) == fits
    with pytest.raises(UsageError):
        encode_eno_option(EnoOption((TepSuboption(0x23, b"x" * 33), TepSuboption(0x21))))


def test_a_tep_without_data_is_its_plain_byte_never_a_length_byte() -> None:
    option = EnoOption((TepSuboption(0x23), TepSuboption(0x21, b"d")))
    assert encode_eno_option(option) == bytes([69, 5, 0x23, 0xA1, 0x64])


@pytest.mark.parametrize("size", [0, -1, MAX_LENGTH_BYTE_DATA + 1])
def test_length_byte_refuses_a_data_size_it_cannot_express(size: int) -> None:
    with pytest.raises(UsageError):
        length_byte(size)


def test_length_byte_of_one_and_of_32_data_bytes() -> None:
    assert (length_byte(1), length_byte(9), length_byte(32)) == (0x80, 0x88, 0x9F)


def test_the_last_tep_may_carry_data_up_to_the_option_limit() -> None:
    fits = EnoOption((TepSuboption(0x23, b"x" * 37),))
    assert len(encode_eno_option(fits)) == MAX_TCP_OPTION
    with pytest.raises(UsageError):
        encode_eno_option(EnoOption((TepSuboption(0x23, b"x" * 38),)))


@pytest.mark.parametrize(
    "option",
    [
        EnoOption((TepSuboption(0x10),)),
        EnoOption((TepSuboption(0x80),)),
        EnoOption((GlobalSuboption(), GlobalSuboption())),
        EnoOption((GlobalSuboption(), TepSuboption(0x21), GlobalSuboption(b=True))),
        EnoOption((GlobalSuboption(application_aware=4),)),
        EnoOption((GlobalSuboption(application_aware=-1),)),
        EnoOption((TepSuboption(0x21, "text"),)),  # type: ignore[arg-type]
        EnoOption(("0x21",)),  # type: ignore[arg-type]
        EnoOption(tuple(TepSuboption(0x21) for _ in range(39))),
    ],
)
def test_encoder_refuses_what_cannot_be_sent(option: EnoOption) -> None:
    with pytest.raises(UsageError):
        encode_eno_option(option)


def test_option_accessors_split_global_and_tep_suboptions() -> None:
    option = EnoOption((GlobalSuboption(b=True), TepSuboption(0x21), TepSuboption(0x23, b"d")))
    assert option.global_suboption == GlobalSuboption(b=True)
    assert option.teps == (TepSuboption(0x21), TepSuboption(0x23, b"d"))
    assert EnoOption((TepSuboption(0x21),)).global_suboption is None
    after = EnoOption((TepSuboption(0x21), GlobalSuboption(b=True), TepSuboption(0x23)))
    assert after.global_suboption == GlobalSuboption(b=True)
    assert after.teps == (TepSuboption(0x21), TepSuboption(0x23))
