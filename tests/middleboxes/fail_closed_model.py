"""A test-only fail-closed middlebox, loaded as a plugin: it resets every connection whose
SYN carries TCP-ENO (kind 69), as a firewall that refuses unknown options would, and declares
so (`EnoEffect.BLOCKED`): a broken tcpcrypt cell across it is the expected outcome."""

from __future__ import annotations

from middleboxes.base import Action, Direction, EnoEffect, Forward, Inject, Middlebox
from packets.ipv4 import IPv4Header
from packets.tcp import ACK, RST, TcpPacket, build_packet

ENO_KIND = 69


class ResetEnoSyns(Middlebox):
    name = "reset-eno-syns"

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        if not packet.is_syn() or packet.option(ENO_KIND) is None:
            return [Forward(packet.raw)]
        self.stats["reset"] += 1
        ip = packet.ip
        reply = IPv4Header(20, 0, 0, 0, 0x4000, 64, 6, 0, ip.dst, ip.src)
        reset = build_packet(reply, src_port=packet.dst_port, dst_port=packet.src_port, seq=0,
                             ack=(packet.seq + 1) % (1 << 32), flags=RST | ACK, window=0)
        return [Inject(reset, direction.reverse)]

    def eno_effect(self, port: int) -> EnoEffect:
        return EnoEffect.BLOCKED
