"""Rewriting fixed-size fields of an IPv4/TCP packet in place, with the checksums updated
incrementally (RFC 1624: HC' = ~(~HC + ~m + m') per changed 16-bit word) instead of summed
again over the whole packet: a 64 KB super-packet costs the same as a SYN.

The TCP checksum covers the pseudo-header, so a changed address updates it too. A packet whose
TCP checksum is still partial (a super-packet from a host with checksum offload: the field
holds the pseudo-header sum) comes out with a field an engine must set again; the bridge
engine does that for every packet a model changed (`middleboxes.engines.vnet.outgoing`).
"""

from __future__ import annotations

from packets.tcp import TcpPacket


def _update(checksum: int, old: bytes, new: bytes) -> int:
    """The checksum after the 16-bit words `old` became `new` (equal, even lengths)."""
    total = ~checksum & 0xFFFF
    for index in range(0, len(old), 2):
        total += (~int.from_bytes(old[index:index + 2], "big") & 0xFFFF)
        total += int.from_bytes(new[index:index + 2], "big")
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def patch_fields(packet: TcpPacket, *, src: bytes | None = None, dst: bytes | None = None,
                 src_port: int | None = None, dst_port: int | None = None,
                 seq: int | None = None, ack: int | None = None) -> bytes:
    """`packet` with the given addresses, ports, sequence or acknowledgement number, its IPv4
    header checksum and TCP checksum updated incrementally."""
    raw = bytearray(packet.raw)
    ihl = packet.ip.header_length
    ip_changes: list[tuple[int, bytes]] = []
    tcp_changes: list[tuple[int, bytes]] = []
    if src is not None:
        ip_changes.append((12, src))
    if dst is not None:
        ip_changes.append((16, dst))
    for offset, value in ((0, src_port), (2, dst_port)):
        if value is not None:
            tcp_changes.append((ihl + offset, value.to_bytes(2, "big")))
    for offset, value in ((4, seq), (8, ack)):
        if value is not None:
            tcp_changes.append((ihl + offset, (value & 0xFFFFFFFF).to_bytes(4, "big")))
    ip_checksum = int.from_bytes(raw[10:12], "big")
    tcp_checksum = int.from_bytes(raw[ihl + 16:ihl + 18], "big")
    for offset, new in ip_changes:  # addresses: in the IP header and the pseudo-header
        old = bytes(raw[offset:offset + len(new)])
        ip_checksum = _update(ip_checksum, old, new)
        tcp_checksum = _update(tcp_checksum, old, new)
        raw[offset:offset + len(new)] = new
    for offset, new in tcp_changes:
        old = bytes(raw[offset:offset + len(new)])
        tcp_checksum = _update(tcp_checksum, old, new)
        raw[offset:offset + len(new)] = new
    raw[10:12] = ip_checksum.to_bytes(2, "big")
    raw[ihl + 16:ihl + 18] = tcp_checksum.to_bytes(2, "big")
    return bytes(raw)
