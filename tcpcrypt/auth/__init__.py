"""Authentication over the tcpcrypt session ID: the application's half of the paper's split.

tcpcrypt encrypts every connection without knowing who is at the other end; an application
that authenticates the session ID (the same bytes at both ends of one tcpcrypt session, and
different bytes on each side of a relay in the middle) rules out a man in the middle. Methods:

* `authenticate_cmac`: a pre-shared AES key, AES-CMAC over role and session ID, mutual;
* `serve_batch_signed` / `verify_batch_signed`: a server key (RSA-2048 PSS or Ed25519) signs a
  Merkle root over a batch of session IDs (`Batcher`), server authentication;
* `pake_client` / `pake_server`: a password (SPAKE2) whose confirmation binds the session ID,
  mutual;
* `tcpcrypt.auth.fallback`: an `ssl.SSLContext.wrap_socket`-shaped wrapper, tcpcrypt plus
  batch signing when the peer offers it, TLS otherwise;
* `tcpcrypt.auth.web`: WSGI/ASGI middleware exposing `TCP_CRYPT_SESSID`.

Every failure closes the connection and raises an `AuthError` subclass (see `errors`).
"""

from tcpcrypt.auth.batch_sign import serve_batch_signed, verify_batch_signed
from tcpcrypt.auth.batcher import Batcher
from tcpcrypt.auth.cmac import authenticate_cmac
from tcpcrypt.auth.errors import AuthError
from tcpcrypt.auth.pake import pake_client, pake_server
from tcpcrypt.auth.session import Role, daemon_session_id
from tcpcrypt.auth.signing import SigningKey

__all__ = [
    "AuthError",
    "Batcher",
    "Role",
    "SigningKey",
    "authenticate_cmac",
    "daemon_session_id",
    "pake_client",
    "pake_server",
    "serve_batch_signed",
    "verify_batch_signed",
]
