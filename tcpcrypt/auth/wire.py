"""Framing shared by every authentication method: versioned, length-prefixed, strictly parsed.

A message is `version (1) | type (1) | body length (2, big-endian) | body`. The version is 1;
an unknown version or type, or a body longer than `MAX_BODY`, is `MessageMalformed`; the
connection ending inside a message is `MessageTruncated`. A body is read by `BodyReader`,
which refuses short fields and trailing bytes alike. A side that gives up sends `REJECT`
(body: its reason tag; not on an unencrypted connection) before closing, so the other side
gets `PeerRejected` instead of a bare end of stream.
"""

from __future__ import annotations

import contextlib
import enum
import socket
import struct
from typing import Protocol

from tcpcrypt.auth.errors import (
    AuthError,
    AuthTimeout,
    MessageMalformed,
    MessageTruncated,
    NoSessionId,
    PeerRejected,
)

VERSION = 1
HEADER = struct.Struct("!BBH")
MAX_BODY = 8192
MAX_REASON = 64


class MessageType(enum.IntEnum):
    CMAC_TAG = 0x01
    PAKE_MESSAGE = 0x02
    PAKE_CONFIRM = 0x03
    BATCH_PROOF = 0x04
    REJECT = 0x7F


class StreamLike(Protocol):
    """What the auth library needs of a connection: a connected socket or anything like it."""

    def sendall(self, data: bytes, /) -> None | int: ...

    def recv(self, size: int, /) -> bytes: ...

    def close(self) -> None: ...


def encode_message(kind: MessageType, body: bytes) -> bytes:
    if len(body) > MAX_BODY:
        raise ValueError(f"message body of {len(body)} bytes exceeds {MAX_BODY}")
    return HEADER.pack(VERSION, kind, len(body)) + body


def parse_header(header: bytes) -> tuple[MessageType, int]:
    """(type, body length) from the 4 header bytes; MessageMalformed if they are not ours."""
    version, kind, length = HEADER.unpack(header)
    if version != VERSION:
        raise MessageMalformed(f"unknown message version {version}")
    try:
        message_type = MessageType(kind)
    except ValueError:
        raise MessageMalformed(f"unknown message type 0x{kind:02x}") from None
    if length > MAX_BODY:
        raise MessageMalformed(f"body length {length} exceeds {MAX_BODY}")
    return message_type, length


def _read_exactly(stream: StreamLike, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        try:
            chunk = stream.recv(size - len(data))
        except TimeoutError:
            raise AuthTimeout("no authentication message from the peer in time") from None
        except OSError as error:
            raise MessageTruncated(f"connection failed after {len(data)} bytes: {error}") from None
        if not chunk:
            raise MessageTruncated(f"connection ended after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def send_message(stream: StreamLike, kind: MessageType, body: bytes) -> None:
    stream.sendall(encode_message(kind, body))


def receive_message(stream: StreamLike, expected: MessageType) -> bytes:
    """The body of the next message, which must be of type `expected` (or a REJECT)."""
    kind, length = parse_header(_read_exactly(stream, HEADER.size))
    body = _read_exactly(stream, length)
    if kind is MessageType.REJECT:
        reason = body[:MAX_REASON].decode("ascii", "replace")
        raise PeerRejected(reason if reason.isprintable() else "unprintable reason")
    if kind is not expected:
        raise MessageMalformed(f"expected {expected.name}, got {kind.name}")
    return body


def reject_and_close(stream: StreamLike, error: AuthError) -> None:
    """Tell the peer why (best effort), then close: nothing more is read or written."""
    if not isinstance(error, PeerRejected | MessageTruncated | NoSessionId):
        with contextlib.suppress(OSError):
            send_message(stream, MessageType.REJECT, error.reason.encode("ascii")[:MAX_REASON])
    shutdown = getattr(stream, "shutdown", None)
    if callable(shutdown):
        with contextlib.suppress(OSError):
            shutdown(socket.SHUT_RDWR)
    stream.close()


class BodyReader:
    """Strict reader of one message body: every field must be there, nothing may be left."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._offset = 0

    def take(self, size: int, what: str) -> bytes:
        end = self._offset + size
        if end > len(self._body):
            raise MessageMalformed(f"body too short for {what}")
        field = self._body[self._offset : end]
        self._offset = end
        return field

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        value: int = struct.unpack("!H", self.take(2, what))[0]
        return value

    def u32(self, what: str) -> int:
        value: int = struct.unpack("!I", self.take(4, what))[0]
        return value

    def prefixed(self, what: str) -> bytes:
        """A field preceded by its 2-byte length."""
        return self.take(self.u16(f"length of {what}"), what)

    def finish(self) -> None:
        if self._offset != len(self._body):
            raise MessageMalformed(f"{len(self._body) - self._offset} trailing bytes in body")


def prefixed(field: bytes) -> bytes:
    """`field` preceded by its 2-byte length (the writer's half of `BodyReader.prefixed`)."""
    return struct.pack("!H", len(field)) + field
