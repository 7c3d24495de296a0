"""The drafts' key exchange: ECDHE keys with a length prefix, Init1/Init2, the key schedule.

* A public key is a 2-byte big-endian length (counting itself) then the uncompressed point:
  67 bytes for P-256, 135 for P-521. The shared secret is the ECDH x-coordinate.
* Init1 = magic 0x15101A0E, 4-byte length of the whole message, AEAD count, one byte per AEAD,
  N_A (32 bytes), A's key. Init2 = magic 0x097105E0, length, the chosen AEAD, N_B (32), B's key.
* ss = HKDF-Extract(salt = N_A, transcript | Init1 | Init2 | shared secret); the session ID is
  the TEP byte then CPRF(ss, 2, 32); mk = CPRF(ss, 3, 32); A's key = CPRF(mk, 4, 32) and B's
  key = CPRF(mk, 5, 32), each cut to the AEAD's key length.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from tcpcrypt.aead import AeadSpec, aead_by_id
from tcpcrypt.errors import DecodeError, PeerError, UsageError
from tcpcrypt.key_schedule import cprf, extract
from tcpcrypt.suites import NistCurveSuite, suite_for_tep

INIT1_MAGIC: Final = 0x15101A0E
INIT2_MAGIC: Final = 0x097105E0
NONCE_LENGTH: Final = 32
SECRET_LENGTH: Final = 32
CONST_NEXTK: Final = 0x01
CONST_SESSID: Final = 0x02
CONST_REKEY: Final = 0x03
CONST_KEY_A: Final = 0x04
CONST_KEY_B: Final = 0x05
DRAFT_TEPS: Final = (0x21, 0x22)  # ECDHE P-256, P-521: the drafts' ECDHE suites
DRAFT_AEADS: Final = (0x01, 0x02)  # AES-128-GCM, AES-256-GCM (8-byte nonces)
_HEADER: Final = struct.Struct(">II")  # magic, length
MAX_INIT_LENGTH: Final = 1500


def draft_suite(tep: int) -> NistCurveSuite:
    """The core's ECDHE suite for a draft TEP; PeerError("unknown-tep") for any other."""
    if tep not in DRAFT_TEPS:
        raise PeerError("unknown-tep", f"TEP 0x{tep:02x} is not a draft ECDHE suite")
    suite = suite_for_tep(tep)
    assert isinstance(suite, NistCurveSuite)
    return suite


def draft_aead(wire_id: int) -> AeadSpec:
    if wire_id not in DRAFT_AEADS:
        raise PeerError("unknown-aead", f"AEAD 0x{wire_id:02x} is not one the drafts frame")
    return aead_by_id(wire_id)


def encode_key(point: bytes) -> bytes:
    return struct.pack(">H", len(point) + 2) + point


def decode_key(data: bytes, suite: NistCurveSuite) -> bytes:
    """The point inside a length-prefixed key; DecodeError unless the prefix and size fit."""
    if len(data) != suite.pk_a_length + 2 or struct.unpack(">H", data[:2])[0] != len(data):
        raise DecodeError("bad-public-key", f"a {suite.name} key has {suite.pk_a_length + 2} "
                                            f"bytes with that length first, got {len(data)}")
    return bytes(data[2:])


def message_length(prefix: bytes, magic: int) -> int:
    """The whole message's length from its first 8 bytes; DecodeError for a wrong magic or a
    length outside 9..MAX_INIT_LENGTH."""
    found, length = _HEADER.unpack(prefix[: _HEADER.size])
    length = int(length)
    if found != magic:
        raise DecodeError("bad-magic", f"expected 0x{magic:08x}, got 0x{found:08x}")
    if not _HEADER.size + 1 <= length <= MAX_INIT_LENGTH:
        raise DecodeError("bad-length", f"Init length {length}")
    return length


@dataclass(frozen=True, slots=True)
class Init1:
    aeads: tuple[int, ...]
    nonce: bytes
    point: bytes


@dataclass(frozen=True, slots=True)
class Init2:
    aead: int
    nonce: bytes
    point: bytes


def encode_init1(aeads: tuple[int, ...], nonce: bytes, point: bytes) -> bytes:
    if not 1 <= len(aeads) <= 255 or len(nonce) != NONCE_LENGTH:
        raise UsageError("Init1 needs 1..255 AEADs and a 32-byte nonce")
    body = bytes((len(aeads), *aeads)) + nonce + encode_key(point)
    return _HEADER.pack(INIT1_MAGIC, _HEADER.size + len(body)) + body


def parse_init1(message: bytes, suite: NistCurveSuite) -> Init1:
    length = message_length(message, INIT1_MAGIC)
    count = message[_HEADER.size]
    key_at = _HEADER.size + 1 + count + NONCE_LENGTH
    if length != len(message) or len(message) != key_at + suite.pk_a_length + 2:
        raise DecodeError("bad-length", f"Init1 of {len(message)} bytes for {count} AEADs")
    aeads = tuple(message[_HEADER.size + 1: _HEADER.size + 1 + count])
    return Init1(aeads, bytes(message[key_at - NONCE_LENGTH: key_at]),
                 decode_key(message[key_at:], suite))


def encode_init2(aead: int, nonce: bytes, point: bytes) -> bytes:
    if len(nonce) != NONCE_LENGTH:
        raise UsageError("Init2 needs a 32-byte nonce")
    body = bytes((aead,)) + nonce + encode_key(point)
    return _HEADER.pack(INIT2_MAGIC, _HEADER.size + len(body)) + body


def parse_init2(message: bytes, suite: NistCurveSuite) -> Init2:
    length = message_length(message, INIT2_MAGIC)
    key_at = _HEADER.size + 1 + NONCE_LENGTH
    if length != len(message) or len(message) != key_at + suite.pk_b_length + 2:
        raise DecodeError("bad-length", f"Init2 of {len(message)} bytes")
    return Init2(message[_HEADER.size], bytes(message[_HEADER.size + 1: key_at]),
                 decode_key(message[key_at:], suite))


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """What one full exchange yields: the session ID, each direction's key, ss[1]."""

    session_id: bytes
    key_a: bytes
    key_b: bytes
    next_secret: bytes


def derive_keys(*, transcript: bytes, init1: bytes, init2: bytes, shared: bytes,
                nonce_a: bytes, tep: int, aead: AeadSpec) -> SessionKeys:
    ss = extract(nonce_a, transcript + init1 + init2 + shared)
    mk = cprf(ss, CONST_REKEY, SECRET_LENGTH)
    return SessionKeys(
        session_id=bytes((tep,)) + cprf(ss, CONST_SESSID, SECRET_LENGTH),
        key_a=cprf(mk, CONST_KEY_A, SECRET_LENGTH)[: aead.key_length],
        key_b=cprf(mk, CONST_KEY_B, SECRET_LENGTH)[: aead.key_length],
        next_secret=cprf(ss, CONST_NEXTK, SECRET_LENGTH),
    )
