"""The authentication a `tcpcrypt-*+METHOD` row runs over each library connection, both ends.

One place for both programs: `rr_server` builds a `ServerAuth` and runs it on every accepted
connection before it reads the request; `loadgen` builds a `ClientAuth` and runs it right after
the key exchange, before it sends the request, so the time to the first response byte includes
the method. Test material only: a fixed PSK (`cmac`), a fixed password (`pake`), and for
`batch-sign` an RSA-2048 key the server generates per run, whose public key it writes to a file
the client trusts. The batcher runs in the server process (its CPU counts as the server's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from tcpcrypt.auth import (
    Batcher,
    Role,
    SigningKey,
    authenticate_cmac,
    pake_client,
    pake_server,
    serve_batch_signed,
    verify_batch_signed,
)
from tcpcrypt.auth.signing import PublicKey

METHODS = ("cmac", "batch-sign", "pake")
TEST_PSK = b"tcpcrypt-testbed"  # a fixed 16-byte AES key, test only
TEST_PASSWORD = "tcpcrypt testbed test password"  # fixed, test only
BATCH_WINDOW_MS = 5.0  # a batch closes 5 ms after its first session ID, or at BATCH_MAX IDs
BATCH_MAX = 64
SIGNING_SCHEME = "rsa-2048"


def _check(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown authentication method {method!r} ({', '.join(METHODS)})")


class ServerAuth:
    """The server's side of `method`; for batch-sign a fresh key, its public key written to
    `public_key_out`, and one batcher shared by every connection."""

    def __init__(self, method: str, public_key_out: Path | None = None,
                 window_ms: float = BATCH_WINDOW_MS) -> None:
        _check(method)
        self.method = method
        self.batcher: Batcher | None = None
        if method == "batch-sign":
            if public_key_out is None:
                raise ValueError("batch-sign needs a file for the server's public key")
            key = SigningKey.generate(SIGNING_SCHEME)
            public_key_out.write_bytes(key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
            self.batcher = Batcher(key, max_batch=BATCH_MAX, window_s=window_ms / 1000)

    def __call__(self, stream: Any) -> bytes:
        """Authenticate `stream`'s session; its session ID, or AuthError (stream closed)."""
        if self.batcher is not None:
            return serve_batch_signed(stream, self.batcher)
        if self.method == "cmac":
            return authenticate_cmac(stream, TEST_PSK, Role.SERVER)
        return pake_server(stream, TEST_PASSWORD)


class ClientAuth:
    """The client's side of `method`; batch-sign trusts the key in `trusted_key_file`."""

    def __init__(self, method: str, trusted_key_file: Path | None = None) -> None:
        _check(method)
        self.method = method
        self.trusted: PublicKey | None = None
        if method == "batch-sign":
            if trusted_key_file is None:
                raise ValueError("batch-sign needs the server's public key file")
            loaded = serialization.load_pem_public_key(trusted_key_file.read_bytes())
            self.trusted = loaded  # type: ignore[assignment]  # checked by verify_batch_signed

    def __call__(self, stream: Any) -> bytes:
        """Authenticate `stream`'s session; its session ID, or AuthError (stream closed)."""
        if self.trusted is not None:
            return verify_batch_signed(stream, self.trusted)
        if self.method == "cmac":
            return authenticate_cmac(stream, TEST_PSK, Role.CLIENT)
        return pake_client(stream, TEST_PASSWORD)
