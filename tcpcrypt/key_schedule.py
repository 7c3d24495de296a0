"""The tcpcrypt key schedule (RFC 8548): session secrets ss[i], session IDs, master keys mk[j],
traffic keys and resumption identifiers.

    Extract(salt, ikm)  = HKDF-Extract with SHA-256
    CPRF(K, CONST, L)   = HKDF-Expand with SHA-256, info = the one byte CONST, L bytes out

    ss[0]      = Extract(salt = N_A, ikm = transcript | Init1 | Init2 | ES)
    ss[i+1]    = CPRF(ss[i], NEXTK, 32)
    session ID = TEP byte | CPRF(ss[i], SESSID, 32)
    resume     = CPRF(ss[i], RESUME, 18): A's identifier its first 9 bytes, B's its last 9
    mk[0]      = CPRF(ss[i], REKEY, 32),  mk[j+1] = CPRF(mk[j], REKEY, 32)
    k_ab[j]    = CPRF(mk[j], KEY_A, key length)   (A -> B traffic)
    k_ba[j]    = CPRF(mk[j], KEY_B, key length)   (B -> A traffic)

Init1 and Init2 enter ss[0] exactly as they were on the wire (trailers included).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from tcpcrypt.constants import (
    CONST_KEY_A,
    CONST_KEY_B,
    CONST_NEXTK,
    CONST_REKEY,
    CONST_RESUME,
    CONST_SESSID,
    NONCE_LENGTH,
    RESUME_MATERIAL_LENGTH,
    RESUMPTION_ID_LENGTH,
    SECRET_LENGTH,
)
from tcpcrypt.errors import UsageError
from tcpcrypt.native import extract as _native_extract
from tcpcrypt.native import session_keys as _native_session_keys

try:  # the C function behind hmac.digest, called without its Python wrapper
    from _hashlib import hmac_digest as _hmac_digest
except ImportError:  # pragma: no cover - a Python built without OpenSSL
    _hmac_digest = hmac.digest  # type: ignore[assignment]

_HASH_LENGTH: Final = 32
_MAX_EXPAND: Final = 255 * _HASH_LENGTH
# HKDF-Expand's first block hashes info | 0x01; built once per constant, not per call.
_FIRST_BLOCK_INFO: Final = tuple(bytes((constant, 1)) for constant in range(256))


def extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract with SHA-256: HMAC-SHA256 keyed by the salt."""
    return _hmac_digest(salt, ikm, "sha256")


_extract = _native_extract or extract  # what ss[0] is derived with (same bytes)


def cprf(key: bytes, constant: int, length: int) -> bytes:
    """HKDF-Expand with SHA-256, the one-byte info `constant` and `length` bytes of output."""
    if 0 < length <= _HASH_LENGTH and 0 <= constant <= 0xFF:  # every CPRF of the protocol
        return _hmac_digest(key, _FIRST_BLOCK_INFO[constant], "sha256")[:length]  # T(1)
    if not 0 < length <= _MAX_EXPAND:
        raise UsageError(f"CPRF output length {length} out of range 1..{_MAX_EXPAND}")
    if not 0 <= constant <= 0xFF:
        raise UsageError(f"CPRF constant {constant} is not one byte")
    info = bytes((constant,))
    blocks: list[bytes] = []
    block = b""
    for counter in range(1, (length + _HASH_LENGTH - 1) // _HASH_LENGTH + 1):
        block = hmac.digest(key, block + info + bytes((counter,)), hashlib.sha256)
        blocks.append(block)
    return b"".join(blocks)[:length]


@dataclass(frozen=True, slots=True)
class SessionSecret:
    """ss[i]: the secret a session's keys, session ID and resumption identifiers come from.

    `index` is i (0 after a full key exchange, +1 for each resumption). The value is kept out of
    `repr` so that a logged object does not leak it.
    """

    value: bytes = field(repr=False)
    index: int = 0

    def __post_init__(self) -> None:
        if len(self.value) != SECRET_LENGTH:
            raise UsageError(f"a session secret is {SECRET_LENGTH} bytes, got {len(self.value)}")

    @classmethod
    def from_key_exchange(
        cls, transcript: bytes, init1_raw: bytes, init2_raw: bytes, es: bytes, nonce_a: bytes
    ) -> SessionSecret:
        """ss[0] = Extract(salt = N_A, ikm = transcript | Init1 | Init2 | ES)."""
        if len(nonce_a) != NONCE_LENGTH:
            raise UsageError(f"N_A must be {NONCE_LENGTH} bytes, got {len(nonce_a)}")
        return cls(_extract(nonce_a, b"".join((transcript, init1_raw, init2_raw, es))), 0)

    def next(self) -> SessionSecret:
        """ss[i+1], the secret a resumed session uses."""
        return SessionSecret(cprf(self.value, CONST_NEXTK, SECRET_LENGTH), self.index + 1)

    def session_id(self, tep: int) -> bytes:
        """The session ID applications see: the TEP byte, then CPRF(ss, SESSID, 32)."""
        if not 0 <= tep <= 0x7F:
            raise UsageError(f"TEP identifier 0x{tep:x} is not 7 bits")
        return bytes((tep,)) + cprf(self.value, CONST_SESSID, SECRET_LENGTH)

    def resumption_ids(self) -> tuple[bytes, bytes]:
        """(A's, B's) 9-byte identifiers for resuming this session."""
        material = cprf(self.value, CONST_RESUME, RESUME_MATERIAL_LENGTH)
        return material[:RESUMPTION_ID_LENGTH], material[-RESUMPTION_ID_LENGTH:]

    def first_master_key(self) -> bytes:
        """mk[0] = CPRF(ss, REKEY, 32)."""
        return cprf(self.value, CONST_REKEY, SECRET_LENGTH)

    def key_chain(self, key_length: int) -> KeyChain:
        """The master keys mk[j] and traffic keys of this session, for an AEAD key length."""
        return KeyChain(self.first_master_key(), key_length)


class KeyChain:
    """mk[0], mk[1], ... and the traffic keys of each generation, derived as far as asked.

    `key_ab` and `key_ba` are the per-direction key functions a `FrameSealer`/`FrameOpener`
    takes. Master keys are computed once and remembered (32 bytes per generation).
    """

    def __init__(self, first_master_key: bytes, key_length: int,
                 first_keys: tuple[bytes, bytes] | None = None) -> None:
        """`first_keys`, when given, is (k_ab[0], k_ba[0]) already derived from
        `first_master_key` (by `derive_session`), so generation 0 is not derived again."""
        if len(first_master_key) != SECRET_LENGTH:
            raise UsageError(f"a master key is {SECRET_LENGTH} bytes")
        if not 0 < key_length <= _MAX_EXPAND:
            raise UsageError(f"AEAD key length {key_length} out of range")
        if first_keys is not None and (
            len(first_keys[0]) != key_length or len(first_keys[1]) != key_length
        ):
            raise UsageError(f"first traffic keys must be {key_length} bytes")
        self._master_keys = [first_master_key]
        self._first_keys = first_keys
        self.key_length = key_length

    def master_key(self, generation: int) -> bytes:
        """mk[generation]."""
        if generation < 0:
            raise UsageError(f"negative key generation {generation}")
        while len(self._master_keys) <= generation:
            self._master_keys.append(cprf(self._master_keys[-1], CONST_REKEY, SECRET_LENGTH))
        return self._master_keys[generation]

    def key_ab(self, generation: int) -> bytes:
        """k_ab[generation]: the key of traffic from A to B."""
        if generation == 0 and self._first_keys is not None:
            return self._first_keys[0]
        return cprf(self.master_key(generation), CONST_KEY_A, self.key_length)

    def key_ba(self, generation: int) -> bytes:
        """k_ba[generation]: the key of traffic from B to A."""
        if generation == 0 and self._first_keys is not None:
            return self._first_keys[1]
        return cprf(self.master_key(generation), CONST_KEY_B, self.key_length)


class DerivedSession(NamedTuple):
    """What a connection derives from ss[i] when its keys come to exist."""

    session_id: bytes
    chain: KeyChain
    next_secret: SessionSecret | None  # ss[i+1], when asked for
    next_ids: tuple[bytes, bytes] | None  # (A's, B's) resumption identifiers of ss[i+1]


_derived: Callable[[tuple[bytes, KeyChain, SessionSecret | None, tuple[bytes, bytes] | None]],
                   DerivedSession] = functools.partial(tuple.__new__, DerivedSession)
"""`DerivedSession` from its four fields, without the named tuple's Python-level `__new__`."""


def derive_session(secret: SessionSecret, tep: int, key_length: int,
                   with_next: bool) -> DerivedSession:
    """Session ID, key chain (generation 0's traffic keys derived) and, `with_next`, ss[i+1]
    with its resumption identifiers: in one C call when tcpcrypt.native is built
    (key lengths up to 32 bytes: every AEAD of the project), else through the reference
    functions above. Both give the same bytes (tests/protocol/test_native_key_schedule.py)."""
    if _native_session_keys is not None and 0 <= tep <= 0x7F and 0 < key_length <= 32:
        session_id, master, key_ab, key_ba, after, a_id, b_id = _native_session_keys(
            secret.value, tep, key_length, with_next)
        # KeyChain(master, key_length, (key_ab, key_ba)) and DerivedSession(...) without
        # their Python-level constructors (every connection comes here; the C function
        # gives exactly the lengths those would check)
        chain = KeyChain.__new__(KeyChain)
        chain._master_keys, chain._first_keys = [master], (key_ab, key_ba)
        chain.key_length = key_length
        if after is None or a_id is None or b_id is None:
            return _derived((session_id, chain, None, None))
        return _derived((session_id, chain, SessionSecret(after, secret.index + 1),
                         (a_id, b_id)))
    chain = secret.key_chain(key_length)
    session_id = secret.session_id(tep)
    if not with_next:
        return DerivedSession(session_id, chain, None, None)
    following = secret.next()
    return DerivedSession(session_id, chain, following, following.resumption_ids())
