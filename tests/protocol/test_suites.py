"""Key-agreement suites: both sides derive ES (and, through the key schedule, the same session
ID and keys); bad public keys are refused; scalars stay in range; RSA key reuse and limits."""

from __future__ import annotations

import contextlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt.constants import NONCE_LENGTH
from tcpcrypt.errors import PeerError, UsageError
from tcpcrypt.init_messages import encode_init1, encode_init2, try_parse_init1, try_parse_init2
from tcpcrypt.key_schedule import SessionSecret
from tcpcrypt.randomness import seeded_random
from tcpcrypt.suites import (
    P256_ORDER,
    P521_ORDER,
    SUITE_NAMES,
    KeyAgreementSuite,
    NistCurveSuite,
    RsaExp3Suite,
    RsaKeyHolder,
    get_suite,
    suite_for_tep,
    suite_name_for_tep,
)

ECDHE_NAMES = ("x25519", "x448", "p256", "p521")
# name -> (TEP, PK length, ES length)
EXPECTED = {
    "x25519": (0x23, 32, 32),
    "x448": (0x24, 56, 56),
    "p256": (0x21, 65, 32),
    "p521": (0x22, 133, 66),
    "rsa-exp3-2048": (0x20, 256, 32),
}


@pytest.fixture(scope="module")
def rsa_keys() -> RsaKeyHolder:
    holder = RsaKeyHolder(lifetime_s=float("inf"))
    holder.key_for(0.0)
    return holder


def suite_named(name: str, rsa_keys: RsaKeyHolder) -> KeyAgreementSuite:
    return get_suite(name, rsa_keys=rsa_keys)


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_a_and_b_derive_the_same_secret(name: str, rsa_keys: RsaKeyHolder) -> None:
    suite = suite_named(name, rsa_keys)
    state, pk_a = suite.a_start(seeded_random(1))
    pk_b, es_b = suite.b_respond(pk_a, seeded_random(2))
    assert suite.a_finish(state, pk_b) == es_b
    tep, pk_length, es_length = EXPECTED[name]
    assert (suite.tep, suite.pk_a_length, suite.pk_b_length) == (tep, pk_length, pk_length)
    assert (len(pk_a), len(pk_b), len(es_b)) == (pk_length, pk_length, es_length)


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_through_init_messages_and_key_schedule_both_sides_get_the_same_keys(
    name: str, rsa_keys: RsaKeyHolder
) -> None:
    suite = suite_named(name, rsa_keys)
    random_a, random_b = seeded_random(10), seeded_random(20)
    transcript = bytes.fromhex("450323") * 2
    state, pk_a = suite.a_start(random_a)
    init1 = encode_init1([1, 0x10], random_a(NONCE_LENGTH), pk_a)
    parsed1 = try_parse_init1(init1.raw, suite.pk_a_length)
    assert parsed1 is not None
    pk_b, es_b = suite.b_respond(parsed1[0].public_key, random_b)
    init2 = encode_init2(1, random_b(NONCE_LENGTH), pk_b, trailer=b"ignored")
    parsed2 = try_parse_init2(init2.raw, suite.pk_b_length)
    assert parsed2 is not None
    es_a = suite.a_finish(state, parsed2[0].public_key)
    secret_a = SessionSecret.from_key_exchange(transcript, init1.raw, parsed2[0].raw, es_a,
                                               init1.nonce)
    secret_b = SessionSecret.from_key_exchange(transcript, parsed1[0].raw, init2.raw, es_b,
                                               parsed1[0].nonce)
    assert secret_a == secret_b
    assert secret_a.session_id(suite.tep) == secret_b.session_id(suite.tep)
    chain_a, chain_b = secret_a.key_chain(16), secret_b.key_chain(16)
    assert (chain_a.key_ab(0), chain_a.key_ba(3)) == (chain_b.key_ab(0), chain_b.key_ba(3))


@pytest.mark.parametrize("name", ECDHE_NAMES)
def test_ecdhe_keys_are_replayable_from_the_seed(name: str) -> None:
    suite = get_suite(name)
    assert suite.a_start(seeded_random(7))[1] == suite.a_start(seeded_random(7))[1]
    assert suite.a_start(seeded_random(7))[1] != suite.a_start(seeded_random(8))[1]
    assert suite.b_respond(suite.a_start(seeded_random(7))[1], seeded_random(9)) == (
        suite.b_respond(suite.a_start(seeded_random(7))[1], seeded_random(9))
    )


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_public_keys_of_the_wrong_length_are_refused(name: str, rsa_keys: RsaKeyHolder) -> None:
    suite = suite_named(name, rsa_keys)
    state, pk_a = suite.a_start(seeded_random(1))
    for wrong in (b"", pk_a[:-1], pk_a + b"\x00"):
        with pytest.raises(PeerError) as caught:
            suite.b_respond(wrong, seeded_random(1))
        assert caught.value.reason == "bad-public-key"
        with pytest.raises(PeerError) as caught:
            suite.a_finish(state, wrong)
        assert caught.value.reason == "bad-public-key"


def _le(value: int, length: int) -> bytes:
    return value.to_bytes(length, "little")


P25519 = 2**255 - 19
P448 = 2**448 - 2**224 - 1
LOW_ORDER_POINTS = {
    "x25519": [
        _le(0, 32), _le(1, 32), _le(P25519 - 1, 32), _le(P25519, 32), _le(P25519 + 1, 32),
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    ],
    "x448": [_le(0, 56), _le(1, 56), _le(P448 - 1, 56), _le(P448, 56), _le(P448 + 1, 56)],
}


@pytest.mark.parametrize(
    ("name", "point"),
    [(name, point) for name, points in LOW_ORDER_POINTS.items() for point in points],
)
def test_montgomery_low_order_points_are_refused(name: str, point: bytes) -> None:
    with pytest.raises(PeerError) as caught:
        get_suite(name).b_respond(point, seeded_random(1))
    assert caught.value.reason == "bad-public-key"


@pytest.mark.parametrize("name", ["p256", "p521"])
def test_points_off_the_curve_or_not_uncompressed_are_refused(name: str) -> None:
    suite = get_suite(name)
    _, good = suite.a_start(seeded_random(3))
    off_curve = good[:-1] + bytes((good[-1] ^ 1,))
    compressed_marker = b"\x02" + good[1:]
    all_zero = b"\x04" + bytes(len(good) - 1)
    for bogus in (off_curve, compressed_marker, all_zero):
        with pytest.raises(PeerError) as caught:
            suite.b_respond(bogus, seeded_random(1))
        assert caught.value.reason == "bad-public-key"


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(ECDHE_NAMES), st.data())
def test_random_public_keys_raise_only_peer_errors(name: str, data: st.DataObject) -> None:
    suite = get_suite(name)
    key = data.draw(st.binary(min_size=suite.pk_a_length, max_size=suite.pk_a_length))
    with contextlib.suppress(PeerError):
        suite.b_respond(key, seeded_random(1))


@pytest.mark.parametrize(
    ("curve", "order"), [(ec.SECP256R1(), P256_ORDER), (ec.SECP521R1(), P521_ORDER)]
)
def test_the_curve_orders_are_right(curve: ec.EllipticCurve, order: int) -> None:
    generator = ec.derive_private_key(1, curve).public_key().public_numbers()
    minus_generator = ec.derive_private_key(order - 1, curve).public_key().public_numbers()
    assert (minus_generator.x, minus_generator.y) == (generator.x, curve_p(curve) - generator.y)


def curve_p(curve: ec.EllipticCurve) -> int:
    return {"secp256r1": 2**256 - 2**224 + 2**192 + 2**96 - 1, "secp521r1": 2**521 - 1}[
        curve.name
    ]


@pytest.mark.parametrize("name", ["p256", "p521"])
@pytest.mark.parametrize("fill", [0x00, 0xFF, 0x5A])
def test_nist_scalars_stay_in_range_for_extreme_random_bytes(name: str, fill: int) -> None:
    suite = get_suite(name)
    assert isinstance(suite, NistCurveSuite)
    scalar = suite.scalar_from(lambda length: bytes((fill,)) * length)
    order = P256_ORDER if name == "p256" else P521_ORDER
    assert 1 <= scalar <= order - 1
    suite.a_start(lambda length: bytes((fill,)) * length)  # cryptography accepts it


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_a_finish_with_a_foreign_state_is_a_usage_error(name: str, rsa_keys: RsaKeyHolder) -> None:
    suite = suite_named(name, rsa_keys)
    other = get_suite("x448" if name == "x25519" else "x25519")
    state, _ = other.a_start(seeded_random(1))
    with pytest.raises(UsageError):
        suite.a_finish(state, b"\x00" * suite.pk_b_length)


def test_p256_state_is_not_accepted_by_p521() -> None:
    state, _ = get_suite("p256").a_start(seeded_random(1))
    with pytest.raises(UsageError):
        get_suite("p521").a_finish(state, b"\x04" * 133)


def test_rsa_pk_a_is_the_modulus_of_an_exponent_3_key(rsa_keys: RsaKeyHolder) -> None:
    suite = RsaExp3Suite(rsa_keys)
    _, pk_a = suite.a_start(seeded_random(1))
    numbers = rsa_keys.key_for(0.0).public_key().public_numbers()
    assert numbers.e == 3
    assert int.from_bytes(pk_a, "big") == numbers.n
    assert numbers.n.bit_length() == 2048


def test_rsa_es_is_b_s_injected_secret(rsa_keys: RsaKeyHolder) -> None:
    suite = RsaExp3Suite(rsa_keys)
    state, pk_a = suite.a_start(seeded_random(1))
    pk_b, es = suite.b_respond(pk_a, seeded_random(5))
    assert es == seeded_random(5)(32)
    assert suite.a_finish(state, pk_b) == es


@pytest.mark.parametrize(
    "modulus",
    [b"\x00" * 256, b"\xff" * 255 + b"\x02", b"\x7f" + b"\xff" * 255],
    ids=["zero", "even", "2047-bit"],
)
def test_rsa_moduli_that_are_not_odd_2048_bit_numbers_are_refused(modulus: bytes) -> None:
    with pytest.raises(PeerError) as caught:
        RsaExp3Suite(RsaKeyHolder()).b_respond(modulus, seeded_random(1))
    assert caught.value.reason == "bad-public-key"


def test_rsa_ciphertext_that_does_not_decrypt_is_refused(rsa_keys: RsaKeyHolder) -> None:
    suite = RsaExp3Suite(rsa_keys)
    state, pk_a = suite.a_start(seeded_random(1))
    pk_b, _ = suite.b_respond(pk_a, seeded_random(2))
    for bogus in (b"\x01" * 256, pk_b[:-1] + bytes((pk_b[-1] ^ 1,))):
        with pytest.raises(PeerError) as caught:
            suite.a_finish(state, bogus)
        assert caught.value.reason == "bad-public-key"


def test_rsa_key_is_reused_within_its_lifetime_and_renewed_after() -> None:
    holder = RsaKeyHolder(lifetime_s=100.0)
    first = holder.key_for(10.0)
    assert holder.key_for(109.0) is first
    second = holder.key_for(110.0)
    assert second is not first
    assert holder.generated == 2
    assert second.public_key().public_numbers().e == 3


def test_rsa_key_lifetime_must_be_positive() -> None:
    with pytest.raises(UsageError):
        RsaKeyHolder(lifetime_s=0.0)


def test_suites_are_found_by_name_and_tep(rsa_keys: RsaKeyHolder) -> None:
    for name, (tep, _, _) in EXPECTED.items():
        assert suite_name_for_tep(tep) == name
        assert suite_for_tep(tep, rsa_keys=rsa_keys).name == name
    assert set(SUITE_NAMES) == set(EXPECTED)
    assert suite_name_for_tep(0x30) is None  # unassigned; TCP-Use-TLS drafts used it


def test_unknown_suite_name_is_a_usage_error_and_unknown_tep_a_peer_error() -> None:
    with pytest.raises(UsageError, match="x25519"):
        get_suite("rsa-1024")
    with pytest.raises(PeerError) as caught:
        suite_for_tep(0x25)
    assert caught.value.reason == "unknown-tep"
