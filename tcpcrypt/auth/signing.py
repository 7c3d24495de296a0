"""The server's long-term signing key for batch signing: RSA-2048 with PSS, or Ed25519.

One algorithm byte on the wire names the scheme; a client verifies only with the public key it
trusts, and only under that key's own scheme (a proof naming another scheme is a bad
signature, never a reason to switch).
"""

from __future__ import annotations

import enum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from tcpcrypt.auth.errors import AuthConfigError

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
MIN_RSA_BITS = 2048


class SignatureScheme(enum.IntEnum):
    RSA_PSS_SHA256 = 1
    ED25519 = 2


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def scheme_of(key: PublicKey | PrivateKey) -> SignatureScheme:
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise AuthConfigError(f"RSA keys below {MIN_RSA_BITS} bits are refused")
        return SignatureScheme.RSA_PSS_SHA256
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return SignatureScheme.ED25519
    raise AuthConfigError(f"unsupported signing key type {type(key).__name__}")


class SigningKey:
    """A server's private key and the scheme it signs with."""

    def __init__(self, private_key: PrivateKey) -> None:
        self.scheme = scheme_of(private_key)
        self._key = private_key

    @classmethod
    def generate(cls, scheme: str) -> SigningKey:
        """A fresh key: `rsa-2048` or `ed25519`."""
        if scheme == "rsa-2048":
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        if scheme == "ed25519":
            return cls(ed25519.Ed25519PrivateKey.generate())
        raise AuthConfigError(f"unknown signature scheme {scheme!r} (rsa-2048, ed25519)")

    def private_pem(self) -> bytes:
        """The private key, PKCS#8 PEM unencrypted (to hand to a server process of ours)."""
        return self._key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        loaded = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise AuthConfigError(f"unsupported signing key type {type(loaded).__name__}")
        return cls(loaded)

    def public_key(self) -> PublicKey:
        return self._key.public_key()

    def sign(self, message: bytes) -> bytes:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(message, _pss(), hashes.SHA256())
        return self._key.sign(message)


def signature_valid(public_key: PublicKey, scheme: int, signature: bytes, message: bytes) -> bool:
    """Whether `signature` over `message` verifies under `public_key` with its own scheme."""
    if scheme != scheme_of(public_key):
        return False
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, message, _pss(), hashes.SHA256())
        else:
            public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
