"""tcpcrypt frames: one direction's byte stream sealed into length-prefixed AEAD frames.

    frame      = length (2 bytes, big-endian) | ciphertext | tag (16)
    length     = len(ciphertext) + 16 = 1 + len(data) + 16
    plaintext  = control byte | application data
    AD         = the 2-byte length field
    nonce      = FRAME_NONCE_MAGIC (4 bytes) | offset (8 bytes, big-endian)

Control bit 0x01 is the rekey flag; the other bits must be zero (else `reserved-control-bits`).

Believed RFC behaviour (each in one place, listed in docs/protocol.md):

* `frame_nonce`: the offset is the number of bytes of this direction's frames (length fields
  and tags included) sent before this frame: 0 for the first frame after the key exchange,
  Init messages not counted, not reset by rekeying. The reference implementation (tcpcryptd
  0.5, draft-02, redirect mode) counts the same bytes for its AEAD IV: the encrypted records
  it has sent, headers and tags included, starting once encryption is on.
* `FrameSealer.seal(rekey=True)`: the frame carrying the rekey flag is the first frame sealed
  under the next generation's key (our reading of RFC 8548's rekeying section: the flag marks
  the first use of the new key set; the RFC text could not be fetched to confirm it). The
  receiver cannot read the encrypted flag before decrypting, so it tries the current key and,
  if the tag fails, the next one; a frame that opens under the next key must carry the flag,
  and one that opens under the current key must not (`bad-rekey`).

Two implementations, the same bytes and errors: the Python classes below are the reference
(`PureFrameSealer` / `PureFrameOpener` always run them), and `tcpcrypt.native` has the same
classes in C (`tcpcrypt/native/frames.c`), where `seal`, `seal_stream` and `feed` are one C call
each with the AEAD run in place (no per-frame Python objects but the delivered bytearrays).
Constructing `FrameSealer` / `FrameOpener` gives the C ones (`NativeFrameSealer` /
`NativeFrameOpener`, subclasses of these) whenever `tcpcrypt.native` has them, i.e. unless the
extension is not built or TCPCRYPT_PURE_PYTHON is set; tests/protocol/test_native_frames.py
compares the two. The C classes need the C AEAD objects, which `AeadSpec.new` gives in that same
case.

Performance (Python classes): a frame costs one AEAD call, one copy of the data (control byte
+ data), and a few Python operations; nonces are packed by one precompiled struct, and
`seal_stream` encrypts every frame straight into one output buffer.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final, TypeVar

from cryptography.exceptions import InvalidTag

from tcpcrypt import native
from tcpcrypt.aead import AeadCipher, AeadSpec
from tcpcrypt.constants import (
    AEAD_TAG_LENGTH,
    CONTROL_REKEY,
    FRAME_LENGTH_FIELD,
    FRAME_NONCE_MAGIC,
    MAX_FRAME_CIPHERTEXT,
)
from tcpcrypt.errors import AuthenticationError, DecodeError, PeerError, UsageError

KeyForGeneration = Callable[[int], bytes]
"""The traffic key of generation j of one direction (e.g. `KeyChain.key_ab`)."""

FRAME_OVERHEAD: Final = FRAME_LENGTH_FIELD + 1 + AEAD_TAG_LENGTH
"""Bytes a frame adds to its data: length field, control byte, tag."""
MIN_FRAME_CIPHERTEXT: Final = 1 + AEAD_TAG_LENGTH
"""The smallest legal length field: a control byte and a tag, no data."""
DEFAULT_MAX_FRAME_PLAINTEXT: Final = 16384
"""Application bytes per frame by default (a full frame is 16,403 bytes on the wire)."""
MAX_FRAME_PLAINTEXT: Final = MAX_FRAME_CIPHERTEXT - MIN_FRAME_CIPHERTEXT
# The offset must fit the nonce's 64 bits; a frame may start at most this far into the stream.
_LAST_FRAME_OFFSET: Final = (1 << 64) - 1

_pack_length: Final = struct.Struct(">H").pack
_pack_nonce: Final = struct.Struct(">IQ").pack
_CONTROL_PLAIN: Final = b"\x00"
_CONTROL_REKEY: Final = bytes((CONTROL_REKEY,))
_RESERVED_CONTROL_BITS: Final = 0xFF & ~CONTROL_REKEY


def frame_nonce(offset: int) -> bytes:
    """The 12-byte nonce of the frame that starts `offset` bytes into its direction's frames."""
    return _pack_nonce(FRAME_NONCE_MAGIC, offset)


class FrameSealer:
    """Seals application data into frames for one direction.

    `keys(j)` gives this direction's key of generation j (k_ab[j] for A, k_ba[j] for B).
    `FrameSealer(...)` gives the C class when `tcpcrypt.native` has it (module docstring).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> FrameSealer:
        if cls is FrameSealer and _NATIVE_SEALER is not None:
            return _NATIVE_SEALER.__new__(_NATIVE_SEALER)
        return super().__new__(cls)

    def __init__(
        self,
        aead: AeadSpec,
        keys: KeyForGeneration,
        max_frame_plaintext: int = DEFAULT_MAX_FRAME_PLAINTEXT,
    ) -> None:
        if not 0 < max_frame_plaintext <= MAX_FRAME_PLAINTEXT:
            raise UsageError(
                f"max_frame_plaintext {max_frame_plaintext} out of range 1..{MAX_FRAME_PLAINTEXT}"
            )
        self._aead = aead
        self._keys = keys
        self._max = max_frame_plaintext
        self._generation = 0
        self._cipher: AeadCipher = aead.new(keys(0))
        self._offset = 0

    @property
    def max_frame_plaintext(self) -> int:
        """The most application bytes one frame carries."""
        return self._max

    @property
    def generation(self) -> int:
        """The key generation the last frame was sealed under (0 until the first rekey)."""
        return self._generation

    @property
    def offset(self) -> int:
        """Bytes of frames sealed so far in this direction: the next frame's nonce offset."""
        return self._offset

    def seal(self, data: bytes | bytearray | memoryview, rekey: bool = False) -> bytes:
        """Exactly one frame holding `data`; with `rekey`, the first frame under the next key."""
        size = len(data)
        if size > self._max:
            raise UsageError(f"{size} bytes exceed the frame limit of {self._max}")
        offset = self._offset
        if offset > _LAST_FRAME_OFFSET:
            raise UsageError("this direction's nonce space is exhausted")
        control = self._next_generation() if rekey else _CONTROL_PLAIN
        header = _pack_length(size + MIN_FRAME_CIPHERTEXT)
        self._offset = offset + size + FRAME_OVERHEAD
        return header + self._cipher.encrypt(
            _pack_nonce(FRAME_NONCE_MAGIC, offset), control + data, header
        )

    def seal_stream(self, data: bytes | bytearray | memoryview, rekey: bool = False) -> bytearray:
        """Frames for data of any length, each holding at most `max_frame_plaintext` bytes.

        All frames are written into one buffer (no joining). No data gives no frame, unless
        `rekey` asks for one: the first frame (empty if need be) then moves to the next key.
        """
        size = len(data)
        limit = self._max
        count = -(-size // limit) or (1 if rekey else 0)
        out = bytearray(size + count * FRAME_OVERHEAD)
        view = memoryview(out)
        source = memoryview(data)
        position = 0
        for index in range(count):
            chunk = source[index * limit : (index + 1) * limit]
            end = position + len(chunk) + FRAME_OVERHEAD
            self._seal_into(view[position:end], chunk, rekey and index == 0)
            position = end
        return out

    def _seal_into(
        self, frame: memoryview, data: bytes | bytearray | memoryview, rekey: bool
    ) -> None:
        """Write one frame holding `data` into `frame`, which is exactly the frame's length."""
        offset = self._offset
        if offset > _LAST_FRAME_OFFSET:
            raise UsageError("this direction's nonce space is exhausted")
        control = self._next_generation() if rekey else _CONTROL_PLAIN
        header = _pack_length(len(frame) - FRAME_LENGTH_FIELD)
        frame[:FRAME_LENGTH_FIELD] = header
        self._cipher.encrypt_into(
            _pack_nonce(FRAME_NONCE_MAGIC, offset), control + data, header,
            frame[FRAME_LENGTH_FIELD:],
        )
        self._offset = offset + len(frame)

    def _next_generation(self) -> bytes:
        """Move to the next key generation; the control byte of the frame that says so."""
        self._generation += 1
        self._cipher = self._aead.new(self._keys(self._generation))
        return _CONTROL_REKEY


class FrameOpener:
    """Opens one direction's frames as they arrive, in pieces of any size (one byte works).

    `keys(j)` gives the peer's key of generation j. `max_ciphertext_length` bounds the length
    field (`frame-too-long`); by default every length the 16-bit field can say is accepted, as
    a peer may frame its data larger than this end frames its own (docs/protocol.md). On any
    error `feed` raises and the opener is dead from then on
    (further calls raise UsageError); nothing of the failing frame is delivered, and frames
    completed earlier in the same `feed` call are dropped with it (the connection is reset).
    `FrameOpener(...)` gives the C class when `tcpcrypt.native` has it (module docstring).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> FrameOpener:
        if cls is FrameOpener and _NATIVE_OPENER is not None:
            return _NATIVE_OPENER.__new__(_NATIVE_OPENER)
        return super().__new__(cls)

    def __init__(
        self,
        aead: AeadSpec,
        keys: KeyForGeneration,
        max_ciphertext_length: int = MAX_FRAME_CIPHERTEXT,
    ) -> None:
        if not MIN_FRAME_CIPHERTEXT <= max_ciphertext_length <= MAX_FRAME_CIPHERTEXT:
            raise UsageError(f"max_ciphertext_length {max_ciphertext_length} out of range")
        self._aead = aead
        self._keys = keys
        self.max_ciphertext_length = max_ciphertext_length
        self._generation = 0
        self._cipher: AeadCipher = aead.new(keys(0))
        self._next_cipher: AeadCipher | None = None
        self._offset = 0
        self._pending = bytearray()
        self._dead = False

    @property
    def generation(self) -> int:
        """The peer's key generation of the last frame opened."""
        return self._generation

    @property
    def offset(self) -> int:
        """Bytes of frames opened so far in this direction."""
        return self._offset

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held until the rest arrives."""
        return len(self._pending)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytearray]:
        """The application data of every frame that `data` completes, in order."""
        if self._dead:
            raise UsageError("the frame opener failed earlier and accepts no more input")
        if self._pending:
            self._pending += data
            data, self._pending = self._pending, bytearray()
        view = memoryview(data)
        end = len(view)
        position = 0
        delivered: list[bytearray] = []
        try:
            while end - position >= FRAME_LENGTH_FIELD:
                length = (view[position] << 8) | view[position + 1]
                if length < MIN_FRAME_CIPHERTEXT or length > self.max_ciphertext_length:
                    raise self._bad_length(length)
                stop = position + FRAME_LENGTH_FIELD + length
                if stop > end:
                    break
                if self._offset > _LAST_FRAME_OFFSET:
                    raise PeerError("nonce-space-exhausted", "a frame past the 64-bit offset")
                plaintext = bytearray(length - AEAD_TAG_LENGTH)
                try:
                    self._cipher.decrypt_into(
                        _pack_nonce(FRAME_NONCE_MAGIC, self._offset),
                        view[position + FRAME_LENGTH_FIELD : stop],
                        view[position : position + FRAME_LENGTH_FIELD],
                        plaintext,
                    )
                except InvalidTag:
                    self._open_under_next_key(view[position:stop], plaintext)
                else:
                    if plaintext[0]:
                        raise _bad_control(plaintext[0])
                self._offset += stop - position
                del plaintext[:1]  # drops the control byte without copying the data
                delivered.append(plaintext)
                position = stop
        except PeerError:
            self._dead = True
            raise
        if position < end:
            self._pending = bytearray(view[position:])
        return delivered

    def _bad_length(self, length: int) -> DecodeError:
        if length < MIN_FRAME_CIPHERTEXT:
            return DecodeError("frame-too-short", f"ciphertext length {length}")
        return DecodeError(
            "frame-too-long", f"ciphertext length {length} > {self.max_ciphertext_length}"
        )

    def _open_under_next_key(self, frame: memoryview, plaintext: bytearray) -> None:
        """A frame that failed under the current key: the first one under the next key?

        Only a frame carrying the rekey flag may be; the opener then moves to that key.
        """
        if self._next_cipher is None:
            self._next_cipher = self._aead.new(self._keys(self._generation + 1))
        try:
            self._next_cipher.decrypt_into(
                _pack_nonce(FRAME_NONCE_MAGIC, self._offset),
                frame[FRAME_LENGTH_FIELD:],
                frame[:FRAME_LENGTH_FIELD],
                plaintext,
            )
        except InvalidTag:
            raise AuthenticationError("bad-tag", f"frame at offset {self._offset}") from None
        if plaintext[0] != CONTROL_REKEY:
            raise _bad_control(plaintext[0], rekeyed=True)
        self._cipher, self._next_cipher = self._next_cipher, None
        self._generation += 1


def _bad_control(control: int, rekeyed: bool = False) -> PeerError:
    """The error for a control byte that is not what the frame's key allows."""
    if control & _RESERVED_CONTROL_BITS:
        return PeerError("reserved-control-bits", f"control byte 0x{control:02x}")
    if rekeyed:
        return PeerError("bad-rekey", "a frame under the next key without the rekey flag")
    return PeerError("bad-rekey", "a rekey flag on a frame under the current key")


class PureFrameSealer(FrameSealer):
    """`FrameSealer`'s Python code whatever `tcpcrypt.native` has: the reference."""


class PureFrameOpener(FrameOpener):
    """`FrameOpener`'s Python code whatever `tcpcrypt.native` has: the reference."""


_Reference = TypeVar("_Reference")


def _native_class(core: type[Any] | None, reference: type[_Reference]) -> type[_Reference] | None:
    """The C class `core` as a subclass of `reference` (None when not built): its C methods
    and properties come first, and isinstance and type hints see a `reference`."""
    if core is None:
        return None
    return type(f"Native{reference.__name__}", (core, reference), {
        "__module__": __name__,
        "__doc__": f"{reference.__name__} with every call in C (tcpcrypt/native/frames.c).",
    })


_NATIVE_SEALER: type[FrameSealer] | None = _native_class(native.frame_sealer, FrameSealer)
_NATIVE_OPENER: type[FrameOpener] | None = _native_class(native.frame_opener, FrameOpener)
NativeFrameSealer = _NATIVE_SEALER
"""The C sealer class, or None when `tcpcrypt.native` has none."""
NativeFrameOpener = _NATIVE_OPENER
"""The C opener class, or None when `tcpcrypt.native` has none."""
