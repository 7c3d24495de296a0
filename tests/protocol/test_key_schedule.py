"""Key schedule: Extract/CPRF against RFC 5869 and `cryptography`'s HKDF, the ss chain,
session IDs, resumption identifiers, master keys and traffic keys, and what changes ss[0]."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt.constants import (
    CONST_KEY_A,
    CONST_KEY_B,
    CONST_NEXTK,
    CONST_REKEY,
    CONST_RESUME,
    CONST_SESSID,
)
from tcpcrypt.errors import UsageError
from tcpcrypt.init_messages import encode_init1, encode_init2
from tcpcrypt.key_schedule import KeyChain, SessionSecret, cprf, extract


def hkdf_expand(key: bytes, constant: int, length: int) -> bytes:
    """HKDF-Expand from `cryptography`, to check ours against."""
    return HKDFExpand(hashes.SHA256(), length, bytes((constant,))).derive(key)


def test_extract_matches_rfc5869_test_case_1() -> None:
    prk = extract(bytes(range(13)), b"\x0b" * 22)
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"


@settings(max_examples=60)
@given(st.binary(min_size=1, max_size=64), st.integers(0, 255), st.integers(1, 200))
def test_cprf_is_hkdf_expand_with_one_info_byte(key: bytes, constant: int, length: int) -> None:
    assert cprf(key, constant, length) == hkdf_expand(key, constant, length)


def test_cprf_refuses_impossible_lengths_and_constants() -> None:
    for length in (0, 255 * 32 + 1):
        with pytest.raises(UsageError):
            cprf(b"k" * 32, CONST_SESSID, length)
    with pytest.raises(UsageError):
        cprf(b"k" * 32, 256, 32)


def test_ss0_is_extract_keyed_by_n_a_over_transcript_init1_init2_es() -> None:
    parts = (b"transcript", b"init1", b"init2", b"E" * 32)
    nonce = b"N" * 32
    expected = hmac.digest(nonce, b"".join(parts), hashlib.sha256)
    assert SessionSecret.from_key_exchange(*parts, nonce).value == expected


def test_every_byte_of_the_init_messages_and_transcript_enters_ss0() -> None:
    init1 = encode_init1([1, 2], b"A" * 32, b"a" * 32, trailer=b"t1").raw
    init2 = encode_init2(1, b"B" * 32, b"b" * 32, trailer=b"t2").raw
    transcript = bytes.fromhex("4504232445032321")
    es, nonce = b"E" * 32, b"A" * 32
    base = SessionSecret.from_key_exchange(transcript, init1, init2, es, nonce)
    inputs = [transcript, init1, init2, es]
    seen = {base.value}
    for which, original in enumerate(inputs):
        for index in range(len(original)):
            tampered = bytearray(original)
            tampered[index] ^= 0x01
            changed = list(inputs)
            changed[which] = bytes(tampered)
            t, i1, i2, e = changed
            seen.add(SessionSecret.from_key_exchange(t, i1, i2, e, nonce).value)
    assert len(seen) == 1 + sum(len(part) for part in inputs)
    assert SessionSecret.from_key_exchange(transcript, init1, init2, es, b"a" * 32) != base


def test_n_a_must_be_32_bytes_and_a_secret_32_bytes() -> None:
    with pytest.raises(UsageError):
        SessionSecret.from_key_exchange(b"", b"", b"", b"es", b"n" * 31)
    with pytest.raises(UsageError):
        SessionSecret(b"\x00" * 31)


def test_the_chain_of_session_secrets_follows_nextk() -> None:
    ss0 = SessionSecret(b"\x11" * 32)
    ss1 = ss0.next()
    assert (ss1.value, ss1.index) == (hkdf_expand(ss0.value, CONST_NEXTK, 32), 1)
    assert ss1.next().index == 2


def test_session_id_is_the_tep_byte_then_cprf_sessid() -> None:
    ss = SessionSecret(b"\x11" * 32)
    assert ss.session_id(0x23) == b"\x23" + hkdf_expand(ss.value, CONST_SESSID, 32)
    assert ss.session_id(0x23) != ss.next().session_id(0x23)
    with pytest.raises(UsageError):
        ss.session_id(0x80)


def test_resumption_ids_are_the_two_ends_of_cprf_resume() -> None:
    ss = SessionSecret(b"\x11" * 32)
    material = hkdf_expand(ss.value, CONST_RESUME, 18)
    assert ss.resumption_ids() == (material[:9], material[9:])


def test_master_keys_chain_by_rekey_and_traffic_keys_by_direction() -> None:
    ss = SessionSecret(b"\x22" * 32)
    mk0 = hkdf_expand(ss.value, CONST_REKEY, 32)
    mk1 = hkdf_expand(mk0, CONST_REKEY, 32)
    chain = ss.key_chain(16)
    assert (chain.master_key(0), chain.master_key(1)) == (mk0, mk1)
    assert chain.key_ab(1) == hkdf_expand(mk1, CONST_KEY_A, 16)
    assert chain.key_ba(1) == hkdf_expand(mk1, CONST_KEY_B, 16)
    assert len(ss.key_chain(32).key_ab(0)) == 32


def test_traffic_keys_differ_by_direction_and_generation_and_do_not_depend_on_order() -> None:
    chain = SessionSecret(b"\x22" * 32).key_chain(16)
    keys = {chain.key_ab(g) for g in range(4)} | {chain.key_ba(g) for g in range(4)}
    assert len(keys) == 8
    assert SessionSecret(b"\x22" * 32).key_chain(16).key_ab(3) == chain.key_ab(3)


def test_key_chain_refuses_bad_parameters() -> None:
    chain = SessionSecret(b"\x22" * 32).key_chain(16)
    with pytest.raises(UsageError):
        chain.key_ab(-1)
    with pytest.raises(UsageError):
        KeyChain(b"short", 16)
    with pytest.raises(UsageError):
        KeyChain(b"\x00" * 32, 0)


def test_the_secret_value_stays_out_of_repr() -> None:
    ss = SessionSecret(b"\xab" * 32, 3)
    assert "ab" not in repr(ss)
    assert "index=3" in repr(ss)
