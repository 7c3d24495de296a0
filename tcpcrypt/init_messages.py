"""Init1 and Init2, the tcpcrypt key-exchange messages (RFC 8548), and their stream parsing.

    Init1 = INIT1_MAGIC (4) | length (4) | nciphers (1) | AEAD ids (1 byte each) | N_A (32) |
            PK_A | ignored trailer
    Init2 = INIT2_MAGIC (4) | length (4) | chosen AEAD id (1) | N_B (32) | PK_B | ignored trailer

`length` is big-endian and counts the whole message, its 8 header bytes included; whatever lies
between the public key and `length` is a trailer the receiver ignores (but hashes: the key
schedule takes the messages exactly as they were on the wire, so `raw` keeps them).

The parsers read from the front of a stream buffer: they return None ("need more bytes") until
a whole message is there, and raise `DecodeError` as soon as the bytes seen prove the message
bad: a wrong magic (checked byte by byte), a length field above `MAX_INIT_MESSAGE` or below the
smallest possible message, or an Init1 listing no AEAD.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from tcpcrypt.constants import AEAD_ID_LENGTH, INIT1_MAGIC, INIT2_MAGIC, NONCE_LENGTH
from tcpcrypt.errors import DecodeError, UsageError

MAX_INIT_MESSAGE: Final = 2048
"""Project limit on an Init message's length field. The largest message this project sends is
an Init1 offering 255 AEADs with a 256-byte RSA key (552 bytes); the limit leaves room for a
peer's trailer while bounding what a peer can make us buffer before the keys exist."""

HEADER_LENGTH: Final = 8
_HEADER: Final = struct.Struct(">II")
_INIT1_MAGIC_BYTES: Final = INIT1_MAGIC.to_bytes(4, "big")
_INIT2_MAGIC_BYTES: Final = INIT2_MAGIC.to_bytes(4, "big")
_MAX_AEAD_ID: Final = (1 << (8 * AEAD_ID_LENGTH)) - 1

Buffer = bytes | bytearray | memoryview
"""What the parsers read from: the front of a receive buffer."""


@dataclass(frozen=True, slots=True)
class Init1:
    """A's key-exchange message: the AEADs it offers, N_A, PK_A; `raw` is the exact wire bytes."""

    aead_ids: tuple[int, ...]
    nonce: bytes
    public_key: bytes
    trailer: bytes
    raw: bytes


@dataclass(frozen=True, slots=True)
class Init2:
    """B's key-exchange message: the AEAD it chose, N_B, PK_B; `raw` is the exact wire bytes."""

    aead_id: int
    nonce: bytes
    public_key: bytes
    trailer: bytes
    raw: bytes


def encode_init1(
    aead_ids: Sequence[int], nonce: bytes, public_key: bytes, trailer: bytes = b""
) -> Init1:
    """Init1 offering `aead_ids` (in preference order); UsageError for impossible fields."""
    if not 0 < len(aead_ids) < 256:
        raise UsageError(f"Init1 carries 1 to 255 AEAD identifiers, not {len(aead_ids)}")
    for aead_id in aead_ids:
        _check_aead_id(aead_id)
    _check_nonce(nonce, "N_A")
    ids = b"".join(aead_id.to_bytes(AEAD_ID_LENGTH, "big") for aead_id in aead_ids)
    body = bytes((len(aead_ids),)) + ids + nonce + public_key + trailer
    return Init1(tuple(aead_ids), nonce, public_key, trailer, _with_header(INIT1_MAGIC, body))


def encode_init2(aead_id: int, nonce: bytes, public_key: bytes, trailer: bytes = b"") -> Init2:
    """Init2 choosing `aead_id`; UsageError for impossible fields."""
    _check_aead_id(aead_id)
    _check_nonce(nonce, "N_B")
    body = aead_id.to_bytes(AEAD_ID_LENGTH, "big") + nonce + public_key + trailer
    return Init2(aead_id, nonce, public_key, trailer, _with_header(INIT2_MAGIC, body))


def try_parse_init1(buffer: Buffer, pk_length: int) -> tuple[Init1, int] | None:
    """Init1 from the front of `buffer` and the number of bytes it used, or None if incomplete.

    `pk_length` is the negotiated suite's PK_A length.
    """
    _check_pk_length(pk_length)
    _check_magic(buffer, _INIT1_MAGIC_BYTES)
    count = 1  # until the count byte arrives, assume the smallest legal message
    if len(buffer) > HEADER_LENGTH:
        count = buffer[HEADER_LENGTH]
        if count == 0:
            raise DecodeError("no-ciphers", "Init1 lists no AEAD")
    ids_end = HEADER_LENGTH + 1 + count * AEAD_ID_LENGTH
    key_start = ids_end + NONCE_LENGTH
    key_end = key_start + pk_length
    raw = _whole_message(buffer, key_end)
    if raw is None:
        return None
    ids = tuple(
        int.from_bytes(raw[start : start + AEAD_ID_LENGTH], "big")
        for start in range(HEADER_LENGTH + 1, ids_end, AEAD_ID_LENGTH)
    )
    message = Init1(ids, raw[ids_end:key_start], raw[key_start:key_end], raw[key_end:], raw)
    return message, len(raw)


def try_parse_init2(buffer: Buffer, pk_length: int) -> tuple[Init2, int] | None:
    """Init2 from the front of `buffer` and the number of bytes it used, or None if incomplete.

    `pk_length` is the negotiated suite's PK_B length.
    """
    _check_pk_length(pk_length)
    _check_magic(buffer, _INIT2_MAGIC_BYTES)
    nonce_start = HEADER_LENGTH + AEAD_ID_LENGTH
    key_start = nonce_start + NONCE_LENGTH
    key_end = key_start + pk_length
    raw = _whole_message(buffer, key_end)
    if raw is None:
        return None
    aead_id = int.from_bytes(raw[HEADER_LENGTH:nonce_start], "big")
    message = Init2(aead_id, raw[nonce_start:key_start], raw[key_start:key_end], raw[key_end:], raw)
    return message, len(raw)


def _check_magic(buffer: Buffer, magic: bytes) -> None:
    """DecodeError as soon as any byte of the magic seen so far is wrong."""
    seen = bytes(buffer[: len(magic)])
    if seen != magic[: len(seen)]:
        raise DecodeError("bad-init-magic", f"0x{seen.hex()}, want 0x{magic.hex()}")


def _whole_message(buffer: Buffer, minimum: int) -> bytes | None:
    """The message at the front of `buffer` once complete; DecodeError for a bad length."""
    if len(buffer) < HEADER_LENGTH:
        return None
    _, length = _HEADER.unpack_from(buffer)
    if length > MAX_INIT_MESSAGE:
        raise DecodeError("init-too-long", f"{length} bytes, limit {MAX_INIT_MESSAGE}")
    if length < minimum:
        raise DecodeError("init-too-short", f"{length} bytes, at least {minimum} needed")
    if len(buffer) < length:
        return None
    return bytes(buffer[:length])


def _with_header(magic: int, body: bytes) -> bytes:
    length = HEADER_LENGTH + len(body)
    if length > MAX_INIT_MESSAGE:
        raise UsageError(f"Init message of {length} bytes exceeds {MAX_INIT_MESSAGE}")
    return _HEADER.pack(magic, length) + body


def _check_aead_id(aead_id: int) -> None:
    if not 0 <= aead_id <= _MAX_AEAD_ID:
        raise UsageError(f"AEAD id {aead_id} does not fit in {AEAD_ID_LENGTH} bytes")


def _check_nonce(nonce: bytes, field: str) -> None:
    if len(nonce) != NONCE_LENGTH:
        raise UsageError(f"{field} must be {NONCE_LENGTH} bytes, got {len(nonce)}")


def _check_pk_length(pk_length: int) -> None:
    if pk_length < 0:
        raise UsageError(f"negative public-key length {pk_length}")
