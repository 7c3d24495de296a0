"""Password mutual authentication: SPAKE2 (the `spake2` package) bound to the session ID.

Flow (client = SPAKE2 side A, server = side B; the identities are the role labels):

    client -> server   PAKE_MESSAGE  SPAKE2 message A (33 bytes)
    server -> client   PAKE_MESSAGE  SPAKE2 message B (33 bytes)
                       PAKE_CONFIRM  server's confirmation
    client -> server   PAKE_CONFIRM  client's confirmation (only if the server's checked out)

A confirmation is `password tag (32) | session tag (32)` with K the SPAKE2 key,

    password tag = HMAC-SHA256(K, "tcpcrypt-auth v1 pake password" | 0x00 | role label)
    session tag  = HMAC-SHA256(K, "tcpcrypt-auth v1 pake session" | 0x00 | role label | 0x00 | SID)

A wrong password gives a different K on the two sides (`WrongPassword`); the right password
over two different session IDs (a relay in the middle) fails only the session tag
(`SessionIdMismatch`). The client speaks its confirmation only after checking the server's, so
a phishing server gets nothing but SPAKE2's first message, which reveals nothing about the
password: it can test one guess per connection, online, and no more. SPAKE2 itself resists
offline guessing by an attacker who sees or injects messages.
"""

from __future__ import annotations

import hashlib
import hmac

from spake2 import SPAKE2_A, SPAKE2_B

from tcpcrypt.auth.errors import (
    AuthConfigError,
    MessageMalformed,
    SessionIdMismatch,
    WrongPassword,
)
from tcpcrypt.auth.session import Role, SessionIdSource, guarded, session_id_of
from tcpcrypt.auth.wire import (
    BodyReader,
    MessageType,
    StreamLike,
    encode_message,
    receive_message,
    send_message,
)

DOMAIN = b"tcpcrypt-auth v1 pake"
SPAKE2_MESSAGE_LENGTH = 33
TAG_LENGTH = 32
ID_CLIENT = DOMAIN + b" " + Role.CLIENT.label
ID_SERVER = DOMAIN + b" " + Role.SERVER.label


def _tag(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def confirmation(key: bytes, role: Role, session_id: bytes) -> bytes:
    password_tag = _tag(key, DOMAIN + b" password\x00" + role.label)
    session_tag = _tag(key, DOMAIN + b" session\x00" + role.label + b"\x00" + session_id)
    return password_tag + session_tag


def parse_confirmation(body: bytes) -> tuple[bytes, bytes]:
    reader = BodyReader(body)
    password_tag = reader.take(TAG_LENGTH, "password tag")
    session_tag = reader.take(TAG_LENGTH, "session tag")
    reader.finish()
    return password_tag, session_tag


def check_confirmation(body: bytes, key: bytes, peer: Role, session_id: bytes) -> None:
    password_tag, session_tag = parse_confirmation(body)
    expected = confirmation(key, peer, session_id)
    if not hmac.compare_digest(password_tag, expected[:TAG_LENGTH]):
        raise WrongPassword("the peer used a different password")
    if not hmac.compare_digest(session_tag, expected[TAG_LENGTH:]):
        raise SessionIdMismatch("the peer's PAKE confirmation is for another session ID")


def _password_bytes(password: str | bytes) -> bytes:
    secret = password.encode("utf-8") if isinstance(password, str) else bytes(password)
    if not secret:
        raise AuthConfigError("the password must not be empty")
    return secret


def _finish(side: object, body: bytes) -> bytes:
    reader = BodyReader(body)
    message = reader.take(SPAKE2_MESSAGE_LENGTH, "SPAKE2 message")
    reader.finish()
    try:
        key: bytes = side.finish(message)  # type: ignore[attr-defined]
    except Exception as error:  # the package raises several types for a bad element
        raise MessageMalformed(f"bad SPAKE2 message: {type(error).__name__}") from None
    return key


def pake_client(stream: StreamLike, password: str | bytes, *,
                session_id: SessionIdSource | None = None,
                timeout: float | None = 10.0) -> bytes:
    """The client's side: returns the session ID once the server proved the password over it."""
    secret = _password_bytes(password)
    with guarded(stream, timeout):
        sid = session_id_of(stream, session_id)
        side = SPAKE2_A(secret, idA=ID_CLIENT, idB=ID_SERVER)
        send_message(stream, MessageType.PAKE_MESSAGE, side.start())
        key = _finish(side, receive_message(stream, MessageType.PAKE_MESSAGE))
        check_confirmation(receive_message(stream, MessageType.PAKE_CONFIRM), key,
                           Role.SERVER, sid)
        send_message(stream, MessageType.PAKE_CONFIRM, confirmation(key, Role.CLIENT, sid))
    return sid


def pake_server(stream: StreamLike, password: str | bytes, *,
                session_id: SessionIdSource | None = None,
                timeout: float | None = 10.0) -> bytes:
    """The server's side: returns the session ID once the client proved the password over it."""
    secret = _password_bytes(password)
    with guarded(stream, timeout):
        sid = session_id_of(stream, session_id)
        side = SPAKE2_B(secret, idA=ID_CLIENT, idB=ID_SERVER)
        message_b = side.start()
        key = _finish(side, receive_message(stream, MessageType.PAKE_MESSAGE))
        stream.sendall(
            encode_message(MessageType.PAKE_MESSAGE, message_b)
            + encode_message(MessageType.PAKE_CONFIRM, confirmation(key, Role.SERVER, sid))
        )
        check_confirmation(receive_message(stream, MessageType.PAKE_CONFIRM), key,
                           Role.CLIENT, sid)
    return sid
