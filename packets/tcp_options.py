"""TCP options (RFC 9293): the list inside a TCP header, parsed strictly and rebuilt padded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from packets.errors import MalformedPacket

KIND_EOL: Final = 0
KIND_NOP: Final = 1
KIND_MSS: Final = 2
KIND_WINDOW_SCALE: Final = 3
KIND_SACK_PERMITTED: Final = 4
KIND_SACK: Final = 5
KIND_TIMESTAMPS: Final = 8
MAX_OPTIONS_LENGTH: Final = 40


@dataclass(frozen=True, slots=True)
class TcpOption:
    """One option: its kind and its whole wire form (kind and length bytes included)."""

    kind: int
    raw: bytes


def parse_options(raw: bytes | bytearray | memoryview) -> list[TcpOption]:
    """Every option except NOP padding; parsing stops at EOL."""
    options: list[TcpOption] = []
    position = 0
    while position < len(raw):
        kind = raw[position]
        if kind == KIND_EOL:
            break
        if kind == KIND_NOP:
            position += 1
            continue
        if position + 1 >= len(raw):
            raise MalformedPacket("tcp-option-truncated", f"kind {kind} without a length")
        length = raw[position + 1]
        if length < 2 or position + length > len(raw):
            raise MalformedPacket("tcp-option-bad-length", f"kind {kind} length {length}")
        options.append(TcpOption(kind, bytes(raw[position : position + length])))
        position += length
    return options


def encode_options(options: Iterable[TcpOption]) -> bytes:
    """The options back to back, padded with EOL to a multiple of 4; ValueError if > 40."""
    body = b"".join(option.raw for option in options)
    padded = body + b"\x00" * (-len(body) % 4)
    if len(padded) > MAX_OPTIONS_LENGTH:
        raise ValueError(f"{len(padded)} bytes of TCP options exceed {MAX_OPTIONS_LENGTH}")
    return padded
