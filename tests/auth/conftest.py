"""Signing keys shared by the auth tests (RSA key generation is slow enough to do once)."""

from __future__ import annotations

import pytest

from tcpcrypt.auth.signing import SigningKey


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return SigningKey.generate("rsa-2048")


@pytest.fixture(scope="session")
def ed25519_key() -> SigningKey:
    return SigningKey.generate("ed25519")


@pytest.fixture(params=["rsa-2048", "ed25519"])
def signing_key(request: pytest.FixtureRequest, rsa_key: SigningKey,
                ed25519_key: SigningKey) -> SigningKey:
    return rsa_key if request.param == "rsa-2048" else ed25519_key
