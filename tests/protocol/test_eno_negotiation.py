"""TCP-ENO negotiation: roles, TEP choice, data, fallback reasons, transcripts, misuse."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from tcpcrypt.eno_negotiation import (
    EnoEndpoint,
    EnoResult,
    EnoState,
    Role,
    negotiation_transcript,
)
from tcpcrypt.eno_option import (
    EnoOption,
    GlobalSuboption,
    TepSuboption,
    encode_eno_option,
    parse_eno_option,
)
from tcpcrypt.errors import UsageError

P256, P521, X25519, X448 = 0x21, 0x22, 0x23, 0x24
MALFORMED = bytes([69, 9, 0x21])  # length byte past the end
A_ID, B_ID = b"\xa1" * 9, b"\xb2" * 9  # resumption-identifier-sized data

Tamper = Callable[[bytes | None], bytes | None]


def keep(option: bytes | None) -> bytes | None:
    return option


def handshake(
    a: EnoEndpoint,
    b: EnoEndpoint,
    syn: Tamper = keep,
    synack: Tamper = keep,
    ack: Tamper = keep,
) -> tuple[bytes, bytes | None]:
    """Run A's SYN, B's SYN-ACK and A's first ACK through the given path; return SYN, SYN-ACK."""
    sent_syn = a.syn_option()
    b.on_syn(syn(sent_syn))
    sent_synack = b.synack_option()
    a.on_synack(synack(sent_synack))
    if a.state is EnoState.NEGOTIATED:
        b.on_ack(ack(a.ack_option()))
    else:
        b.on_ack(ack(None))
    return sent_syn, sent_synack


def teps(*ids: int) -> list[TepSuboption]:
    return [TepSuboption(tep) for tep in ids]


def results(a: EnoEndpoint, b: EnoEndpoint) -> tuple[EnoResult, EnoResult]:
    assert a.state is b.state is EnoState.NEGOTIATED
    assert a.result is not None and b.result is not None
    return a.result, b.result


def test_both_sides_agree_on_tep_roles_and_the_transcript_of_the_wire_bytes() -> None:
    a, b = EnoEndpoint(teps(X25519, P256)), EnoEndpoint(teps(P256))
    syn, synack = handshake(a, b)
    ra, rb = results(a, b)
    assert (ra.role, rb.role, a.role, b.role) == (Role.A, Role.B, Role.A, Role.B)
    assert ra.tep == rb.tep == P256
    assert synack is not None
    assert ra.transcript == rb.transcript == negotiation_transcript(syn, synack) == syn + synack
    assert syn == bytes([69, 4, X25519, P256]) and synack == bytes([69, 4, 0x01, P256])
    assert a.fallback_reason is None and b.fallback_reason is None


@pytest.mark.parametrize(
    ("a_offers", "b_offers", "tep"),
    [
        ((X25519, P256), (P256, X25519), P256),  # B's preference order wins
        ((X25519, P256), (X25519, P256), X25519),
        ((P521, X448, P256), (X25519, X448, P256), X448),
        ((P256,), (X448, P521, P256), P256),
    ],
)
def test_default_chooser_takes_bs_first_tep_that_a_offered(
    a_offers: tuple[int, ...], b_offers: tuple[int, ...], tep: int
) -> None:
    a, b = EnoEndpoint(teps(*a_offers)), EnoEndpoint(teps(*b_offers))
    handshake(a, b)
    ra, rb = results(a, b)
    assert ra.tep == rb.tep == tep


@pytest.mark.parametrize(
    ("synack", "tep"),
    [
        (bytes([69, 6, 0x01, P256, X448, X25519]), X25519),  # X448 not offered by A
        (bytes([69, 6, 0x01, X25519, P256, X448]), P256),
        (bytes([69, 5, 0x01, X448, P256]), P256),
        (bytes([69, 4, 0x01, X25519]), X25519),  # a global suboption is not a TEP
    ],
)
def test_a_takes_the_last_tep_of_the_synack_that_it_offered(synack: bytes, tep: int) -> None:
    a = EnoEndpoint(teps(X25519, P256))
    a.syn_option()
    a.on_synack(synack)
    assert a.result is not None and a.result.tep == tep


def test_resumption_style_data_travels_both_ways_with_the_default_chooser() -> None:
    a = EnoEndpoint([TepSuboption(X25519, A_ID), TepSuboption(P256)])
    b = EnoEndpoint([TepSuboption(X25519, B_ID)])
    syn, synack = handshake(a, b)
    ra, rb = results(a, b)
    assert (ra.a_data, ra.b_data) == (rb.a_data, rb.b_data) == (A_ID, B_ID)
    assert parse_eno_option(syn).teps[0] == TepSuboption(X25519, A_ID)
    assert synack is not None and parse_eno_option(synack).teps == (TepSuboption(X25519, B_ID),)


def test_a_custom_chooser_sees_as_offers_and_its_answer_is_sent() -> None:
    seen: list[Sequence[TepSuboption]] = []

    def chooser(offered: Sequence[TepSuboption]) -> TepSuboption:
        seen.append(tuple(offered))
        return TepSuboption(P256, B_ID)

    a = EnoEndpoint([TepSuboption(X25519, A_ID), TepSuboption(P256)])
    b = EnoEndpoint(teps(X25519), chooser=chooser)
    handshake(a, b)
    ra, rb = results(a, b)
    assert seen == [(TepSuboption(X25519, A_ID), TepSuboption(P256))]
    assert (ra.tep, ra.a_data, ra.b_data) == (rb.tep, rb.a_data, rb.b_data) == (P256, b"", B_ID)


def test_data_only_on_as_side_reaches_b() -> None:
    a = EnoEndpoint([TepSuboption(X25519, A_ID)])
    b = EnoEndpoint(teps(X25519))
    handshake(a, b)
    ra, rb = results(a, b)
    assert (ra.a_data, ra.b_data) == (rb.a_data, rb.b_data) == (A_ID, b"")


def no_common(option: bytes | None) -> bytes | None:
    return bytes([69, 4, 0x01, X448])


@pytest.mark.parametrize(
    ("a_offers", "b_offers", "tampering", "a_reason", "b_reason"),
    [
        ((X25519,), (X25519,), {"syn": lambda o: None}, "no-eno-synack", "no-eno-syn"),
        ((X25519,), (X25519,), {"synack": lambda o: None}, "no-eno-synack", "no-eno-ack"),
        ((X25519,), (X25519,), {"ack": lambda o: None}, None, "no-eno-ack"),
        ((X25519,), (P256,), {}, "no-eno-synack", "no-common-tep"),
        ((X25519,), (X25519,), {"synack": no_common}, "no-common-tep", "no-eno-ack"),
        ((X25519,), (X25519,), {"syn": lambda o: MALFORMED}, "no-eno-synack",
         "malformed-option"),
        ((X25519,), (X25519,), {"synack": lambda o: MALFORMED}, "malformed-option",
         "no-eno-ack"),
        ((X25519,), (X25519,), {"ack": lambda o: MALFORMED}, None, "malformed-option"),
    ],
)
def test_every_path_failure_falls_back_with_its_reason(
    a_offers: tuple[int, ...],
    b_offers: tuple[int, ...],
    tampering: dict[str, Tamper],
    a_reason: str | None,
    b_reason: str | None,
) -> None:
    a, b = EnoEndpoint(teps(*a_offers)), EnoEndpoint(teps(*b_offers))
    handshake(a, b, **tampering)
    assert a.fallback_reason == a_reason and b.fallback_reason == b_reason
    for endpoint, reason in ((a, a_reason), (b, b_reason)):
        expected = EnoState.NEGOTIATED if reason is None else EnoState.FALLBACK
        assert endpoint.state is expected
        assert (endpoint.result is None) is (reason is not None)


def test_b_sends_no_synack_option_after_falling_back() -> None:
    b = EnoEndpoint(teps(X25519))
    b.on_syn(bytes([69, 3, P256]))
    assert b.synack_option() is None
    assert b.fallback_reason == "no-common-tep"


def test_any_valid_eno_option_on_the_first_ack_confirms() -> None:
    a, b = EnoEndpoint(teps(X25519)), EnoEndpoint(teps(X25519))
    handshake(a, b, ack=lambda o: bytes([69, 3, P256]))
    assert b.state is EnoState.NEGOTIATED


def test_experimental_kind_syn_is_negotiated_and_its_bytes_enter_the_transcript() -> None:
    syn = bytes([253, 6, 0x45, 0x4E, P256, X25519])
    b = EnoEndpoint(teps(X25519))
    b.on_syn(syn)
    synack = b.synack_option()
    assert synack == bytes([69, 4, 0x01, X25519])
    b.on_ack(bytes([253, 4, 0x45, 0x4E]))
    assert b.result is not None and b.result.tep == X25519
    assert b.result.transcript == syn + synack


def test_experimental_kind_synack_is_accepted_by_a() -> None:
    a = EnoEndpoint(teps(X25519))
    syn = a.syn_option()
    synack = bytes([253, 6, 0x45, 0x4E, 0x01, X25519])
    a.on_synack(synack)
    assert a.result is not None and a.result.tep == X25519
    assert a.result.transcript == syn + synack


def test_a_falls_back_when_the_synack_does_not_say_b() -> None:
    a = EnoEndpoint(teps(X25519))
    a.syn_option()
    a.on_synack(bytes([69, 3, X25519]))  # no global suboption: b=0, like A's own
    assert a.state is EnoState.FALLBACK and a.fallback_reason == "role-conflict"


def test_b_falls_back_when_a_syn_also_says_b() -> None:
    b = EnoEndpoint(teps(X25519))
    b.on_syn(bytes([69, 4, 0x01, X25519]))
    assert b.synack_option() is None and b.fallback_reason == "role-conflict"


def test_a_resumption_offer_travels_behind_a_length_byte_with_its_nine_bytes() -> None:
    a = EnoEndpoint([TepSuboption(X25519, A_ID), TepSuboption(P256)])
    b = EnoEndpoint([TepSuboption(X25519, B_ID)])
    syn, _ = handshake(a, b)
    assert syn == bytes([69, 14, 0x88, 0x80 | X25519]) + A_ID + bytes([P256])
    ra, rb = results(a, b)
    assert ra.a_data == rb.a_data == A_ID


@pytest.mark.parametrize(
    ("syn", "reason"),
    [
        (bytes([69, 5, P256, X25519, 0x00]), None),  # the reference's place: after the TEPs
        (bytes([69, 5, P256, 0x02, X25519]), None),  # between TEPs, application-aware 1
        (bytes([69, 5, P256, X25519, 0x01]), "role-conflict"),  # b=1 read after the TEPs
        (bytes([69, 6, P256, X25519, 0x00, 0x01]), None),  # a second one is ignored
    ],
)
def test_b_reads_a_global_suboption_wherever_a_puts_it(syn: bytes, reason: str | None) -> None:
    b = EnoEndpoint(teps(X25519))
    b.on_syn(syn)
    synack = b.synack_option()
    assert b.fallback_reason == reason
    assert (synack is None) is (reason is not None)


def test_a_reads_the_b_bit_after_the_tep_of_the_synack() -> None:
    a = EnoEndpoint(teps(X25519))
    syn = a.syn_option()
    synack = bytes([69, 4, X25519, 0x01])
    a.on_synack(synack)
    assert a.result is not None and a.result.tep == X25519
    assert a.result.transcript == syn + synack


def test_want_b_puts_a_global_suboption_with_b_first() -> None:
    a = EnoEndpoint(teps(X25519, P256), want_b=True)
    option = parse_eno_option(a.syn_option())
    assert option.suboptions == (GlobalSuboption(b=True), *teps(X25519, P256))


def simultaneous(one: EnoEndpoint, two: EnoEndpoint) -> None:
    syn_one, syn_two = one.syn_option(), two.syn_option()
    one.on_syn(syn_two)
    two.on_syn(syn_one)


@pytest.mark.parametrize(("b_one", "b_two"), [(False, True), (True, False)])
def test_simultaneous_open_makes_the_b_bit_side_host_b(b_one: bool, b_two: bool) -> None:
    one = EnoEndpoint([TepSuboption(X25519, A_ID), TepSuboption(P256)], want_b=b_one)
    two = EnoEndpoint([TepSuboption(P256), TepSuboption(X25519, B_ID)], want_b=b_two)
    simultaneous(one, two)
    b_side, a_side = (one, two) if b_one else (two, one)
    assert (a_side.role, b_side.role) == (Role.A, Role.B)
    with pytest.raises(UsageError):
        a_side.synack_option()
    synack = b_side.synack_option()
    assert synack is not None
    a_side.on_synack(synack)
    b_side.on_ack(a_side.ack_option())
    ra, rb = results(a_side, b_side)
    assert (ra.role, rb.role) == (Role.A, Role.B)
    assert ra.tep == rb.tep == b_side.offers[0].tep
    assert ra.transcript == rb.transcript
    assert ra.transcript.endswith(synack)
    assert (ra.a_data, ra.b_data) == (rb.a_data, rb.b_data)


@pytest.mark.parametrize("want_b", [False, True])
def test_simultaneous_open_with_equal_b_bits_is_a_role_conflict(want_b: bool) -> None:
    one = EnoEndpoint(teps(X25519), want_b=want_b)
    two = EnoEndpoint(teps(X25519), want_b=want_b)
    simultaneous(one, two)
    assert one.fallback_reason == two.fallback_reason == "role-conflict"
    assert one.state is two.state is EnoState.FALLBACK
    assert one.synack_option() is None and two.synack_option() is None


def test_simultaneous_open_without_eno_on_the_peer_syn_falls_back() -> None:
    one = EnoEndpoint(teps(X25519), want_b=True)
    one.syn_option()
    one.on_syn(None)
    assert one.fallback_reason == "no-eno-syn"


def test_global_suboption_b_in_a_passive_synack_does_not_break_a() -> None:
    a, b = EnoEndpoint(teps(X25519)), EnoEndpoint(teps(X25519), want_b=True)
    _, synack = handshake(a, b)
    assert synack == bytes([69, 4, 0x01, X25519])
    ra, rb = results(a, b)
    assert ra.transcript == rb.transcript


def test_transcript_is_the_two_options_concatenated() -> None:
    syn = encode_eno_option(EnoOption(tuple(teps(X25519, P256))))
    synack = bytes([69, 3, P256])
    assert negotiation_transcript(syn, synack) == bytes([69, 4, X25519, P256, 69, 3, P256])


def test_retransmitted_synack_is_the_same_bytes() -> None:
    b = EnoEndpoint(teps(X25519))
    b.on_syn(bytes([69, 3, X25519]))
    assert b.synack_option() == b.synack_option() == bytes([69, 4, 0x01, X25519])


def passive_after_syn() -> EnoEndpoint:
    b = EnoEndpoint(teps(X25519))
    b.on_syn(bytes([69, 3, X25519]))
    return b


def active_after_syn() -> EnoEndpoint:
    a = EnoEndpoint(teps(X25519))
    a.syn_option()
    return a


def active_fallen_back() -> EnoEndpoint:
    a = active_after_syn()
    a.on_synack(None)
    return a


@pytest.mark.parametrize(
    ("make", "misuse"),
    [
        (lambda: EnoEndpoint(teps(X25519)), lambda e: e.synack_option()),
        (lambda: EnoEndpoint(teps(X25519)), lambda e: e.ack_option()),
        (lambda: EnoEndpoint(teps(X25519)), lambda e: e.on_synack(None)),
        (lambda: EnoEndpoint(teps(X25519)), lambda e: e.on_ack(None)),
        (active_after_syn, lambda e: e.syn_option()),
        (active_after_syn, lambda e: e.on_ack(bytes([69, 2]))),
        (active_after_syn, lambda e: e.ack_option()),
        (active_after_syn, lambda e: e.synack_option()),
        (active_fallen_back, lambda e: e.ack_option()),
        (active_fallen_back, lambda e: e.synack_option()),
        (active_fallen_back, lambda e: e.on_syn(bytes([69, 3, X25519]))),
        (passive_after_syn, lambda e: e.on_syn(bytes([69, 3, X25519]))),
        (passive_after_syn, lambda e: e.syn_option()),
        (passive_after_syn, lambda e: e.on_synack(bytes([69, 3, X25519]))),
        (passive_after_syn, lambda e: e.on_ack(bytes([69, 2]))),  # before its SYN-ACK
        (passive_after_syn, lambda e: e.ack_option()),
    ],
)
def test_misuse_raises_usage_error(
    make: Callable[[], EnoEndpoint], misuse: Callable[[EnoEndpoint], object]
) -> None:
    endpoint = make()
    with pytest.raises(UsageError):
        misuse(endpoint)


@pytest.mark.parametrize(
    "offers",
    [[], [TepSuboption(0x10)], [TepSuboption(X25519, "id")]],  # type: ignore[arg-type]
)
def test_bad_offers_are_refused_at_construction(offers: list[TepSuboption]) -> None:
    with pytest.raises(UsageError):
        EnoEndpoint(offers)


def test_a_chooser_answering_with_a_tep_a_did_not_offer_is_misuse() -> None:
    b = EnoEndpoint(teps(X25519), chooser=lambda offered: TepSuboption(X448))
    b.on_syn(bytes([69, 3, X25519]))
    with pytest.raises(UsageError):
        b.synack_option()


def test_state_is_read_only() -> None:
    a = EnoEndpoint(teps(X25519))
    with pytest.raises(AttributeError):
        a.state = EnoState.NEGOTIATED  # type: ignore[misc]
