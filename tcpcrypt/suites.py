"""Key-agreement suites of tcpcrypt, with one asymmetric interface so that every suite fits.

A calls `a_start` (its private state and PK_A for Init1), B calls `b_respond` with PK_A (PK_B for
Init2 and the shared secret ES), A calls `a_finish` with its state and PK_B (ES).

* ECDHE suites (RFC 8548): X25519 (TEP 0x23), X448 (0x24), P-256 (0x21), P-521 (0x22). Private
  keys come from the injected random bytes, so a seeded run is replayable byte for byte.
  PK is the raw 32/56-byte key (X25519/X448) or the uncompressed point (65/133 bytes).
* RSA-exp3-2048 (the 2010 paper's design; experimental TEP 0x20): A holds an RSA-2048 key with
  public exponent 3 and sends its modulus as PK_A; B encrypts a 32-byte random secret to it
  with RSA-OAEP (SHA-256) and sends the ciphertext as PK_B; ES is that secret. The server's
  public-key work is the cheap half (e = 3 encryption); the client decrypts.

A peer's public key that is malformed, off the curve or gives an all-zero secret raises
`PeerError("bad-public-key")`; an RSA ciphertext that does not decrypt is refused the same way
(PK_B is that ciphertext).
"""

from __future__ import annotations

import functools
import os
from abc import ABC, abstractmethod
from typing import Any, Final

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

RSA_MODULUS_BITS: Final = 2048
RSA_MODULUS_BYTES: Final = RSA_MODULUS_BITS // 8
RSA_PUBLIC_EXPONENT: Final = 3
RSA_SECRET_BYTES: Final = 32
_OAEP: Final = padding.OAEP(
    mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)

# Group orders of the NIST curves (FIPS 186-4 D.1.2); tests check (n-1)*G == -G.
P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P521_ORDER: Final = int(
    "01FF" + "FF" * 31 + "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409", 16
)
# Extra random bytes drawn for an ECDSA-style scalar so that reducing it modulo n-1 has a bias
# below 2^-64 (FIPS 186-4 B.4.1, "extra random bits").
_SCALAR_EXTRA_BYTES: Final = 8

AState = (
    x25519.X25519PrivateKey | x448.X448PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
)
"""A's private state between `a_start` and `a_finish`: its private key."""


class KeyAgreementSuite(ABC):
    """One key-agreement suite; the same object serves any number of connections."""

    name: str
    tep: int
    pk_a_length: int
    pk_b_length: int

    @abstractmethod
    def a_start(self, random: RandomSource, now: float = 0.0) -> tuple[AState, bytes]:
        """A's private state and PK_A. `now` matters only for keys reused over time (RSA)."""

    @abstractmethod
    def b_respond(self, pk_a: bytes, random: RandomSource) -> tuple[bytes, bytes]:
        """PK_B and the shared secret ES, from A's public key."""

    @abstractmethod
    def a_finish(self, state: object, pk_b: bytes) -> bytes:
        """The shared secret ES, from A's state (as `a_start` returned it) and B's public key."""

    def _check_length(self, key: bytes, expected: int) -> None:
        if len(key) != expected:
            raise PeerError("bad-public-key", f"{self.name}: {len(key)} bytes, want {expected}")

    def _wrong_state(self, state: object) -> UsageError:
        return UsageError(f"{self.name}: a_finish needs the state a_start returned, not {state!r}")


class _MontgomerySuite(KeyAgreementSuite):
    """ECDHE over a Montgomery curve (X25519, X448): the private key is `pk_a_length` injected
    random bytes, public keys are raw, and a low-order peer point is the peer's error."""

    private_key_type: type[x25519.X25519PrivateKey] | type[x448.X448PrivateKey]
    public_key_type: type[x25519.X25519PublicKey] | type[x448.X448PublicKey]

    def _keypair(self, random: RandomSource) -> tuple[Any, bytes]:
        private = self.private_key_type.from_private_bytes(random(self.pk_a_length))
        return private, private.public_key().public_bytes_raw()

    def _exchange(self, private: Any, peer: bytes) -> bytes:
        self._check_length(peer, self.pk_b_length)
        try:
            secret = private.exchange(self.public_key_type.from_public_bytes(peer))
        except ValueError:  # OpenSSL refuses low-order points (all-zero result)
            raise PeerError("bad-public-key", f"{self.name}: low-order point") from None
        return _nonzero(self.name, secret)

    def a_start(self, random: RandomSource, now: float = 0.0) -> tuple[AState, bytes]:
        return self._keypair(random)

    def b_respond(self, pk_a: bytes, random: RandomSource) -> tuple[bytes, bytes]:
        private, public = self._keypair(random)
        return public, self._exchange(private, pk_a)

    def a_finish(self, state: object, pk_b: bytes) -> bytes:
        if not isinstance(state, self.private_key_type):
            raise self._wrong_state(state)
        return self._exchange(state, pk_b)


class X25519Suite(_MontgomerySuite):
    """ECDHE over Curve25519: the private key is 32 injected random bytes."""

    name = "x25519"
    tep = TEP_TCPCRYPT_ECDHE_CURVE25519
    pk_a_length = pk_b_length = 32
    private_key_type = x25519.X25519PrivateKey
    public_key_type = x25519.X25519PublicKey


class X448Suite(_MontgomerySuite):
    """ECDHE over Curve448: the private key is 56 injected random bytes."""

    name = "x448"
    tep = TEP_TCPCRYPT_ECDHE_CURVE448
    pk_a_length = pk_b_length = 56
    private_key_type = x448.X448PrivateKey
    public_key_type = x448.X448PublicKey


class NistCurveSuite(KeyAgreementSuite):
    """ECDHE over P-256 or P-521 with uncompressed points.

    The private scalar is drawn from the injected random source: `field bytes + 8` bytes read
    as a big-endian integer c, scalar = (c mod (n - 1)) + 1, always in [1, n - 1].
    """

    def __init__(self, name: str, tep: int, curve: ec.EllipticCurve, order: int) -> None:
        self.name, self.tep = name, tep
        self._curve = curve
        self._order = order
        field_bytes = (curve.key_size + 7) // 8
        self._draw_bytes = field_bytes + _SCALAR_EXTRA_BYTES
        self.pk_a_length = self.pk_b_length = 1 + 2 * field_bytes

    def scalar_from(self, random: RandomSource) -> int:
        """A private scalar in [1, n - 1] from the injected random bytes."""
        return int.from_bytes(random(self._draw_bytes), "big") % (self._order - 1) + 1

    def _keypair(self, random: RandomSource) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
        private = ec.derive_private_key(self.scalar_from(random), self._curve)
        public = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return private, public

    def _exchange(self, private: ec.EllipticCurvePrivateKey, peer: bytes) -> bytes:
        self._check_length(peer, self.pk_a_length)
        if peer[0] != 0x04:
            raise PeerError("bad-public-key", f"{self.name}: not an uncompressed point")
        try:
            point = ec.EllipticCurvePublicKey.from_encoded_point(self._curve, peer)
            secret = private.exchange(ec.ECDH(), point)
        except ValueError:
            raise PeerError("bad-public-key", f"{self.name}: point not on the curve") from None
        return _nonzero(self.name, secret)

    def a_start(self, random: RandomSource, now: float = 0.0) -> tuple[AState, bytes]:
        return self._keypair(random)

    def b_respond(self, pk_a: bytes, random: RandomSource) -> tuple[bytes, bytes]:
        private, public = self._keypair(random)
        return public, self._exchange(private, pk_a)

    def a_finish(self, state: object, pk_b: bytes) -> bytes:
        if not isinstance(state, ec.EllipticCurvePrivateKey) or state.curve.name != (
            self._curve.name
        ):
            raise self._wrong_state(state)
        return self._exchange(state, pk_b)


class RsaKeyHolder:
    """A's RSA-2048 key with e = 3, reused across connections for `lifetime_s` seconds.

    Owned by the caller (one per host, shared by its connections); the clock is passed in.
    `cryptography` generates RSA keys from the operating system's randomness and cannot take an
    injected source, so this suite's PK_A (and the OAEP padding in PK_B) is not replayable byte
    for byte; the shared secret ES, drawn by B from its injected source, is.
    """

    def __init__(self, lifetime_s: float = 3600.0) -> None:
        if not lifetime_s > 0:
            raise UsageError(f"RSA key lifetime must be positive, got {lifetime_s}")
        self.lifetime_s = lifetime_s
        self._key: rsa.RSAPrivateKey | None = None
        self._created = 0.0
        self.generated = 0
        """How many keys were generated so far (a cost the experiments count)."""

    def key_for(self, now: float) -> rsa.RSAPrivateKey:
        """The current key, generating a new one when none exists or the old one expired."""
        if self._key is None or now >= self._created + self.lifetime_s:
            self._key = rsa.generate_private_key(
                public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_MODULUS_BITS
            )
            self._created = now
            self.generated += 1
        return self._key


@functools.lru_cache(maxsize=1024)
def _rsa_public_key(modulus: int) -> rsa.RSAPublicKey:
    """A peer's RSA public key, parsed once: clients reuse their key across connections.

    A pure function of the modulus, so caching it keeps replays exact; it spares B the key
    construction on every connection from the same client (as the 2010 design intended).
    """
    return rsa.RSAPublicNumbers(RSA_PUBLIC_EXPONENT, modulus).public_key()


class RsaExp3Suite(KeyAgreementSuite):
    """The 2010 design: PK_A is A's 2048-bit modulus (e = 3); PK_B is an RSA-OAEP ciphertext."""

    name = "rsa-exp3-2048"
    tep = TEP_TCPCRYPT_RSA_EXP3_2048
    pk_a_length = RSA_MODULUS_BYTES
    pk_b_length = RSA_MODULUS_BYTES

    def __init__(self, keys: RsaKeyHolder | None = None) -> None:
        self.keys = keys if keys is not None else RsaKeyHolder()

    def a_start(self, random: RandomSource, now: float = 0.0) -> tuple[AState, bytes]:
        key = self.keys.key_for(now)
        modulus = key.public_key().public_numbers().n
        return key, modulus.to_bytes(RSA_MODULUS_BYTES, "big")

    def b_respond(self, pk_a: bytes, random: RandomSource) -> tuple[bytes, bytes]:
        self._check_length(pk_a, RSA_MODULUS_BYTES)
        modulus = int.from_bytes(pk_a, "big")
        if modulus.bit_length() != RSA_MODULUS_BITS or modulus % 2 == 0:
            raise PeerError("bad-public-key", "RSA modulus is not an odd 2048-bit number")
        try:
            public = _rsa_public_key(modulus)
        except ValueError:
            raise PeerError("bad-public-key", "RSA modulus refused") from None
        secret = random(RSA_SECRET_BYTES)
        return public.encrypt(secret, _OAEP), secret

    def a_finish(self, state: object, pk_b: bytes) -> bytes:
        if not isinstance(state, rsa.RSAPrivateKey):
            raise self._wrong_state(state)
        self._check_length(pk_b, RSA_MODULUS_BYTES)
        try:
            secret = state.decrypt(pk_b, _OAEP)
        except ValueError:
            raise PeerError("bad-public-key", "RSA ciphertext does not decrypt") from None
        if len(secret) != RSA_SECRET_BYTES:
            raise PeerError("bad-public-key", f"RSA secret of {len(secret)} bytes")
        return secret


def _nonzero(name: str, secret: bytes) -> bytes:
    if not any(secret):
        raise PeerError("bad-public-key", f"{name}: all-zero shared secret")
    return secret


_ECDHE: dict[str, KeyAgreementSuite] = {
    "x25519": X25519Suite(),
    "x448": X448Suite(),
    "p256": NistCurveSuite("p256", TEP_TCPCRYPT_ECDHE_P256, ec.SECP256R1(), P256_ORDER),
    "p521": NistCurveSuite("p521", TEP_TCPCRYPT_ECDHE_P521, ec.SECP521R1(), P521_ORDER),
}
SUITE_NAMES: tuple[str, ...] = (*_ECDHE, RsaExp3Suite.name)
_NAME_BY_TEP: dict[int, str] = {
    **{suite.tep: name for name, suite in _ECDHE.items()},
    RsaExp3Suite.tep: RsaExp3Suite.name,
}


SLOWDOWN_VARIABLE: Final = "TCPCRYPT_SLOWDOWN_KEX"
"""Set to N >= 2, B's side of every key exchange runs N times (the last result is used): a
deliberate slowdown, to show that `testbed regress` catches one. Unset in normal use."""


class _RepeatedResponder(KeyAgreementSuite):
    """A suite whose `b_respond` runs `times` times: the server's key exchange made slower."""

    def __init__(self, inner: KeyAgreementSuite, times: int) -> None:
        self.inner, self.times = inner, times
        self.name, self.tep = inner.name, inner.tep
        self.pk_a_length, self.pk_b_length = inner.pk_a_length, inner.pk_b_length

    def a_start(self, random: RandomSource, now: float = 0.0) -> tuple[AState, bytes]:
        return self.inner.a_start(random, now)

    def b_respond(self, pk_a: bytes, random: RandomSource) -> tuple[bytes, bytes]:
        for _ in range(self.times - 1):
            self.inner.b_respond(pk_a, random)
        return self.inner.b_respond(pk_a, random)

    def a_finish(self, state: object, pk_b: bytes) -> bytes:
        return self.inner.a_finish(state, pk_b)


def _slowed(suite: KeyAgreementSuite) -> KeyAgreementSuite:
    text = os.environ.get(SLOWDOWN_VARIABLE, "")
    times = int(text) if text.isdigit() else 1
    return _RepeatedResponder(suite, times) if times > 1 else suite


def get_suite(name: str, *, rsa_keys: RsaKeyHolder | None = None) -> KeyAgreementSuite:
    """The suite called `name`; UsageError listing the known names otherwise.

    `rsa_keys` is A's RSA key holder for rsa-exp3-2048 (a fresh holder when None).
    """
    if name == RsaExp3Suite.name:
        return _slowed(RsaExp3Suite(rsa_keys))
    try:
        return _slowed(_ECDHE[name])
    except KeyError:
        raise UsageError(f"unknown suite {name!r}; known: {', '.join(SUITE_NAMES)}") from None


def suite_name_for_tep(tep: int) -> str | None:
    """The name of the suite with this TEP identifier, or None for one we do not know."""
    return _NAME_BY_TEP.get(tep)


def suite_for_tep(tep: int, *, rsa_keys: RsaKeyHolder | None = None) -> KeyAgreementSuite:
    """The suite with this TEP identifier; PeerError("unknown-tep") for one we do not know."""
    name = suite_name_for_tep(tep)
    if name is None:
        raise PeerError("unknown-tep", f"TEP 0x{tep:02x}")
    return get_suite(name, rsa_keys=rsa_keys)
