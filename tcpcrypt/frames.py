"""tcpcrypt frames: one direction's byte stream sealed into length-prefixed AEAD frames.

Frame = length (2 bytes, big-endian, the ciphertext length including the 16-byte tag) |
ciphertext | tag. The plaintext is a control byte followed by application data; the associated
data is the length field. Believed RFC behaviour (one function each, listed in
docs/protocol.md): the nonce is FRAME_NONCE_MAGIC followed by the 64-bit offset of the frame in
this direction's stream of frames; a frame carrying the rekey flag is the first frame sealed
under the next generation's key.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from cryptography.exceptions import InvalidTag

from tcpcrypt.aead import AeadCipher, AeadSpec
from tcpcrypt.constants import AEAD_TAG_LENGTH, CONTROL_REKEY, FRAME_NONCE_MAGIC
from tcpcrypt.errors import AuthenticationError, DecodeError, PeerError, UsageError

DEFAULT_MAX_FRAME_PLAINTEXT: Final = 16384
_LENGTH = struct.Struct(">H")
_NONCE = struct.Struct(">IQ")
_MIN_CIPHERTEXT: Final = 1 + AEAD_TAG_LENGTH
_MAX_CIPHERTEXT: Final = 0xFFFF


def frame_nonce(offset: int) -> bytes:
    """The 12-byte nonce of the frame that starts `offset` bytes into its direction's stream."""
    return _NONCE.pack(FRAME_NONCE_MAGIC, offset)


class FrameSealer:
    """Seals application data into frames for one direction."""

    def __init__(
        self,
        aead: AeadSpec,
        key_for_generation: Callable[[int], bytes],
        max_frame_plaintext: int = DEFAULT_MAX_FRAME_PLAINTEXT,
    ) -> None:
        if not 1 <= max_frame_plaintext <= _MAX_CIPHERTEXT - _MIN_CIPHERTEXT:
            raise UsageError(f"max_frame_plaintext {max_frame_plaintext} out of range")
        self._aead = aead
        self._key_for_generation = key_for_generation
        self._max = max_frame_plaintext
        self._generation = 0
        self._cipher: AeadCipher = aead.new(key_for_generation(0))
        self._offset = 0

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def offset(self) -> int:
        """Bytes of frames sealed so far in this direction."""
        return self._offset

    def seal(self, data: bytes, rekey: bool = False) -> bytearray:
        """Exactly one frame holding `data`; with `rekey`, the first frame under the next key."""
        if len(data) > self._max:
            raise UsageError(f"{len(data)} bytes exceed the frame limit of {self._max}")
        control = b"\x00"
        if rekey:
            self._generation += 1
            self._cipher = self._aead.new(self._key_for_generation(self._generation))
            control = bytes((CONTROL_REKEY,))
        ciphertext_length = len(data) + _MIN_CIPHERTEXT
        frame = bytearray(2 + ciphertext_length)
        _LENGTH.pack_into(frame, 0, ciphertext_length)
        self._cipher.encrypt_into(
            frame_nonce(self._offset), control + data, frame[:2], memoryview(frame)[2:]
        )
        self._offset += len(frame)
        return frame

    def seal_stream(self, data: bytes) -> bytes | bytearray:
        """Frames for data of any length, each holding at most the frame limit."""
        if len(data) <= self._max:
            return self.seal(data)
        view = memoryview(data)
        return b"".join(
            self.seal(bytes(view[start : start + self._max]))
            for start in range(0, len(data), self._max)
        )


class FrameOpener:
    """Opens one direction's frames as they arrive, in pieces of any size.

    On any error the opener raises and is dead from then on; plaintext of frames completed
    earlier in the same `feed` call is lost with it (the connection is reset anyway).
    """

    def __init__(
        self,
        aead: AeadSpec,
        key_for_generation: Callable[[int], bytes],
        max_frame_length: int = DEFAULT_MAX_FRAME_PLAINTEXT + _MIN_CIPHERTEXT,
    ) -> None:
        self._aead = aead
        self._key_for_generation = key_for_generation
        self._max = max_frame_length
        self._generation = 0
        self._cipher: AeadCipher = aead.new(key_for_generation(0))
        self._next_cipher: AeadCipher | None = None
        self._offset = 0
        self._buffer = bytearray()
        self._dead = False

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def offset(self) -> int:
        """Bytes of frames opened so far in this direction."""
        return self._offset

    def feed(self, data: bytes | bytearray) -> list[bytearray]:
        """The application data of every frame completed by `data`."""
        if self._dead:
            raise UsageError("the frame opener failed earlier and accepts no more input")
        if self._buffer:
            self._buffer += data
            data = bytes(self._buffer)
            self._buffer.clear()
        view = memoryview(data)
        end = len(data)
        position = 0
        delivered: list[bytearray] = []
        try:
            while end - position >= 2:
                (length,) = _LENGTH.unpack_from(view, position)
                if length < _MIN_CIPHERTEXT:
                    raise DecodeError("frame-too-short", f"ciphertext length {length}")
                if length > self._max:
                    raise DecodeError("frame-too-long", f"ciphertext length {length}")
                if end - position < 2 + length:
                    break
                delivered.append(self._open(view[position : position + 2 + length]))
                position += 2 + length
        except PeerError:
            self._dead = True
            raise
        self._buffer += view[position:]
        return delivered

    def _open(self, frame: memoryview) -> bytearray:
        nonce = frame_nonce(self._offset)
        ad = frame[:2]
        body = frame[2:]
        plaintext = bytearray(len(body) - AEAD_TAG_LENGTH)
        try:
            self._cipher.decrypt_into(nonce, body, ad, plaintext)
            rekeyed = False
        except InvalidTag:
            # A frame with the rekey flag is sealed under the next generation's key.
            if self._next_cipher is None:
                self._next_cipher = self._aead.new(self._key_for_generation(self._generation + 1))
            try:
                self._next_cipher.decrypt_into(nonce, body, ad, plaintext)
            except InvalidTag:
                raise AuthenticationError("bad-tag", f"frame at offset {self._offset}") from None
            rekeyed = True
        control = plaintext[0]
        if control & ~CONTROL_REKEY:
            raise PeerError("reserved-control-bits", f"control byte 0x{control:02x}")
        if rekeyed != bool(control & CONTROL_REKEY):
            raise PeerError("bad-rekey", "rekey flag and key generation disagree")
        if rekeyed:
            assert self._next_cipher is not None
            self._cipher = self._next_cipher
            self._next_cipher = None
            self._generation += 1
        self._offset += len(frame)
        del plaintext[:1]  # cheap: CPython drops a bytearray's head without copying
        return plaintext
