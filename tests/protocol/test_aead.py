"""AEAD registry: names, RFC 8548 wire identifiers, key lengths, unknown names and ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tcpcrypt.aead import AEAD_NAMES, AEADS, aead_by_id, aead_by_name
from tcpcrypt.errors import PeerError, UsageError

# (wire id, key length) per name, as in RFC 8548's AEAD registry and RFC 5116 / RFC 8439.
EXPECTED = {
    "aes-128-gcm": (0x0001, 16),
    "aes-256-gcm": (0x0002, 32),
    "chacha20-poly1305": (0x0010, 32),
}


def test_the_registry_holds_exactly_the_three_rfc_aeads() -> None:
    assert {spec.name: (spec.wire_id, spec.key_length) for spec in AEADS} == EXPECTED
    assert tuple(EXPECTED) == AEAD_NAMES


@pytest.mark.parametrize("name", AEAD_NAMES)
def test_name_and_wire_id_lead_to_the_same_spec(name: str) -> None:
    spec = aead_by_name(name)
    assert aead_by_id(spec.wire_id) is spec


@pytest.mark.parametrize("name", AEAD_NAMES)
def test_keyed_cipher_round_trips_with_a_16_byte_tag(name: str) -> None:
    spec = aead_by_name(name)
    cipher = spec.new(bytes(range(spec.key_length)))
    sealed = cipher.encrypt(b"\x00" * 12, b"payload", b"ad")
    assert len(sealed) == len(b"payload") + 16
    assert cipher.decrypt(b"\x00" * 12, sealed, b"ad") == b"payload"


@pytest.mark.parametrize("name", AEAD_NAMES)
def test_a_key_of_the_wrong_length_is_a_usage_error(name: str) -> None:
    spec = aead_by_name(name)
    with pytest.raises(UsageError):
        spec.new(b"k" * (spec.key_length + 1))


def test_an_unknown_name_is_a_usage_error_listing_the_known_ones() -> None:
    with pytest.raises(UsageError, match="aes-128-gcm"):
        aead_by_name("aes-128-cbc")


@given(st.integers(0, 0xFFFF).filter(lambda wire_id: wire_id not in (1, 2, 0x10)))
def test_an_unknown_wire_id_is_a_peer_error(wire_id: int) -> None:
    with pytest.raises(PeerError) as caught:
        aead_by_id(wire_id)
    assert caught.value.reason == "unknown-aead"
