"""Mutual authentication with a pre-shared key: AES-CMAC over a role label and the session ID.

Each side sends `key id (8) | tag (16)` in one CMAC_TAG message, where

    tag    = AES-CMAC(PSK, "tcpcrypt-auth v1 cmac" | 0x00 | role label | 0x00 | session ID)
    key id = AES-CMAC(PSK, "tcpcrypt-auth v1 cmac key-id")[:8]

and checks the other side's tag for the peer's role over its own session ID: one round trip,
both sides send first. A different key id means the peer holds another PSK (`WrongPsk`); the
right key id with a wrong tag means the peer's session ID is not ours (`SessionIdMismatch`, a
man in the middle, who cannot forge a tag for either of its two sessions without the PSK).
The key id travels inside the encrypted session, like the tag.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

from tcpcrypt.auth.errors import AuthConfigError, SessionIdMismatch, WrongPsk
from tcpcrypt.auth.session import Role, SessionIdSource, guarded, session_id_of
from tcpcrypt.auth.wire import BodyReader, MessageType, StreamLike, receive_message, send_message

DOMAIN = b"tcpcrypt-auth v1 cmac"
KEY_ID_LENGTH = 8
TAG_LENGTH = 16


def _cmac(psk: bytes, message: bytes) -> bytes:
    mac = CMAC(algorithms.AES(psk))
    mac.update(message)
    return mac.finalize()


def check_psk(psk: bytes) -> None:
    if len(psk) not in (16, 24, 32):
        raise AuthConfigError(f"the PSK must be an AES key of 16, 24 or 32 bytes, not {len(psk)}")


def cmac_tag(psk: bytes, role: Role, session_id: bytes) -> bytes:
    return _cmac(psk, DOMAIN + b"\x00" + role.label + b"\x00" + session_id)


def key_id(psk: bytes) -> bytes:
    return _cmac(psk, DOMAIN + b" key-id")[:KEY_ID_LENGTH]


def encode_cmac_body(psk: bytes, role: Role, session_id: bytes) -> bytes:
    return key_id(psk) + cmac_tag(psk, role, session_id)


def parse_cmac_body(body: bytes) -> tuple[bytes, bytes]:
    """(key id, tag); MessageMalformed unless the body is exactly those two fields."""
    reader = BodyReader(body)
    peer_key_id = reader.take(KEY_ID_LENGTH, "key id")
    tag = reader.take(TAG_LENGTH, "tag")
    reader.finish()
    return peer_key_id, tag


def authenticate_cmac(stream: StreamLike, psk: bytes, role: Role, *,
                      session_id: SessionIdSource | None = None,
                      timeout: float | None = 10.0) -> bytes:
    """Prove and check knowledge of `psk` bound to this connection's session ID.

    Returns the authenticated session ID; on any failure closes `stream` and raises the
    matching `AuthError`.
    """
    check_psk(psk)
    with guarded(stream, timeout):
        sid = session_id_of(stream, session_id)
        send_message(stream, MessageType.CMAC_TAG, encode_cmac_body(psk, role, sid))
        peer_key_id, tag = parse_cmac_body(receive_message(stream, MessageType.CMAC_TAG))
        if not hmac.compare_digest(peer_key_id, key_id(psk)):
            raise WrongPsk("the peer's pre-shared key differs from ours")
        if not hmac.compare_digest(tag, cmac_tag(psk, role.peer, sid)):
            raise SessionIdMismatch("the peer's CMAC does not cover our session ID")
    return sid
