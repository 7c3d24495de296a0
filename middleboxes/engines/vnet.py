"""The virtio-net header that AF_PACKET sockets with PACKET_VNET_HDR put before each frame, and
what an engine does with it when the hosts keep their segmentation and checksum offloads.

With offloads on, a host hands its NIC (here: its veth) TCP super-packets of up to 64 KB and
leaves their TCP checksum partial: the checksum field holds the folded, uncomplemented sum of
the pseudo-header, and the header says where the sum starts and where it goes
(`NEEDS_CSUM`, `csum_start`, `csum_offset`) and how to cut the packet into wire segments
(`gso_type` TCPV4, `gso_size` payload bytes per segment). An engine reading such a packet
through AF_PACKET gets the header first; writing the header back unchanged with the packet
lets the kernel segment and checksum it on the way out.

Everything here is sans-IO, on IPv4 packets (no Ethernet header):

- `VnetHeader.parse` / `.to_bytes`: the 10-byte header (little-endian on this machine kind).
- `split_super_packet`: a super-packet cut into the wire segments the kernel would send (for
  models that act per segment), each with a partial checksum.
- `outgoing`: the header (and fixed-up packet) for a packet a model built or changed: its TCP
  checksum becomes partial again (cheap: only the pseudo-header is summed), and a packet
  longer than the MTU becomes a super-packet for the kernel to segment.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from packets.checksum import internet_checksum, ones_complement_sum

HEADER_BYTES: Final = 10
NEEDS_CSUM: Final = 1
DATA_VALID: Final = 2
GSO_NONE: Final = 0
GSO_TCPV4: Final = 1
GSO_ECN: Final = 0x80
TCP_CHECKSUM_OFFSET: Final = 16
ETH_HEADER: Final = 14  # csum_start and hdr_len count from the start of the Ethernet frame
_HEADER = struct.Struct("<BBHHHH")
FIN, PSH, CWR = 0x01, 0x08, 0x80


@dataclass(frozen=True, slots=True)
class VnetHeader:
    flags: int = 0
    gso_type: int = GSO_NONE
    hdr_len: int = 0
    gso_size: int = 0
    csum_start: int = 0
    csum_offset: int = 0

    @classmethod
    def parse(cls, raw: bytes | bytearray | memoryview) -> VnetHeader:
        return cls(*_HEADER.unpack_from(raw))

    def to_bytes(self) -> bytes:
        return _HEADER.pack(self.flags, self.gso_type, self.hdr_len, self.gso_size,
                            self.csum_start, self.csum_offset)

    @property
    def is_super_packet(self) -> bool:
        return self.gso_type & ~GSO_ECN != GSO_NONE


PLAIN: Final = VnetHeader().to_bytes()  # a packet whose checksums are complete


def pseudo_header_sum(packet: bytes | bytearray | memoryview, tcp_length: int) -> int:
    """The folded, uncomplemented sum of the IPv4 pseudo-header (what a partial TCP checksum
    holds until the kernel or NIC completes it)."""
    return ones_complement_sum(bytes(packet[12:20]) + bytes((0, 6)) +
                               tcp_length.to_bytes(2, "big"))


def _ip_header(header: bytearray, total_length: int, identification: int) -> None:
    header[2:4] = total_length.to_bytes(2, "big")
    header[4:6] = (identification & 0xFFFF).to_bytes(2, "big")
    header[10:12] = b"\x00\x00"
    header[10:12] = internet_checksum(header).to_bytes(2, "big")


def split_super_packet(packet: bytes, gso_size: int) -> list[bytes]:
    """The wire segments of an IPv4/TCP super-packet, as the kernel's TCP segmentation cuts
    them: `gso_size` payload bytes each, consecutive sequence numbers and IP identifiers,
    FIN and PSH on the last segment only, CWR on the first only; each with a correct IP
    header checksum and a partial TCP checksum (send them with `partial_header`)."""
    ihl = (packet[0] & 0x0F) * 4
    thl = (packet[ihl + 12] >> 4) * 4
    total = int.from_bytes(packet[2:4], "big")
    headers = ihl + thl
    payload_length = total - headers
    if gso_size <= 0 or payload_length <= gso_size:
        return [packet]
    identification = int.from_bytes(packet[4:6], "big")
    seq = int.from_bytes(packet[ihl + 4:ihl + 8], "big")
    flags = packet[ihl + 13]
    segments = []
    count = (payload_length + gso_size - 1) // gso_size
    for index in range(count):
        start = headers + index * gso_size
        end = min(start + gso_size, total)
        ip = bytearray(packet[:ihl])
        _ip_header(ip, ihl + thl + end - start, identification + index)
        tcp = bytearray(packet[ihl:headers])
        tcp[4:8] = ((seq + index * gso_size) & 0xFFFFFFFF).to_bytes(4, "big")
        segment_flags = flags
        if index < count - 1:
            segment_flags &= ~(FIN | PSH)
        if index > 0:
            segment_flags &= ~CWR
        tcp[13] = segment_flags
        tcp[16:18] = pseudo_header_sum(ip, thl + end - start).to_bytes(2, "big")
        segments.append(bytes(ip + tcp) + packet[start:end])
    return segments


def outgoing(packet: bytes, mtu: int, gso_size: int) -> tuple[bytes, bytes]:
    """(header, packet) to send a TCP packet a model built or changed, or a split segment.

    Its TCP checksum field is set to the pseudo-header sum and the header asks for the
    checksum (NEEDS_CSUM): the kernel, or the NIC, completes it, whatever the field held
    (a full checksum from a model's rebuild, a partial one from a split). A packet longer
    than `mtu` is a super-packet again: TCPV4 segmentation into `gso_size`-byte segments. The
    IP header checksum must be right already (models' rebuild and the split fix it)."""
    ihl = (packet[0] & 0x0F) * 4
    total = int.from_bytes(packet[2:4], "big")
    thl = (packet[ihl + 12] >> 4) * 4
    fixed = bytearray(packet)
    fixed[ihl + 16:ihl + 18] = pseudo_header_sum(packet, total - ihl).to_bytes(2, "big")
    super_packet = total > mtu and total - ihl - thl > gso_size > 0
    header = VnetHeader(
        flags=NEEDS_CSUM,
        gso_type=GSO_TCPV4 if super_packet else GSO_NONE,
        hdr_len=ETH_HEADER + ihl + thl,
        gso_size=gso_size if super_packet else 0,
        csum_start=ETH_HEADER + ihl,
        csum_offset=TCP_CHECKSUM_OFFSET,
    )
    return header.to_bytes(), bytes(fixed)


def completed(header: VnetHeader, packet: bytes) -> bytes:
    """`packet` (no Ethernet header) with a partial TCP checksum completed, as the kernel
    would complete it on a wire-sized packet; unchanged when none is pending. For tests and
    for reading captures."""
    if not header.flags & NEEDS_CSUM:
        return packet
    start = header.csum_start - ETH_HEADER
    where = start + header.csum_offset
    fixed = bytearray(packet[:int.from_bytes(packet[2:4], "big")])  # no Ethernet padding
    fixed[where:where + 2] = internet_checksum(fixed[start:]).to_bytes(2, "big")
    return bytes(fixed)
