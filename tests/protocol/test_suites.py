"""Key-agreement suites: both sides derive ES; bad public keys are refused; RSA key reuse."""

from __future__ import annotations

import pytest

from tcpcrypt.errors import PeerError, UsageError
from tcpcrypt.randomness import seeded_random
from tcpcrypt.suites import SUITE_NAMES, RsaExp3Suite, RsaKeyHolder, get_suite, suite_name_for_tep


@pytest.fixture(scope="module")
def rsa_keys() -> RsaKeyHolder:
    holder = RsaKeyHolder(lifetime_s=100.0)
    holder.key_for(0.0)
    return holder


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_a_and_b_derive_the_same_secret(name: str, rsa_keys: RsaKeyHolder) -> None:
    suite = get_suite(name, rsa_keys=rsa_keys)
    state, pk_a = suite.a_start(seeded_random(1))
    pk_b, es_b = suite.b_respond(pk_a, seeded_random(2))
    assert (len(pk_a), len(pk_b)) == (suite.pk_a_length, suite.pk_b_length)
    assert suite.a_finish(state, pk_b) == es_b
    assert suite_name_for_tep(suite.tep) == name


@pytest.mark.parametrize("name", ["x25519", "x448", "p256", "p521"])
def test_ecdhe_is_replayable_from_the_seed(name: str) -> None:
    suite = get_suite(name)
    assert suite.a_start(seeded_random(7))[1] == suite.a_start(seeded_random(7))[1]
    assert suite.a_start(seeded_random(7))[1] != suite.a_start(seeded_random(8))[1]


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_public_keys_of_the_wrong_length_are_refused(name: str, rsa_keys: RsaKeyHolder) -> None:
    suite = get_suite(name, rsa_keys=rsa_keys)
    with pytest.raises(PeerError, match="bad-public-key"):
        suite.b_respond(b"\x04" * (suite.pk_a_length - 1), seeded_random(1))


@pytest.mark.parametrize("name", ["x25519", "x448", "p256", "p521"])
def test_invalid_points_are_refused(name: str) -> None:
    suite = get_suite(name)
    bogus = b"\x00" * suite.pk_a_length if name.startswith("x") else b"\x04" + b"\x01" * (
        suite.pk_a_length - 1
    )
    with pytest.raises(PeerError, match="bad-public-key"):
        suite.b_respond(bogus, seeded_random(1))


def test_rsa_modulus_must_be_odd_and_2048_bits(rsa_keys: RsaKeyHolder) -> None:
    suite = RsaExp3Suite(rsa_keys)
    with pytest.raises(PeerError):
        suite.b_respond(b"\x00" * 256, seeded_random(1))
    with pytest.raises(PeerError):
        suite.b_respond(b"\xff" * 255 + b"\x02", seeded_random(1))


def test_rsa_garbage_ciphertext_is_refused(rsa_keys: RsaKeyHolder) -> None:
    suite = RsaExp3Suite(rsa_keys)
    state, _ = suite.a_start(seeded_random(1))
    with pytest.raises(PeerError):
        suite.a_finish(state, b"\x01" * 256)


def test_rsa_key_is_reused_within_its_lifetime_and_renewed_after(rsa_keys: RsaKeyHolder) -> None:
    first = rsa_keys.key_for(10.0)
    assert rsa_keys.key_for(99.0) is first
    assert rsa_keys.key_for(100.0) is not first
    assert rsa_keys.generated == 2
    assert first.public_key().public_numbers().e == 3


def test_unknown_suite_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="known"):
        get_suite("rsa-1024")
