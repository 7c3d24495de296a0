"""TCP-ENO negotiation: roles, TEP choice, fallback reasons, transcripts, simultaneous open."""

from __future__ import annotations

import pytest

from tcpcrypt.eno_negotiation import EnoEndpoint, EnoState, Role, negotiation_transcript
from tcpcrypt.eno_option import TepSuboption
from tcpcrypt.errors import UsageError

X25519, P256, X448 = 0x23, 0x21, 0x24


def handshake(
    a_offers: list[TepSuboption], b_offers: list[TepSuboption], strip: str = ""
) -> tuple[EnoEndpoint, EnoEndpoint]:
    a, b = EnoEndpoint(a_offers), EnoEndpoint(b_offers)
    syn = a.syn_option()
    b.on_syn(None if strip == "syn" else syn)
    synack = b.synack_option()
    a.on_synack(None if strip == "synack" else synack)
    if a.state is EnoState.NEGOTIATED:
        ack = a.ack_option()
        b.on_ack(None if strip == "ack" else ack)
    return a, b


def test_both_sides_agree_on_tep_roles_and_transcript() -> None:
    a, b = handshake([TepSuboption(X25519), TepSuboption(P256)], [TepSuboption(P256)])
    assert a.result is not None and b.result is not None
    assert (a.result.role, b.result.role) == (Role.A, Role.B)
    assert a.result.tep == b.result.tep == P256
    assert a.result.transcript == b.result.transcript


def test_b_prefers_its_own_order() -> None:
    a, b = handshake([TepSuboption(X25519), TepSuboption(P256)],
                     [TepSuboption(P256), TepSuboption(X25519)])
    assert a.result is not None and a.result.tep == P256


def test_a_takes_the_last_common_tep_of_the_synack() -> None:
    a = EnoEndpoint([TepSuboption(X25519), TepSuboption(P256)])
    a.syn_option()
    a.on_synack(bytes([69, 5, 0x21, 0x24, 0x23]))  # P256, X448 (not offered), X25519
    assert a.result is not None and a.result.tep == X25519


def test_data_travels_with_the_tep_both_ways() -> None:
    a_id, b_id = b"A" * 9, b"B" * 9

    def chooser(offered: object) -> TepSuboption:
        return TepSuboption(X25519, b_id)

    a = EnoEndpoint([TepSuboption(X25519, a_id)])
    b = EnoEndpoint([TepSuboption(X25519)], chooser=chooser)
    b.on_syn(a.syn_option())
    a.on_synack(b.synack_option())
    b.on_ack(a.ack_option())
    assert a.result is not None and b.result is not None
    assert (a.result.a_data, a.result.b_data) == (a_id, b_id)
    assert (b.result.a_data, b.result.b_data) == (a_id, b_id)


@pytest.mark.parametrize(
    ("strip", "a_reason", "b_reason"),
    [("syn", "no-eno-synack", "no-eno-syn"), ("synack", "no-eno-synack", None),
     ("ack", None, "no-eno-ack")],
)
def test_stripped_options_fall_back_with_a_reason(
    strip: str, a_reason: str | None, b_reason: str | None
) -> None:
    a, b = handshake([TepSuboption(X25519)], [TepSuboption(X25519)], strip)
    assert a.fallback_reason == a_reason
    assert b.fallback_reason == b_reason


def test_no_common_tep_falls_back_on_both_sides() -> None:
    a, b = handshake([TepSuboption(X25519)], [TepSuboption(P256)])
    assert b.fallback_reason == "no-common-tep"
    assert a.fallback_reason == "no-eno-synack"


def test_malformed_peer_option_falls_back() -> None:
    b = EnoEndpoint([TepSuboption(X25519)])
    b.on_syn(bytes([69, 9, 1]))
    assert b.state is EnoState.FALLBACK and b.fallback_reason == "malformed-option"
    assert b.synack_option() is None


@pytest.mark.parametrize(("a_b", "peer_b", "role"), [(False, True, Role.A), (True, False, Role.B)])
def test_simultaneous_open_roles_follow_the_b_bit(a_b: bool, peer_b: bool, role: Role) -> None:
    one = EnoEndpoint([TepSuboption(X25519)], want_b=a_b)
    two = EnoEndpoint([TepSuboption(X25519)], want_b=peer_b)
    syn_one, syn_two = one.syn_option(), two.syn_option()
    one.on_syn(syn_two)
    two.on_syn(syn_one)
    assert one.role is role and two.role is not role
    b_side, a_side = (one, two) if role is Role.B else (two, one)
    a_side.on_synack(b_side.synack_option())
    b_side.on_ack(a_side.ack_option())
    assert a_side.result is not None and b_side.result is not None
    assert a_side.result.transcript == b_side.result.transcript


@pytest.mark.parametrize("want_b", [False, True])
def test_simultaneous_open_with_equal_b_bits_disables_encryption(want_b: bool) -> None:
    one = EnoEndpoint([TepSuboption(X25519)], want_b=want_b)
    two = EnoEndpoint([TepSuboption(X25519)], want_b=want_b)
    syn_one, syn_two = one.syn_option(), two.syn_option()
    one.on_syn(syn_two)
    two.on_syn(syn_one)
    assert one.fallback_reason == two.fallback_reason == "role-conflict"


def test_transcript_is_the_two_options_as_sent() -> None:
    assert negotiation_transcript(b"\x45\x03\x23", b"\x45\x03\x23") == b"\x45\x03\x23" * 2


def test_misuse_raises_usage_error() -> None:
    with pytest.raises(UsageError):
        EnoEndpoint([])
    b = EnoEndpoint([TepSuboption(X25519)])
    with pytest.raises(UsageError):
        b.synack_option()
    with pytest.raises(UsageError):
        b.ack_option()
    a = EnoEndpoint([TepSuboption(X25519)])
    a.syn_option()
    with pytest.raises(UsageError):
        a.syn_option()
    with pytest.raises(UsageError):
        a.on_ack(None)
