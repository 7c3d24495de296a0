"""Frames between server processes and their shared signer (`shared_signer`), over a Unix
stream socket on one host.

Every frame is `kind (1) | request (4) | batch (4) | leaf (4) | stamp (8) | length (2) |
payload`, where `stamp` is the sender's CLOCK_MONOTONIC in nanoseconds when the event
happened (one clock for every process of the host), so the signer may read frames late and
still time its schedule by when things happened:

- SIGN (worker -> signer): `request` is the worker's number for it, payload the session ID,
  `stamp` when the connection asked.
- PROOF (signer -> worker): the answer to `request`; `batch` numbers the signed batch and `leaf`
  is the ID's index in it; payload is the encoded BATCH_PROOF body (`batch_proof.encode_proof`),
  ready to send to the client as it is.
- FAILED (signer -> worker): `request` could not be signed; payload a short ASCII reason.
- DELIVERED (worker -> signer): the proof (`batch`, `leaf`) has been written to its client
  at `stamp` (what the signer's schedule learns its close-to-sent margin from; no payload).

`FrameReader` cuts a byte stream into frames and refuses anything malformed (a peer process
that sends garbage is dropped, never trusted).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

HEAD = struct.Struct("!BIIIQH")
MAX_PAYLOAD = 8192


class FrameKind(enum.IntEnum):
    SIGN = 1
    PROOF = 2
    FAILED = 3
    DELIVERED = 4


class SignerProtocolError(ValueError):
    """A frame that is not one of ours (unknown kind, payload too long)."""


@dataclass(frozen=True, slots=True)
class Frame:
    kind: FrameKind
    request: int = 0
    batch: int = 0
    leaf: int = 0
    payload: bytes = b""
    stamp_ns: int = 0


def encode_frame(frame: Frame) -> bytes:
    if len(frame.payload) > MAX_PAYLOAD:
        raise SignerProtocolError(f"payload of {len(frame.payload)} bytes")
    return HEAD.pack(frame.kind, frame.request, frame.batch, frame.leaf, frame.stamp_ns,
                     len(frame.payload)) + frame.payload


class FrameReader:
    """Accumulates received bytes and yields the whole frames among them."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        offset = 0
        while len(self._buffer) - offset >= HEAD.size:
            kind, request, batch, leaf, stamp, length = HEAD.unpack_from(self._buffer, offset)
            if length > MAX_PAYLOAD:
                raise SignerProtocolError(f"payload length {length}")
            try:
                frame_kind = FrameKind(kind)
            except ValueError:
                raise SignerProtocolError(f"unknown frame kind {kind}") from None
            end = offset + HEAD.size + length
            if end > len(self._buffer):
                break
            frames.append(Frame(frame_kind, request, batch, leaf,
                                bytes(self._buffer[offset + HEAD.size:end]), stamp))
            offset = end
        del self._buffer[:offset]
        return frames
