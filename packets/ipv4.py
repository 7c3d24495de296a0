"""The IPv4 header (RFC 791): parse, serialise, header checksum."""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Final

from packets.checksum import internet_checksum
from packets.errors import MalformedPacket

PROTOCOL_TCP: Final = 6
_FIXED = struct.Struct(">BBHHHBBH4s4s")
MIN_HEADER: Final = 20


@dataclass(frozen=True, slots=True)
class IPv4Header:
    header_length: int  # bytes, options included
    tos: int
    total_length: int
    identification: int
    flags_fragment: int
    ttl: int
    protocol: int
    checksum: int
    src: bytes
    dst: bytes
    options: bytes = b""

    @property
    def is_fragment(self) -> bool:
        """More fragments set, or a non-zero fragment offset."""
        return bool(self.flags_fragment & 0x3FFF)

    def to_bytes(self) -> bytes:
        """The header as it stands (checksum field as stored)."""
        return _FIXED.pack(
            0x40 | (self.header_length // 4), self.tos, self.total_length, self.identification,
            self.flags_fragment, self.ttl, self.protocol, self.checksum, self.src, self.dst,
        ) + self.options

    def with_checksum(self) -> IPv4Header:
        """The same header with a correct header checksum."""
        unsummed = replace(self, checksum=0)
        return replace(self, checksum=internet_checksum(unsummed.to_bytes()))


def parse_ipv4(packet: bytes | bytearray | memoryview) -> IPv4Header:
    if len(packet) < MIN_HEADER:
        raise MalformedPacket("ipv4-truncated", f"{len(packet)} bytes")
    version_ihl, tos, total, ident, frag, ttl, proto, csum, src, dst = _FIXED.unpack_from(packet)
    if version_ihl >> 4 != 4:
        raise MalformedPacket("ipv4-bad-version", f"version {version_ihl >> 4}")
    header_length = (version_ihl & 0x0F) * 4
    if header_length < MIN_HEADER:
        raise MalformedPacket("ipv4-bad-ihl", f"header length {header_length}")
    if total < header_length or total > len(packet):
        raise MalformedPacket("ipv4-bad-length", f"total length {total} of {len(packet)} bytes")
    options = bytes(packet[MIN_HEADER:header_length])
    return IPv4Header(header_length, tos, total, ident, frag, ttl, proto, csum, src, dst, options)
