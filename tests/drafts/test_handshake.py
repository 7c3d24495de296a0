"""Init1/Init2, the length-prefixed ECDHE keys and the drafts' key schedule.

Lengths are those seen from the reference daemon (Init1 of 110 bytes offering two AEADs,
Init2 of 108 bytes, with P-256); the key schedule is checked against HKDF and HMAC from
`cryptography`, computed here step by step as the draft describes it."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from tcpcrypt.aead import aead_by_id
from tcpcrypt.drafts import eno03, handshake
from tcpcrypt.errors import DecodeError, PeerError
from tcpcrypt.randomness import seeded_random

P256 = handshake.draft_suite(0x21)


def _point() -> bytes:
    _, point = P256.a_start(seeded_random(1))
    return point


def test_p256_key_is_length_67_then_the_uncompressed_point() -> None:
    key = handshake.encode_key(_point())
    assert len(key) == 67 and key[:3] == bytes.fromhex("004304")
    assert handshake.decode_key(key, P256) == _point()


def test_key_whose_length_prefix_disagrees_is_refused() -> None:
    key = bytearray(handshake.encode_key(_point()))
    key[1] = 0x42
    with pytest.raises(DecodeError):
        handshake.decode_key(bytes(key), P256)


def test_init1_offering_two_aeads_has_the_references_length() -> None:
    message = handshake.encode_init1((0x01, 0x02), bytes(32), _point())
    assert len(message) == 110
    assert message[:9] == bytes.fromhex("15101a0e" "0000006e" "02")
    parsed = handshake.parse_init1(message, P256)
    assert parsed.aeads == (0x01, 0x02) and parsed.nonce == bytes(32)


def test_init2_has_the_references_length() -> None:
    message = handshake.encode_init2(0x01, bytes(range(32)), _point())
    assert len(message) == 108 and message[:9] == bytes.fromhex("097105e0" "0000006c" "01")
    assert handshake.parse_init2(message, P256).nonce == bytes(range(32))


def test_init_with_another_magic_or_a_wrong_length_is_refused() -> None:
    message = handshake.encode_init1((0x01,), bytes(32), _point())
    with pytest.raises(DecodeError, match="bad-magic"):
        handshake.parse_init2(message, P256)
    with pytest.raises(DecodeError, match="bad-length"):
        handshake.parse_init1(message + b"\0", P256)


def test_only_the_drafts_suites_and_aeads_are_taken() -> None:
    with pytest.raises(PeerError):
        handshake.draft_suite(0x25)
    with pytest.raises(PeerError):
        handshake.draft_aead(0x10)  # ChaCha20-Poly1305 needs 12-byte nonces


def _expand(key: bytes, constant: int) -> bytes:
    return HKDFExpand(hashes.SHA256(), 32, bytes((constant,))).derive(key)


def test_key_schedule_follows_the_draft_step_by_step() -> None:
    transcript = eno03.transcript(eno03.encode_option([0x21, 0x22]),
                                  eno03.encode_option([0x21]))
    init1, init2, shared, nonce_a = b"init1", b"init2", bytes(range(32)), bytes(32)
    aead = aead_by_id(0x01)
    keys = handshake.derive_keys(transcript=transcript, init1=init1, init2=init2,
                                 shared=shared, nonce_a=nonce_a, tep=0x21, aead=aead)
    mac = hmac.HMAC(nonce_a, hashes.SHA256())
    mac.update(transcript + init1 + init2 + shared)
    ss = mac.finalize()
    mk = _expand(ss, 3)
    assert keys.session_id == b"\x21" + _expand(ss, 2)
    assert keys.key_a == _expand(mk, 4)[:16] and keys.key_b == _expand(mk, 5)[:16]
    assert keys.next_secret == _expand(ss, 1)
