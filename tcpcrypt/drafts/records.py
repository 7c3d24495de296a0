"""The drafts' frames: a 3-byte header (control byte 0, then a 2-byte big-endian length of
everything after the header), sealed with the header as associated data, over a plaintext of a
flags byte (FIN 0x01, URG 0x02 followed by a 2-byte urgent pointer) then the data.

The AES-GCM nonce is 8 bytes: the count of frame bytes (headers and tags included) this
direction sent before the frame, as a 64-bit integer in the reference's host byte order
(little-endian on the x86 machines it runs on). A sender here frames at most 1,244 data bytes,
the most the reference reads at once; a receiver takes what the length field allows.
"""

from __future__ import annotations

import struct
from typing import Final

from cryptography.exceptions import InvalidTag

from tcpcrypt.aead import AeadSpec
from tcpcrypt.errors import AuthenticationError, DecodeError, UsageError

HEADER: Final = struct.Struct(">BH")
TAG_LENGTH: Final = 16
FLAG_FIN: Final = 0x01
FLAG_URG: Final = 0x02
MAX_SEND_DATA: Final = 1244
NONCE_BYTE_ORDER: Final = "little"


def frame_nonce(offset: int) -> bytes:
    return offset.to_bytes(8, NONCE_BYTE_ORDER)


class DraftSealer:
    """One direction's sender: frames data, counting the bytes it sent for the nonce."""

    def __init__(self, aead: AeadSpec, key: bytes) -> None:
        self._cipher = aead.new(key)
        self.offset = 0

    def seal(self, data: bytes, fin: bool = False) -> bytes:
        if len(data) > MAX_SEND_DATA:
            raise UsageError(f"a draft frame carries at most {MAX_SEND_DATA} data bytes")
        header = HEADER.pack(0, 1 + len(data) + TAG_LENGTH)
        plaintext = bytes((FLAG_FIN if fin else 0,)) + data
        frame = header + self._cipher.encrypt(frame_nonce(self.offset), plaintext, header)
        self.offset += len(frame)
        return frame

    def seal_all(self, data: bytes) -> bytes:
        return b"".join(self.seal(data[start:start + MAX_SEND_DATA])
                        for start in range(0, len(data), MAX_SEND_DATA))


class DraftOpener:
    """One direction's receiver: takes stream bytes, returns the data of each whole frame."""

    def __init__(self, aead: AeadSpec, key: bytes) -> None:
        self._cipher = aead.new(key)
        self.offset = 0
        self._buffer = bytearray()
        self.fin = False

    def feed(self, stream: bytes) -> bytes:
        """The data of the frames completed by `stream`; AuthenticationError/DecodeError on a
        forged or malformed frame (the connection must then be reset)."""
        self._buffer += stream
        out = bytearray()
        while len(self._buffer) >= HEADER.size:
            control, length = HEADER.unpack_from(self._buffer)
            if control != 0:
                raise DecodeError("bad-control", f"frame control byte 0x{control:02x}")
            if length < 1 + TAG_LENGTH:
                raise DecodeError("frame-too-short", f"frame length {length}")
            if len(self._buffer) < HEADER.size + length:
                break
            header = bytes(self._buffer[: HEADER.size])
            sealed = bytes(self._buffer[HEADER.size: HEADER.size + length])
            try:
                plaintext = self._cipher.decrypt(frame_nonce(self.offset), sealed, header)
            except InvalidTag:
                raise AuthenticationError("bad-tag", f"frame at offset {self.offset}") from None
            del self._buffer[: HEADER.size + length]
            self.offset += HEADER.size + length
            flags = plaintext[0]
            skip = 3 if flags & FLAG_URG else 1
            out += plaintext[skip:]
            self.fin = self.fin or bool(flags & FLAG_FIN)
        return bytes(out)
