"""The TCP header (RFC 9293) inside an IPv4 packet: parse, edit options, fix checksums."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from packets.checksum import internet_checksum, ones_complement_sum
from packets.errors import MalformedPacket
from packets.ipv4 import PROTOCOL_TCP, IPv4Header, parse_ipv4
from packets.tcp_options import KIND_EOL, KIND_NOP, TcpOption, encode_options, parse_options

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10
_FIXED = struct.Struct(">HHIIBBHHH")
MIN_HEADER: Final = 20


@dataclass(frozen=True, slots=True)
class TcpPacket:
    """An IPv4 packet carrying a TCP segment, with the fields people look at parsed."""

    ip: IPv4Header
    src_port: int
    dst_port: int
    seq: int
    ack: int
    header_length: int
    flags: int
    window: int
    checksum: int
    urgent: int
    options_raw: bytes
    raw: bytes

    @property
    def payload(self) -> bytes:
        """The segment's data (sliced from `raw` on demand: forwarding never copies it)."""
        return self.raw[self.ip.header_length + self.header_length :]

    @property
    def options(self) -> list[TcpOption]:
        return parse_options(self.options_raw)

    def option(self, kind: int) -> bytes | None:
        """The whole wire form of the first option of `kind`, or None."""
        return next((o.raw for o in self.options if o.kind == kind), None)

    def is_syn(self) -> bool:
        return self.flags & (SYN | ACK) == SYN

    def is_synack(self) -> bool:
        return self.flags & (SYN | ACK) == SYN | ACK


def parse_packet(packet: bytes | bytearray | memoryview) -> TcpPacket:
    ip = parse_ipv4(packet)
    if ip.protocol != PROTOCOL_TCP:
        raise MalformedPacket("not-tcp", f"IP protocol {ip.protocol}")
    if ip.is_fragment:
        raise MalformedPacket("ipv4-fragment")
    segment = memoryview(packet)[ip.header_length : ip.total_length]
    if len(segment) < MIN_HEADER:
        raise MalformedPacket("tcp-truncated", f"{len(segment)} bytes")
    src, dst, seq, ack, offset, flags, window, checksum, urgent = _FIXED.unpack_from(segment)
    header_length = (offset >> 4) * 4
    if header_length < MIN_HEADER or header_length > len(segment):
        raise MalformedPacket("tcp-bad-offset", f"data offset {header_length}")
    options_raw = bytes(segment[MIN_HEADER:header_length])
    parse_options(options_raw)  # strict: refuse options that run past the header
    if isinstance(packet, bytes) and len(packet) == ip.total_length:
        raw = packet
    else:
        raw = bytes(packet[: ip.total_length])
    return TcpPacket(
        ip, src, dst, seq, ack, header_length, flags, window, checksum, urgent, options_raw, raw
    )


def build_packet(
    ip: IPv4Header, *, src_port: int, dst_port: int, seq: int, ack: int, flags: int,
    window: int, urgent: int = 0, options: Iterable[TcpOption] = (), payload: bytes = b"",
) -> bytes:
    """A whole IPv4/TCP packet from its fields, with correct lengths and checksums."""
    options_raw = encode_options(options)
    header_length = MIN_HEADER + len(options_raw)
    tcp = _FIXED.pack(
        src_port, dst_port, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (header_length // 4) << 4,
        flags, window, 0, urgent,
    ) + options_raw + payload
    total = ip.header_length + len(tcp)
    header = IPv4Header(
        ip.header_length, ip.tos, total, ip.identification, ip.flags_fragment, ip.ttl,
        PROTOCOL_TCP, 0, ip.src, ip.dst, ip.options,
    ).with_checksum()
    return fix_checksums(header.to_bytes() + tcp)


def rebuild(packet: TcpPacket, **changes: object) -> bytes:
    """`packet` with some TCP fields (or options/payload) changed; checksums fixed."""
    fields: dict[str, object] = {
        "ip": packet.ip, "src_port": packet.src_port, "dst_port": packet.dst_port,
        "seq": packet.seq, "ack": packet.ack, "flags": packet.flags, "window": packet.window,
        "urgent": packet.urgent, "options": packet.options, "payload": packet.payload,
    }
    unknown = set(changes) - set(fields)
    if unknown:
        raise TypeError(f"unknown TCP fields: {', '.join(sorted(unknown))}")
    fields.update(changes)
    ip = fields.pop("ip")
    return build_packet(ip, **fields)  # type: ignore[arg-type]


def set_tcp_option(packet: TcpPacket, option: TcpOption) -> bytes:
    """Add `option`, replacing any option of the same kind (ValueError if it cannot fit)."""
    kept = [o for o in packet.options if o.kind != option.kind]
    return rebuild(packet, options=[*kept, option])


def remove_tcp_options(packet: TcpPacket, kinds: Iterable[int]) -> bytes:
    drop = set(kinds)
    return rebuild(packet, options=[o for o in packet.options if o.kind not in drop])


def nop_tcp_options(packet: TcpPacket, kinds: Iterable[int]) -> bytes:
    """The packet with every option of `kinds` overwritten by NOPs in place: the header keeps
    its length, the other options their offsets and the original padding (unlike
    `remove_tcp_options`, which rebuilds the list); checksums are fixed."""
    doomed = set(kinds)
    start = packet.ip.header_length + MIN_HEADER
    edited = bytearray(packet.raw)
    options = packet.options_raw
    position = 0
    while position < len(options) and options[position] != KIND_EOL:
        if options[position] == KIND_NOP:
            position += 1
            continue
        length = options[position + 1]  # parse_packet has checked every length
        if options[position] in doomed:
            edited[start + position : start + position + length] = bytes([KIND_NOP]) * length
        position += length
    return fix_checksums(edited) if edited != packet.raw else packet.raw


def _pseudo_header_sum(ip: IPv4Header, tcp_length: int) -> int:
    return ones_complement_sum(ip.src + ip.dst + bytes((0, PROTOCOL_TCP)) +
                               tcp_length.to_bytes(2, "big"))


def fix_checksums(packet: bytes | bytearray) -> bytes:
    """The packet with correct IPv4 header and TCP checksums (the explicit fix-up step)."""
    ip = parse_ipv4(packet)
    fixed = bytearray(packet[: ip.total_length])
    header = ip.with_checksum()
    fixed[10:12] = header.checksum.to_bytes(2, "big")
    tcp_start = ip.header_length
    fixed[tcp_start + 16 : tcp_start + 18] = b"\x00\x00"
    tcp_length = ip.total_length - tcp_start
    checksum = internet_checksum(fixed[tcp_start:], _pseudo_header_sum(ip, tcp_length))
    fixed[tcp_start + 16 : tcp_start + 18] = checksum.to_bytes(2, "big")
    return bytes(fixed)


def checksums_ok(packet: bytes | bytearray) -> bool:
    """Whether both the IPv4 header checksum and the TCP checksum verify."""
    ip = parse_ipv4(packet)
    if internet_checksum(bytes(packet[: ip.header_length])) != 0:
        return False
    tcp_length = ip.total_length - ip.header_length
    segment = packet[ip.header_length : ip.total_length]
    return internet_checksum(segment, _pseudo_header_sum(ip, tcp_length)) == 0
