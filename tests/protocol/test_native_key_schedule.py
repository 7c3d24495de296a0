"""The C key schedule (tcpcrypt.native._fastpath) against the pure-Python reference: the same
bytes for every derivation a connection makes, and the library still working (saying so once)
when the extension is missing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcrypt import key_schedule, native
from tcpcrypt.key_schedule import DerivedSession, SessionSecret, derive_session, extract


def _built() -> None:
    if os.environ.get("TCPCRYPT_PURE_PYTHON"):
        pytest.skip("TCPCRYPT_PURE_PYTHON is set")
    assert native.session_keys is not None, (
        f"the C key schedule is not built: {native.unavailable_reason} (make setup builds it)")


def _reference(secret: SessionSecret, tep: int, key_length: int,
               with_next: bool) -> DerivedSession:
    saved = key_schedule._native_session_keys
    key_schedule._native_session_keys = None
    try:
        return derive_session(secret, tep, key_length, with_next)
    finally:
        key_schedule._native_session_keys = saved


def _flat(derived: DerivedSession) -> tuple[object, ...]:
    chain = derived.chain
    following = derived.next_secret
    return (derived.session_id, chain.master_key(0), chain.key_ab(0), chain.key_ba(0),
            chain.master_key(1), chain.key_ab(1), chain.key_ba(1),
            following.value if following else None, following.index if following else None,
            derived.next_ids)


@settings(max_examples=200)
@given(st.binary(min_size=32, max_size=32), st.integers(0, 0x7F), st.integers(1, 32),
       st.booleans(), st.integers(0, 5))
def test_c_derivations_are_byte_identical_to_the_reference(
    value: bytes, tep: int, key_length: int, with_next: bool, index: int
) -> None:
    _built()
    secret = SessionSecret(value, index)
    assert _flat(derive_session(secret, tep, key_length, with_next)) == _flat(
        _reference(secret, tep, key_length, with_next))


@settings(max_examples=100)
@given(st.binary(max_size=200), st.binary(max_size=600))
def test_c_extract_is_hmac_sha256_like_the_reference(salt: bytes, ikm: bytes) -> None:
    _built()
    assert native.extract is not None
    assert native.extract(salt, ikm) == extract(salt, ikm)


def test_c_session_keys_refuse_impossible_inputs() -> None:
    _built()
    assert native.session_keys is not None
    for args in ((b"\x00" * 31, 0x21, 16, True), (b"\x00" * 32, 0x80, 16, True),
                 (b"\x00" * 32, 0x21, 0, True), (b"\x00" * 32, 0x21, 33, True)):
        with pytest.raises(ValueError):
            native.session_keys(*args)


def test_key_lengths_above_32_bytes_take_the_reference_path() -> None:
    secret = SessionSecret(bytes(range(32)))
    derived = derive_session(secret, 0x21, 48, True)
    assert derived.chain.key_ab(0) == key_schedule.cprf(secret.first_master_key(), 0x04, 48)
    assert _flat(derived) == _flat(_reference(secret, 0x21, 48, True))


def test_without_the_extension_the_library_says_so_once_and_derives_the_same() -> None:
    program = (
        "import sys, warnings\n"
        "sys.modules['tcpcrypt.native._fastpath'] = None  # as if it was never built\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    import tcpcrypt.native, tcpcrypt.key_schedule as k, tcpcrypt.connection\n"
        "    import tcpcrypt.library\n"
        "assert tcpcrypt.native.session_keys is None\n"
        "print(len([w for w in seen if 'C fast path' in str(w.message)]))\n"
        "d = k.derive_session(k.SessionSecret(bytes(32)), 0x21, 16, True)\n"
        "print(d.session_id.hex(), d.chain.key_ab(0).hex(), d.next_ids[1].hex())\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "TCPCRYPT_PURE_PYTHON"}
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                         check=True, env=environment).stdout.split("\n")
    assert out[0] == "1"
    reference = _reference(SessionSecret(bytes(32)), 0x21, 16, True)
    assert reference.next_ids is not None
    assert out[1] == " ".join((reference.session_id.hex(), reference.chain.key_ab(0).hex(),
                               reference.next_ids[1].hex()))
