"""The AEAD algorithms tcpcrypt frames can use, by project name and by wire identifier.

Wire identifiers are those of RFC 8548's AEAD registry, one byte each in Init1/Init2
(docs/protocol.md gives the evidence): AES-128-GCM 0x01, AES-256-GCM 0x02, ChaCha20-Poly1305
0x10. All three take 12-byte nonces and produce 16-byte tags. The keyed objects come from the C
fast path (`tcpcrypt.native.aead_cipher`: libcrypto's EVP, the algorithm fetched once per
process, the key set up once per object) when it is built, else from `cryptography`; both
have the same calls and give the same bytes (tests/protocol/test_native_aead.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from tcpcrypt.constants import AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305
from tcpcrypt.errors import PeerError, UsageError
from tcpcrypt.native import aead_cipher

Bytes = bytes | bytearray | memoryview


class AeadCipher(Protocol):
    """A keyed AEAD object: `cryptography`'s AESGCM / ChaCha20Poly1305 or the C fast path's.
    A tag that does not match raises `cryptography.exceptions.InvalidTag`."""

    def encrypt(self, nonce: Bytes, data: Bytes, associated_data: Bytes | None, /) -> bytes: ...
    def decrypt(self, nonce: Bytes, data: Bytes, associated_data: Bytes | None, /) -> bytes: ...
    def encrypt_into(self, nonce: Bytes, data: Bytes, associated_data: Bytes | None,
                     buffer: bytearray | memoryview, /) -> int: ...
    def decrypt_into(self, nonce: Bytes, data: Bytes, associated_data: Bytes | None,
                     buffer: bytearray | memoryview, /) -> int: ...


_NATIVE_AES_GCM, _NATIVE_CHACHA = 0, 1  # aead_cipher's kinds


def _factory(kind: int, fallback: Callable[[bytes], AeadCipher]) -> Callable[[bytes], AeadCipher]:
    """The C fast path's constructor for `kind` when it is built, else `fallback`."""
    native = aead_cipher
    if native is None:
        return fallback
    return functools.partial(native, kind)  # (called without a Python frame)


@dataclass(frozen=True, slots=True)
class AeadSpec:
    """One AEAD algorithm: its project name, wire identifier, key length and constructor."""

    name: str
    wire_id: int
    key_length: int
    factory: Callable[[bytes], AeadCipher]

    def new(self, key: bytes) -> AeadCipher:
        """A keyed cipher object; UsageError for a key of the wrong length."""
        if len(key) != self.key_length:
            raise UsageError(f"{self.name} needs a {self.key_length}-byte key, got {len(key)}")
        return self.factory(key)


AEADS: tuple[AeadSpec, ...] = (
    AeadSpec("aes-128-gcm", AEAD_AES_128_GCM, 16, _factory(_NATIVE_AES_GCM, AESGCM)),
    AeadSpec("aes-256-gcm", AEAD_AES_256_GCM, 32, _factory(_NATIVE_AES_GCM, AESGCM)),
    AeadSpec("chacha20-poly1305", AEAD_CHACHA20_POLY1305, 32,
             _factory(_NATIVE_CHACHA, ChaCha20Poly1305)),
)
AEAD_NAMES: tuple[str, ...] = tuple(spec.name for spec in AEADS)
_BY_NAME = {spec.name: spec for spec in AEADS}
_BY_ID = {spec.wire_id: spec for spec in AEADS}


def aead_by_name(name: str) -> AeadSpec:
    """The AEAD called `name`; UsageError naming the known ones otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UsageError(f"unknown AEAD {name!r}; known: {', '.join(AEAD_NAMES)}") from None


def aead_by_id(wire_id: int) -> AeadSpec:
    """The AEAD with this wire identifier; PeerError("unknown-aead") for one we do not know."""
    try:
        return _BY_ID[wire_id]
    except KeyError:
        raise PeerError("unknown-aead", f"AEAD id 0x{wire_id:04x}") from None
