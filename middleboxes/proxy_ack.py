"""proxy-ack: acknowledges data to the sender on the receiver's behalf and forwards it, as
performance-enhancing proxies do.

The made-up ACK looks like the receiver's own: its timestamps echo the data, and its window
keeps the right edge the receiver last advertised (ack + window, window scale included), so
the sender never sends past what the receiver can take. The real receiver's ACKs still pass,
so the sender sees each acknowledgement earlier, sometimes twice.

What the proxy knows of a flow is forgotten `idle_s` after its last packet, `closed_s` after
it closed (RST, or FIN both ways), or when `max_flows` newer flows need room (flow_table.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from middleboxes.base import (
    Action,
    Direction,
    FlowKey,
    Forward,
    Inject,
    Middlebox,
    Scope,
    flow_key,
)
from middleboxes.flow_table import (
    CLOSED_S,
    FLOW_RANGES,
    IDLE_S,
    MAX_FLOWS,
    FlowTable,
    flow_params,
)
from packets.tcp import ACK, FIN, SYN, TcpPacket, build_packet
from packets.tcp_options import KIND_TIMESTAMPS, KIND_WINDOW_SCALE, TcpOption

MOD = 1 << 32


@dataclass
class _Sender:
    """What one side of a flow last said: window scale, right edge, timestamp."""

    shift: int = 0
    right_edge: int | None = None
    tsval: bytes | None = None
    next_seq: int | None = None  # the end of the data seen contiguously from this side


class ProxyAck(Middlebox):
    name = "proxy-ack"
    scope = Scope.SEGMENTS  # one made-up ACK per wire segment, as a real proxy sends

    ranges = FLOW_RANGES

    def __init__(self, idle_s: float = IDLE_S, closed_s: float = CLOSED_S,
                 max_flows: int = MAX_FLOWS) -> None:
        super().__init__()
        self.check_ranges(idle_s=idle_s, closed_s=closed_s, max_flows=max_flows)
        self.params: dict[str, object] = flow_params(idle_s, closed_s, max_flows)
        self._flows: FlowTable[FlowKey, dict[Direction, _Sender]] = FlowTable(
            idle_s=idle_s, closed_s=closed_s, max_flows=max_flows, on_drop=self._dropped)

    def _dropped(self, key: FlowKey, sides: dict[Direction, _Sender], reason: str) -> None:
        self.stats[f"flows-{reason}"] += 1

    def flows(self) -> int:
        """Flows whose state is held."""
        return len(self._flows)

    def _sides(self, packet: TcpPacket, direction: Direction, now: float
               ) -> dict[Direction, _Sender]:
        key = flow_key(packet, direction)
        sides = self._flows.get(key, now)
        if sides is None or (packet.is_syn() and self._flows.is_closed(key)):
            sides = {}
            self._flows.put(key, sides, now)
        self._flows.observe(key, packet.flags, direction, now)
        return sides

    def _remember(self, packet: TcpPacket, side: _Sender) -> bytes | None:
        if packet.flags & SYN:
            side.next_seq = (packet.seq + 1) % MOD
            scale = packet.option(KIND_WINDOW_SCALE)
            side.shift = min(scale[2], 14) if scale and len(scale) == 3 else 0
        timestamps = packet.option(KIND_TIMESTAMPS)
        if timestamps and len(timestamps) == 10:
            side.tsval = timestamps[2:6]
        if packet.flags & ACK:
            shift = 0 if packet.flags & SYN else side.shift  # SYN windows are never scaled
            side.right_edge = (packet.ack + (packet.window << shift)) % MOD
        return timestamps

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        sides = self._sides(packet, direction, now)
        sender = sides.setdefault(direction, _Sender())
        timestamps = self._remember(packet, sender)
        actions: list[Action] = [Forward(packet.raw)]
        length = len(packet.payload) + (1 if packet.flags & FIN else 0)
        receiver = sides.get(direction.reverse)
        if (receiver is not None and receiver.next_seq is not None and packet.flags & ACK
                and _after(packet.ack, receiver.next_seq)):
            receiver.next_seq = packet.ack  # the real receiver has it all up to there
        if (length == 0 or packet.flags & SYN or not packet.flags & ACK or receiver is None
                or receiver.right_edge is None):
            return actions
        acked = (packet.seq + length) % MOD
        if sender.next_seq is None:
            sender.next_seq = packet.seq  # a flow whose SYN the proxy did not see
        if _after(packet.seq, sender.next_seq):
            self.stats["gap-not-acked"] += 1
            return actions  # past a gap: only the receiver can say what it is missing
        if not _after(acked, sender.next_seq):
            return actions  # a retransmission of data already acknowledged
        sender.next_seq = acked
        room = (receiver.right_edge - acked) % MOD
        window = 0 if room >= MOD // 2 else min(room >> receiver.shift, 0xFFFF)
        options = []
        if timestamps and receiver.tsval is not None:
            options.append(TcpOption(KIND_TIMESTAMPS,
                                     bytes([8, 10]) + receiver.tsval + timestamps[2:6]))
        ip = replace(packet.ip, src=packet.ip.dst, dst=packet.ip.src, options=b"",
                     header_length=20)
        ack = build_packet(
            ip, src_port=packet.dst_port, dst_port=packet.src_port, seq=packet.ack, ack=acked,
            flags=ACK, window=window, options=options,
        )
        self.stats["proxied-acks"] += 1
        actions.append(Inject(ack, direction.reverse))
        return actions


def _after(a: int, b: int) -> bool:
    """Sequence number a comes after b (modulo 2**32)."""
    return 0 < (a - b) % MOD < MOD // 2
