"""Batch proofs: every member of a signed batch verifies; a proof for another session ID, a
bad signature, an untrusted key and a batch without our ID are each refused with their own
error; the codec is strict."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt.auth.batch_proof import check_proof, encode_proof, parse_proof, sign_batch
from tcpcrypt.auth.errors import (
    AuthConfigError,
    BadSignature,
    MessageMalformed,
    NotCovered,
    SessionIdMismatch,
)
from tcpcrypt.auth.signing import SigningKey


def session_ids(count: int, tag: int = 0x23) -> list[bytes]:
    return [bytes([tag]) + index.to_bytes(32, "big") for index in range(count)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 33])
def test_every_session_id_of_a_batch_verifies(signing_key: SigningKey, size: int) -> None:
    ids = session_ids(size)
    proofs = sign_batch(signing_key, ids)
    assert len({proof.signature for proof in proofs}) == 1  # one signature for the batch
    for sid, proof in zip(ids, proofs, strict=True):
        check_proof(proof, signing_key.public_key(), sid)


def test_a_proof_replayed_onto_another_connection_is_a_session_mismatch(
        signing_key: SigningKey) -> None:
    first, second = sign_batch(signing_key, session_ids(2))
    with pytest.raises(SessionIdMismatch):
        check_proof(first, signing_key.public_key(), second.session_id)


def test_a_batch_without_our_session_id_is_not_covered(signing_key: SigningKey) -> None:
    ours = session_ids(1, tag=0x24)[0]
    proof = sign_batch(signing_key, session_ids(4))[2]
    claimed = dataclasses.replace(proof, session_id=ours)  # vouches for us, signs others
    with pytest.raises(NotCovered):
        check_proof(claimed, signing_key.public_key(), ours)


def test_a_tampered_root_or_signature_is_a_bad_signature(signing_key: SigningKey) -> None:
    proof = sign_batch(signing_key, session_ids(3))[1]
    flipped = bytes([proof.signature[0] ^ 1]) + proof.signature[1:]
    for bad in (dataclasses.replace(proof, signature=flipped),
                dataclasses.replace(proof, root=bytes(32)),
                dataclasses.replace(proof, tree_size=4)):
        with pytest.raises(BadSignature):
            check_proof(bad, signing_key.public_key(), proof.session_id)


def test_a_signature_by_an_untrusted_key_is_a_bad_signature(rsa_key: SigningKey,
                                                            ed25519_key: SigningKey) -> None:
    other = SigningKey.generate("ed25519")
    proof = sign_batch(other, session_ids(2))[0]
    for trusted in (ed25519_key, rsa_key):  # same scheme, other key; other scheme
        with pytest.raises(BadSignature):
            check_proof(proof, trusted.public_key(), proof.session_id)


def test_codec_round_trips_and_refuses_every_truncation(rsa_key: SigningKey) -> None:
    proof = sign_batch(rsa_key, session_ids(5))[3]
    body = encode_proof(proof)
    assert parse_proof(body) == proof
    for cut in range(len(body)):
        with pytest.raises(MessageMalformed):
            parse_proof(body[:cut])
    with pytest.raises(MessageMalformed, match="trailing"):
        parse_proof(body + b"\x00")


@settings(max_examples=200)
@given(st.binary(max_size=400))
def test_garbage_bodies_are_malformed_or_parse_strictly(body: bytes) -> None:
    try:
        parsed = parse_proof(body)
    except MessageMalformed:
        return
    assert encode_proof(parsed) == body


def test_unknown_schemes_and_short_rsa_keys_are_refused() -> None:
    with pytest.raises(AuthConfigError):
        SigningKey.generate("dsa")
    from cryptography.hazmat.primitives.asymmetric import rsa

    with pytest.raises(AuthConfigError, match="2048"):
        SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=1024))
