"""The tcpcrypt key schedule (RFC 8548): session secrets ss[i], session IDs, master keys mk[j],
traffic keys and resumption identifiers.

Extract is HKDF-Extract with SHA-256; CPRF(K, CONST, L) is HKDF-Expand with SHA-256 whose info
is the single constant byte.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from tcpcrypt.constants import (
    CONST_KEY_A,
    CONST_KEY_B,
    CONST_NEXTK,
    CONST_REKEY,
    CONST_RESUME,
    CONST_SESSID,
    RESUME_MATERIAL_LENGTH,
    RESUMPTION_ID_LENGTH,
)
from tcpcrypt.errors import UsageError

_HASH_LENGTH = 32


def extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract with SHA-256."""
    return hmac.digest(salt, ikm, hashlib.sha256)


def cprf(key: bytes, constant: int, length: int) -> bytes:
    """HKDF-Expand with SHA-256 and the one-byte info `constant`."""
    if not 0 < length <= 255 * _HASH_LENGTH:
        raise UsageError(f"CPRF output length {length} out of range")
    info = bytes((constant,))
    output = b""
    block = b""
    counter = 1
    while len(output) < length:
        block = hmac.digest(key, block + info + bytes((counter,)), hashlib.sha256)
        output += block
        counter += 1
    return output[:length]


@dataclass(frozen=True, slots=True)
class SessionSecret:
    """ss[i]: the secret a session's keys, session ID and resumption identifiers come from."""

    value: bytes
    index: int = 0

    @classmethod
    def from_key_exchange(
        cls, transcript: bytes, init1_raw: bytes, init2_raw: bytes, es: bytes, nonce_a: bytes
    ) -> SessionSecret:
        """ss[0] = Extract(salt = N_A, ikm = transcript | Init1 | Init2 | ES)."""
        return cls(extract(nonce_a, transcript + init1_raw + init2_raw + es), 0)

    def next(self) -> SessionSecret:
        """ss[i+1], the secret a resumed session uses."""
        return SessionSecret(cprf(self.value, CONST_NEXTK, 32), self.index + 1)

    def session_id(self, tep: int) -> bytes:
        """The session ID applications see: the TEP byte then 32 bytes."""
        return bytes((tep,)) + cprf(self.value, CONST_SESSID, 32)

    def resumption_ids(self) -> tuple[bytes, bytes]:
        """(A's, B's) resumption identifiers for resuming this session."""
        material = cprf(self.value, CONST_RESUME, RESUME_MATERIAL_LENGTH)
        return material[:RESUMPTION_ID_LENGTH], material[-RESUMPTION_ID_LENGTH:]

    def key_chain(self, key_length: int) -> KeyChain:
        """The master keys mk[j] and traffic keys of this session."""
        return KeyChain(cprf(self.value, CONST_REKEY, 32), key_length)


class KeyChain:
    """mk[0] = CPRF(ss, REKEY, 32), mk[j] = CPRF(mk[j-1], REKEY, 32), computed as far as needed."""

    def __init__(self, first_master_key: bytes, key_length: int) -> None:
        self._master_keys = [first_master_key]
        self._key_length = key_length

    def _master_key(self, generation: int) -> bytes:
        if generation < 0:
            raise UsageError(f"negative key generation {generation}")
        while len(self._master_keys) <= generation:
            self._master_keys.append(cprf(self._master_keys[-1], CONST_REKEY, 32))
        return self._master_keys[generation]

    def key_ab(self, generation: int) -> bytes:
        """The key of generation `generation` for traffic from A to B."""
        return cprf(self._master_key(generation), CONST_KEY_A, self._key_length)

    def key_ba(self, generation: int) -> bytes:
        """The key of generation `generation` for traffic from B to A."""
        return cprf(self._master_key(generation), CONST_KEY_B, self._key_length)
