"""Init1 and Init2, the tcpcrypt key-exchange messages (RFC 8548), and their stream parsing.

Init1 = INIT1_MAGIC (4) | length (4, big-endian, the whole message) | number of AEADs (1) |
AEAD ids (2 bytes each, believed RFC behaviour) | N_A (32) | PK_A | ignored trailer.
Init2 = INIT2_MAGIC (4) | length (4) | chosen AEAD id (2) | N_B (32) | PK_B | ignored trailer.
The parsers read from the front of a stream buffer: they say "need more bytes" (None) until a
whole message is there, and refuse a bad magic or an impossible length as soon as it arrives.
The raw bytes are kept: the key schedule hashes the messages as they were on the wire.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from tcpcrypt.constants import AEAD_ID_LENGTH, INIT1_MAGIC, INIT2_MAGIC, NONCE_LENGTH
from tcpcrypt.errors import DecodeError, UsageError

MAX_INIT_MESSAGE: Final = 2048
_HEADER = struct.Struct(">II")


@dataclass(frozen=True, slots=True)
class Init1:
    aead_ids: tuple[int, ...]
    nonce: bytes
    public_key: bytes
    trailer: bytes
    raw: bytes


@dataclass(frozen=True, slots=True)
class Init2:
    aead_id: int
    nonce: bytes
    public_key: bytes
    trailer: bytes
    raw: bytes


def _header(magic: int, body: bytes) -> bytes:
    length = _HEADER.size + len(body)
    if length > MAX_INIT_MESSAGE:
        raise UsageError(f"Init message of {length} bytes exceeds {MAX_INIT_MESSAGE}")
    return _HEADER.pack(magic, length) + body


def encode_init1(
    aead_ids: Sequence[int], nonce: bytes, public_key: bytes, trailer: bytes = b""
) -> Init1:
    if not 0 < len(aead_ids) < 256:
        raise UsageError("Init1 carries 1 to 255 AEAD identifiers")
    if len(nonce) != NONCE_LENGTH:
        raise UsageError(f"N_A must be {NONCE_LENGTH} bytes")
    ids = b"".join(aead_id.to_bytes(AEAD_ID_LENGTH, "big") for aead_id in aead_ids)
    raw = _header(INIT1_MAGIC, bytes((len(aead_ids),)) + ids + nonce + public_key + trailer)
    return Init1(tuple(aead_ids), nonce, public_key, trailer, raw)


def encode_init2(aead_id: int, nonce: bytes, public_key: bytes, trailer: bytes = b"") -> Init2:
    if len(nonce) != NONCE_LENGTH:
        raise UsageError(f"N_B must be {NONCE_LENGTH} bytes")
    body = aead_id.to_bytes(AEAD_ID_LENGTH, "big") + nonce + public_key + trailer
    return Init2(aead_id, nonce, public_key, trailer, _header(INIT2_MAGIC, body))


def _frame(buffer: bytes, magic: int, minimum: int) -> bytes | None:
    """The whole message at the front of `buffer`, None if incomplete; DecodeError if bad."""
    if len(buffer) >= 4 and int.from_bytes(buffer[:4], "big") != magic:
        raise DecodeError("bad-init-magic", f"0x{int.from_bytes(buffer[:4], 'big'):08x}")
    if len(buffer) < _HEADER.size:
        return None
    _, length = _HEADER.unpack_from(buffer)
    if length > MAX_INIT_MESSAGE:
        raise DecodeError("init-too-long", f"{length} bytes")
    if length < minimum:
        raise DecodeError("init-too-short", f"{length} bytes, at least {minimum} needed")
    if len(buffer) < length:
        return None
    return bytes(buffer[:length])


def try_parse_init1(buffer: bytes, pk_length: int) -> tuple[Init1, int] | None:
    """Init1 from the front of `buffer` and the bytes it used, or None if incomplete."""
    _frame(buffer[:4], INIT1_MAGIC, 0)  # a bad magic is refused before anything else
    if len(buffer) > _HEADER.size and buffer[_HEADER.size] == 0:
        raise DecodeError("no-ciphers", "Init1 lists no AEAD")
    count = buffer[_HEADER.size] if len(buffer) > _HEADER.size else 1
    ids_end = _HEADER.size + 1 + count * AEAD_ID_LENGTH
    raw = _frame(buffer, INIT1_MAGIC, ids_end + NONCE_LENGTH + pk_length)
    if raw is None:
        return None
    ids = tuple(
        int.from_bytes(raw[i : i + AEAD_ID_LENGTH], "big")
        for i in range(_HEADER.size + 1, ids_end, AEAD_ID_LENGTH)
    )
    key_start = ids_end + NONCE_LENGTH
    key_end = key_start + pk_length
    message = Init1(ids, raw[ids_end:key_start], raw[key_start:key_end], raw[key_end:], raw)
    return message, len(raw)


def try_parse_init2(buffer: bytes, pk_length: int) -> tuple[Init2, int] | None:
    """Init2 from the front of `buffer` and the bytes it used, or None if incomplete."""
    nonce_start = _HEADER.size + AEAD_ID_LENGTH
    key_start = nonce_start + NONCE_LENGTH
    key_end = key_start + pk_length
    raw = _frame(buffer, INIT2_MAGIC, key_end)
    if raw is None:
        return None
    aead_id = int.from_bytes(raw[_HEADER.size : nonce_start], "big")
    message = Init2(aead_id, raw[nonce_start:key_start], raw[key_start:key_end], raw[key_end:], raw)
    return message, len(raw)
