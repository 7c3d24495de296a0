"""The drafts' ENO option (kind 253, ExID 0x454E) and transcript, against bytes seen on the
wire from the reference daemon (SYN `fd 06 45 4e 21 22`, SYN-ACK `fd 05 45 4e 21`, an empty
ENO option `fd 04 45 4e` on A's first data segment)."""

from __future__ import annotations

import pytest

from tcpcrypt.drafts import eno03
from tcpcrypt.errors import DecodeError, UsageError

REFERENCE_SYN = bytes.fromhex("fd06454e2122")
REFERENCE_SYNACK = bytes.fromhex("fd05454e21")


def test_syn_option_offering_both_curves_is_the_references_bytes() -> None:
    assert eno03.encode_option([0x21, 0x22]) == REFERENCE_SYN


def test_synack_option_naming_one_tep_is_the_references_bytes() -> None:
    assert eno03.encode_option([0x21]) == REFERENCE_SYNACK


def test_empty_option_is_kind_length_and_exid() -> None:
    assert bytes.fromhex("fd04454e") == eno03.EMPTY_OPTION


def test_parse_reads_teps_in_order() -> None:
    assert eno03.parse_option(REFERENCE_SYN).teps == (0x21, 0x22)


def test_application_aware_byte_is_read_wherever_it_stands() -> None:
    option = eno03.encode_option([0x21], app_aware=True)
    assert option == bytes.fromhex("fd06454e2102")
    parsed = eno03.parse_option(option)
    assert parsed.app_aware and parsed.teps == (0x21,)


def test_tep_with_v_bit_carries_the_rest_of_the_option() -> None:
    identifier = bytes(range(9))
    parsed = eno03.parse_option(bytes((253, 15, 0x45, 0x4E, 0x21, 0xA1)) + identifier)
    assert parsed.teps == (0x21, 0x21)
    assert parsed.variable_tep == 0x21 and parsed.variable_data == identifier


@pytest.mark.parametrize("option", [
    bytes.fromhex("fd05454f21"),  # another ExID
    bytes.fromhex("fd06454e21"),  # length byte says more than there is
    bytes.fromhex("45454e21"),  # kind 69 is not this profile's
    bytes.fromhex("fd03454e"),  # shorter than its header
    bytes.fromhex("fd05454e85"),  # a byte in 0x80..0x9f: no suboption of the draft
])
def test_malformed_options_are_refused(option: bytes) -> None:
    with pytest.raises(DecodeError):
        eno03.parse_option(option)


def test_transcript_puts_an_empty_option_after_each_side() -> None:
    assert eno03.transcript(REFERENCE_SYN, REFERENCE_SYNACK) == bytes.fromhex(
        "fd06454e2122" "fd04454e" "fd05454e21" "fd04454e")


def test_b_choosing_a_tep_a_did_not_offer_is_refused() -> None:
    with pytest.raises(DecodeError, match="no-common-tep"):
        eno03.negotiated_tep(eno03.encode_option([0x22]), REFERENCE_SYNACK)


def test_bad_teps_are_refused_before_encoding() -> None:
    for teps in ([], [0x10], [0x21, 0x21], [0x80]):
        with pytest.raises(UsageError):
            eno03.encode_option(teps)
