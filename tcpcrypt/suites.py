"""Key-agreement suites of tcpcrypt, with one asymmetric interface so that every suite fits.

A calls `a_start` (its private state and PK_A for Init1), B calls `b_respond` with PK_A (PK_B
for Init2 and the shared secret ES), A calls `a_finish` with PK_B (ES). For ECDHE suites
(X25519, X448, P-256, P-521: the RFC's) both sides do one scalar multiplication each plus key
generation. For the experimental RSA-exp3-2048 suite (the 2010 paper's design) A holds an RSA
key with public exponent 3 and decrypts, while B only encrypts a random secret to it with e=3:
the server's public-key work is the cheap half.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import Final

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x448, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tcpcrypt.constants import (
    TEP_TCPCRYPT_ECDHE_CURVE448,
    TEP_TCPCRYPT_ECDHE_CURVE25519,
    TEP_TCPCRYPT_ECDHE_P256,
    TEP_TCPCRYPT_ECDHE_P521,
    TEP_TCPCRYPT_RSA_EXP3_2048,
)
from tcpcrypt.errors import PeerError, UsageError
from tcpcrypt.randomness import RandomSource

RSA_MODULUS_BYTES: Final = 256
RSA_SECRET_BYTES: Final = 32
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class KeyAgreementSuite(ABC):
    name: str
    tep: int
    pk_a_length: int
    pk_b_length: int

    @abstractmethod
    def a_start(self, random: RandomSource, now: float = 0.0) -> tuple[object, bytes]:
        """A's private state and PK_A."""

    @abstractmethod
    def b_respond(self, pk_a: bytes, random: RandomSource) -> tuple[bytes, bytes]:
        """PK_B and the shared secret ES, from A's public key."""

    @abstractmethod
    def a_finish(self, state: object, pk_b: bytes) -> bytes:
        """The shared secret ES, from A's state and B's public key."""

    def _check_length(self, key: bytes, expected: int) -> None:
        if len(key) != expected:
            raise PeerError("bad-public-key", f"{self.name}: {len(key)} bytes, want {expected}")


class _MontgomerySuite(KeyAgreementSuite):
    """X25519 and X448: private keys are raw random bytes."""

    def __init__(self, name: str, tep: int, length: int) -> None:
        self.name, self.tep = name, tep
        self.pk_a_length = self.pk_b_length = length

    def _keypair(
        self, random: RandomSource
    ) -> tuple[x25519.X25519PrivateKey | x448.X448PrivateKey, bytes]:
        private: x25519.X25519PrivateKey | x448.X448PrivateKey
        if self.pk_a_length == 32:
            private = x25519.X25519PrivateKey.from_private_bytes(random(32))
        else:
            private = x448.X448PrivateKey.from_private_bytes(random(56))
        return private, private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def _exchange(self, private: object, peer: bytes) -> bytes:
        self._check_length(peer, self.pk_a_length)
        try:
            if isinstance(private, x25519.X25519PrivateKey):
                secret = private.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
            else:
                assert isinstance(private, x448.X448PrivateKey)
                secret = private.exchange(x448.X448PublicKey.from_public_bytes(peer))
        except (ValueError, InvalidKey):
            raise PeerError("bad-public-key", f"{self.name}: low-order point") from None
        if not any(secret):
            raise PeerError("bad-public-key", f"{self.name}: all-zero shared secret")
        return secret

    def a_start(self, random: RandomSource, now: float = 0.0) -> tuple[object, bytes]:
        return self._keypair(random)

    def b_respond(self, pk_a: bytes, random: RandomSource) -> tuple[bytes, bytes]:
        private, public = self._keypair(random)
        return public, self._exchange(private, pk_a)

    def a_finish(self, state: object, pk_b: bytes) -> bytes:
        return self._exchange(state, pk_b)


class _WeierstrassSuite(KeyAgreementSuite):
    """P-256 and P-521: uncompressed points; the scalar comes from the injected random bytes."""

    def __init__(self, name: str, tep: int, curve: ec.EllipticCurve) -> None:
        self.name, self.tep = name, tep
        self._curve = curve
        # Scalars below 2^(bits-1) are always below the group order of P-256 and P-521.
        self._scalar_bound = 1 << (curve.key_size - 1)
        self._scalar_bytes = (curve.key_size + 7) // 8
        self.pk_a_length = self.pk_b_length = 1 + 2 * ((curve.key_size + 7) // 8)

    def _keypair(self, random: RandomSource) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
        scalar = int.from_bytes(random(self._scalar_bytes), "big") % (self._scalar_bound - 1) + 1
        private = ec.derive_private_key(scalar, self._curve)
        public = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return private, public

    def _exchange(self, private: object, peer: bytes) -> bytes:
        self._check_length(peer, self.pk_a_length)
        if peer[0] != 0x04:
            raise PeerError("bad-public-key", f"{self.name}: not an uncompressed point")
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        try:
            point = ec.EllipticCurvePublicKey.from_encoded_point(self._curve, peer)
            return private.exchange(ec.ECDH(), point)
        except (ValueError, InvalidKey):
            raise PeerError("bad-public-key", f"{self.name}: point not on the curve") from None

    def a_start(self, random: RandomSource, now: float = 0.0) -> tuple[object, bytes]:
        return self._keypair(random)

    def b_respond(self, pk_a: bytes, random: RandomSource) -> tuple[bytes, bytes]:
        private, public = self._keypair(random)
        return public, self._exchange(private, pk_a)

    def a_finish(self, state: object, pk_b: bytes) -> bytes:
        return self._exchange(state, pk_b)


class RsaKeyHolder:
    """A's RSA-2048 key with e=3, reused across connections for `lifetime_s` seconds.

    `cryptography` generates RSA keys from the operating system's randomness and cannot take
    an injected source, so this suite is not replayable byte for byte (ES still is).
    """

    def __init__(self, lifetime_s: float = 3600.0) -> None:
        if lifetime_s <= 0:
            raise UsageError("RSA key lifetime must be positive")
        self.lifetime_s = lifetime_s
        self._key: rsa.RSAPrivateKey | None = None
        self._created = 0.0
        self.generated = 0

    def key_for(self, now: float) -> rsa.RSAPrivateKey:
        if self._key is None or now >= self._created + self.lifetime_s:
            self._key = rsa.generate_private_key(public_exponent=3, key_size=2048)
            self._created = now
            self.generated += 1
        return self._key


class RsaExp3Suite(KeyAgreementSuite):
    """The 2010 design: PK_A is A's 2048-bit modulus (e = 3); B encrypts a secret with OAEP."""

    name = "rsa-exp3-2048"
    tep = TEP_TCPCRYPT_RSA_EXP3_2048
    pk_a_length = RSA_MODULUS_BYTES
    pk_b_length = RSA_MODULUS_BYTES

    def __init__(self, keys: RsaKeyHolder | None = None) -> None:
        self.keys = keys or RsaKeyHolder()

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def _public_key(modulus: int) -> rsa.RSAPublicKey:
        """A's key, parsed once: clients reuse their RSA key across connections."""
        return rsa.RSAPublicNumbers(3, modulus).public_key()

    def a_start(self, random: RandomSource, now: float = 0.0) -> tuple[object, bytes]:
        key = self.keys.key_for(now)
        return key, key.public_key().public_numbers().n.to_bytes(RSA_MODULUS_BYTES, "big")

    def b_respond(self, pk_a: bytes, random: RandomSource) -> tuple[bytes, bytes]:
        self._check_length(pk_a, RSA_MODULUS_BYTES)
        modulus = int.from_bytes(pk_a, "big")
        if modulus.bit_length() != 2048 or modulus % 2 == 0:
            raise PeerError("bad-public-key", "RSA modulus is not an odd 2048-bit number")
        try:
            public = self._public_key(modulus)
        except ValueError:
            raise PeerError("bad-public-key", "RSA modulus refused") from None
        secret = random(RSA_SECRET_BYTES)
        return public.encrypt(secret, _OAEP), secret

    def a_finish(self, state: object, pk_b: bytes) -> bytes:
        assert isinstance(state, rsa.RSAPrivateKey)
        self._check_length(pk_b, RSA_MODULUS_BYTES)
        try:
            secret = state.decrypt(pk_b, _OAEP)
        except ValueError:
            raise PeerError("bad-public-key", "RSA ciphertext does not decrypt") from None
        if len(secret) != RSA_SECRET_BYTES:
            raise PeerError("bad-public-key", "RSA secret of the wrong length")
        return secret


_ECDHE: dict[str, KeyAgreementSuite] = {
    "x25519": _MontgomerySuite("x25519", TEP_TCPCRYPT_ECDHE_CURVE25519, 32),
    "x448": _MontgomerySuite("x448", TEP_TCPCRYPT_ECDHE_CURVE448, 56),
    "p256": _WeierstrassSuite("p256", TEP_TCPCRYPT_ECDHE_P256, ec.SECP256R1()),
    "p521": _WeierstrassSuite("p521", TEP_TCPCRYPT_ECDHE_P521, ec.SECP521R1()),
}
SUITE_NAMES: tuple[str, ...] = ("x25519", "x448", "p256", "p521", "rsa-exp3-2048")
_NAME_BY_TEP = {
    **{suite.tep: name for name, suite in _ECDHE.items()},
    TEP_TCPCRYPT_RSA_EXP3_2048: "rsa-exp3-2048",
}


def get_suite(name: str, *, rsa_keys: RsaKeyHolder | None = None) -> KeyAgreementSuite:
    """The suite called `name`; UsageError listing the known names otherwise."""
    if name == "rsa-exp3-2048":
        return RsaExp3Suite(rsa_keys)
    try:
        return _ECDHE[name]
    except KeyError:
        raise UsageError(f"unknown suite {name!r}; known: {', '.join(SUITE_NAMES)}") from None


def suite_name_for_tep(tep: int) -> str | None:
    return _NAME_BY_TEP.get(tep)
