"""proxy-ack: acknowledges data to the sender on the receiver's behalf and forwards it, as
performance-enhancing proxies do. The real receiver's ACKs still pass; the sender sees each
acknowledgement earlier, sometimes twice."""

from __future__ import annotations

from dataclasses import replace

from middleboxes.base import Action, Direction, Forward, Inject, Middlebox
from packets.tcp import ACK, FIN, SYN, TcpPacket, build_packet

MOD = 1 << 32


class ProxyAck(Middlebox):
    name = "proxy-ack"

    def __init__(self) -> None:
        super().__init__()
        self.params: dict[str, object] = {}

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        actions: list[Action] = [Forward(packet.raw)]
        length = len(packet.payload) + (1 if packet.flags & FIN else 0)
        if length == 0 or packet.flags & SYN or not packet.flags & ACK:
            return actions
        ip = replace(packet.ip, src=packet.ip.dst, dst=packet.ip.src, options=b"",
                     header_length=20)
        ack = build_packet(
            ip, src_port=packet.dst_port, dst_port=packet.src_port, seq=packet.ack,
            ack=(packet.seq + length) % MOD, flags=ACK, window=packet.window,
        )
        self.stats["proxied-acks"] += 1
        actions.append(Inject(ack, direction.reverse))
        return actions
