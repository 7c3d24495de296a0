"""One direction of a tcpcrypt stream, re-encrypted in flight for the `tcpcrypt-mitm` model.

A man in the middle that keeps the endpoints' sequence numbers must turn every input byte
into exactly one output byte as the segments go by, without waiting for whole frames (a frame
can span more segments than the sender may have in flight). tcpcrypt allows it: the Init
message it replaces has the same length as its own, and AES-GCM is counter mode, so a frame's
body is re-encrypted byte by byte (input keystream off, output keystream on: both are known to
the model, which holds both sessions' keys), and only the 16-byte tag at the frame's end needs
the whole plaintext, which has arrived by then. Frame nonces count frame bytes from the start
of the direction, equal on both sides because the lengths are. AES-GCM only, no rekeying.

Bytes already rewritten are kept so that a retransmitted segment gets the same bytes again; a
segment beyond the next expected byte is refused (its sender retransmits it in order).
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tcpcrypt.constants import AEAD_TAG_LENGTH
from tcpcrypt.frames import frame_nonce

FIRST_BODY_COUNTER = (2).to_bytes(4, "big")  # GCM: counter 1 masks the tag, the body from 2


class RewriteError(ValueError):
    """The stream cannot be rewritten (an unexpected Init length or a frame too short)."""


def _keystream(key: bytes, nonce: bytes) -> Callable[[int], bytes]:
    encryptor = Cipher(algorithms.AES(key), modes.CTR(nonce + FIRST_BODY_COUNTER)).encryptor()
    return lambda length: encryptor.update(bytes(length))


def _xor(left: bytes, right: bytes) -> bytes:
    value = int.from_bytes(left, "big") ^ int.from_bytes(right, "big")
    return value.to_bytes(len(left), "big")


class StreamRewriter:
    """Input stream (one direction, from its start) -> output stream of the same length.

    `init_in` receives the sender's Init message bytes (fed to the session facing the
    sender); `init_out()` gives ours for the other side, once known; `keys()` gives (input key,
    output key) once both sessions are established.
    """

    def __init__(self, init_in: Callable[[bytes], None], init_out: Callable[[], bytes | None],
                 keys: Callable[[], tuple[bytes, bytes] | None]) -> None:
        self._init_in = init_in
        self._init_out = init_out
        self._keys = keys
        self._init: bytes | None = None
        self.output = bytearray()  # every byte rewritten so far (offset 0 = stream start)
        self._header = bytearray()
        self._body_left = 0
        self._tag_left = 0
        self._frame_start = 0  # offset of the current frame among the frame bytes
        self._frame_bytes = 0
        self._plaintext = bytearray()
        self._tag_out = b""
        self._stream_in: Callable[[int], bytes] | None = None
        self._stream_out: Callable[[int], bytes] | None = None
        self._out_key = b""

    @property
    def received(self) -> int:
        return len(self.output)

    def rewrite(self, offset: int, data: bytes) -> bytes | None:
        """The output bytes for input `data` at stream `offset`; None if it leaves a gap."""
        if offset > self.received:
            return None
        new_from = self.received - offset
        if new_from < len(data):
            self._consume(data[new_from:])
        return bytes(self.output[offset : offset + len(data)])

    def _consume(self, data: bytes) -> None:
        position = 0
        while position < len(data):
            if self._init is None:
                self._init = self._init_out()
                if self._init is None:
                    raise RewriteError("no Init message of our own to put in its place")
            if self.received < len(self._init):
                take = min(len(data) - position, len(self._init) - self.received)
                self._init_in(data[position : position + take])
                self.output += self._init[self.received : self.received + take]
                position += take
            else:
                position += self._frame_bytes_in(data[position:])

    def _frame_bytes_in(self, data: bytes) -> int:
        """Rewrite a prefix of `data` within the current frame; returns its length."""
        if self._body_left == 0 and self._tag_left == 0:
            take = min(len(data), 2 - len(self._header))
            self._header += data[:take]
            self.output += data[:take]
            if len(self._header) == 2:
                self._start_body(int.from_bytes(self._header, "big"))
            return take
        if self._body_left:
            assert self._stream_in is not None and self._stream_out is not None
            chunk = data[: self._body_left]
            plain = _xor(chunk, self._stream_in(len(chunk)))
            self._plaintext += plain
            self.output += _xor(plain, self._stream_out(len(chunk)))
            self._body_left -= len(chunk)
            if self._body_left == 0:
                sealed = AESGCM(self._out_key).encrypt(
                    frame_nonce(self._frame_start), bytes(self._plaintext), bytes(self._header))
                self._tag_out = sealed[-AEAD_TAG_LENGTH:]
            return len(chunk)
        chunk = data[: self._tag_left]
        start = AEAD_TAG_LENGTH - self._tag_left
        self.output += self._tag_out[start : start + len(chunk)]
        self._tag_left -= len(chunk)
        if self._tag_left == 0:
            self._frame_start += 2 + int.from_bytes(self._header, "big")
            self._header.clear()
        return len(chunk)

    def _start_body(self, length: int) -> None:
        keys = self._keys()
        if keys is None:
            raise RewriteError("a frame arrived before both sessions had keys")
        if length < 1 + AEAD_TAG_LENGTH:
            raise RewriteError(f"frame of {length} bytes")
        key_in, self._out_key = keys
        nonce = frame_nonce(self._frame_start)
        self._stream_in, self._stream_out = _keystream(key_in, nonce), _keystream(
            self._out_key, nonce)
        self._body_left = length - AEAD_TAG_LENGTH
        self._tag_left = AEAD_TAG_LENGTH
        self._plaintext.clear()
