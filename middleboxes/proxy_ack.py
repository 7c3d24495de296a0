"""proxy-ack: acknowledges data to the sender on the receiver's behalf and forwards it, as
performance-enhancing proxies do. The ACK it makes up looks like the receiver's last segment
(its window and, when the flow uses them, timestamps echoing the data). The real receiver's
ACKs still pass, so the sender sees each acknowledgement earlier, sometimes twice."""

from __future__ import annotations

from dataclasses import replace

from middleboxes.base import Action, Direction, FlowKey, Forward, Inject, Middlebox, flow_key
from packets.tcp import ACK, FIN, SYN, TcpPacket, build_packet
from packets.tcp_options import KIND_TIMESTAMPS, TcpOption

MOD = 1 << 32


class ProxyAck(Middlebox):
    name = "proxy-ack"

    def __init__(self) -> None:
        super().__init__()
        self.params: dict[str, object] = {}
        # per flow and direction of travel: (window, TSval) of the last segment seen
        self._last: dict[tuple[FlowKey, Direction], tuple[int, bytes | None]] = {}

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        key = flow_key(packet, direction)
        timestamps = packet.option(KIND_TIMESTAMPS)
        self._last[(key, direction)] = (packet.window, timestamps[2:6] if timestamps else None)
        actions: list[Action] = [Forward(packet.raw)]
        length = len(packet.payload) + (1 if packet.flags & FIN else 0)
        receiver = self._last.get((key, direction.reverse))
        if length == 0 or packet.flags & SYN or not packet.flags & ACK or receiver is None:
            return actions
        window, receiver_tsval = receiver
        options = []
        if timestamps and receiver_tsval is not None:
            options.append(TcpOption(KIND_TIMESTAMPS,
                                     bytes([8, 10]) + receiver_tsval + timestamps[2:6]))
        ip = replace(packet.ip, src=packet.ip.dst, dst=packet.ip.src, options=b"",
                     header_length=20)
        ack = build_packet(
            ip, src_port=packet.dst_port, dst_port=packet.src_port, seq=packet.ack,
            ack=(packet.seq + length) % MOD, flags=ACK, window=window, options=options,
        )
        self.stats["proxied-acks"] += 1
        actions.append(Inject(ack, direction.reverse))
        return actions
