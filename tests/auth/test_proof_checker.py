"""`ProofChecker`: many proofs under one trusted key, a batch's signature verified once and
remembered only after it verified; every proof's own session ID and path are still checked,
and a proof the plain `check_proof` refuses is refused with the same error."""

from __future__ import annotations

import dataclasses

import pytest

from tcpcrypt.auth.batch_proof import ProofChecker, sign_batch
from tcpcrypt.auth.errors import BadSignature, NotCovered, SessionIdMismatch
from tcpcrypt.auth.signing import SigningKey


def session_ids(count: int, tag: int = 0x31) -> list[bytes]:
    return [bytes([tag]) + index.to_bytes(32, "big") for index in range(count)]


def test_a_batch_costs_one_verification_and_every_member_passes(
        signing_key: SigningKey) -> None:
    checker = ProofChecker(signing_key.public_key())
    ids = session_ids(9)
    for sid, proof in zip(ids, sign_batch(signing_key, ids), strict=True):
        checker.check(proof, sid)
    assert checker.verifications == 1
    other = session_ids(3, tag=0x32)
    for sid, proof in zip(other, sign_batch(signing_key, other), strict=True):
        checker.check(proof, sid)
    assert checker.verifications == 2


def test_a_remembered_batch_still_refuses_another_id_or_a_bad_path(
        signing_key: SigningKey) -> None:
    checker = ProofChecker(signing_key.public_key())
    first, second = sign_batch(signing_key, session_ids(2))
    checker.check(first, first.session_id)
    with pytest.raises(SessionIdMismatch):
        checker.check(first, second.session_id)  # replayed onto another connection
    outsider = session_ids(1, tag=0x33)[0]
    forged = dataclasses.replace(second, session_id=outsider)
    with pytest.raises(NotCovered):  # the remembered signature, a path that is not ours
        checker.check(forged, outsider)


def test_a_tampered_signature_is_verified_and_refused_and_not_remembered(
        signing_key: SigningKey) -> None:
    checker = ProofChecker(signing_key.public_key())
    proof = sign_batch(signing_key, session_ids(2))[0]
    bad = dataclasses.replace(proof, signature=bytes(len(proof.signature)))
    for _ in range(2):
        with pytest.raises(BadSignature):
            checker.check(bad, bad.session_id)
    assert checker.verifications == 2


def test_an_untrusted_key_is_refused_even_for_a_batch_another_checker_knows(
        rsa_key: SigningKey, ed25519_key: SigningKey) -> None:
    other = SigningKey.generate("ed25519")
    proof = sign_batch(other, session_ids(2))[0]
    ProofChecker(other.public_key()).check(proof, proof.session_id)
    for trusted in (ed25519_key, rsa_key):  # same scheme, other key; other scheme
        with pytest.raises(BadSignature):
            ProofChecker(trusted.public_key()).check(proof, proof.session_id)


def test_the_oldest_signature_is_forgotten_beyond_the_limit(signing_key: SigningKey) -> None:
    checker = ProofChecker(signing_key.public_key(), remember=1)
    first = sign_batch(signing_key, session_ids(1, tag=0x34))[0]
    second = sign_batch(signing_key, session_ids(1, tag=0x35))[0]
    for proof in (first, second, first):
        checker.check(proof, proof.session_id)
    assert checker.verifications == 3
