"""resegment: changes how a flow's bytes are cut into segments, as proxies, traffic
normalisers and receive-offload boxes do; the bytes themselves never change.

mode=split (the default): every data segment longer than `max_bytes` is split into pieces of
at most that size; only the last piece keeps PSH and FIN.

mode=coalesce: consecutive, contiguous data segments of a flow (per direction) are combined
into one segment of at most `max_bytes` payload bytes. A combined segment starts at the first
one's sequence number and carries the latest acknowledgement, window, options (timestamps)
and PSH/FIN. Held data leaves as soon as
  - the next segment would take it past `max_bytes`, or reaches it,
  - a segment with PSH or FIN joins it,
  - the next segment of that direction is not contiguous (a retransmission, a gap), carries
    no data (a pure ACK, which must not overtake the data), or is SYN/RST/URG,
  - or `hold_ms` after the first held byte arrived (the engine's timer calls `expire`),
so data is never held longer than `hold_ms`. Segments already `max_bytes` long or longer pass
unchanged (coalescing never splits). `max_bytes` above the path MTU minus the IP and TCP
headers produces packets the next link refuses: on 1500-byte Ethernet with timestamps, 1448.
A combined segment never exceeds an IPv4 packet's 65,535 bytes, IP options included: held
data leaves first when the next segment would take it past that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from middleboxes.base import (
    Action,
    Direction,
    FlowKey,
    Forward,
    Middlebox,
    MiddleboxConfigError,
    Scope,
    Timed,
    flow_key,
)
from packets.tcp import FIN, PSH, RST, SYN, TcpPacket, rebuild

MOD = 1 << 32
URG = 0x20
MODES: Final = ("split", "coalesce")
IPV4_MAX: Final = 65535  # the IPv4 total length field's largest value
MAX_PAYLOAD: Final = IPV4_MAX - 20 - 60  # an IPv4 packet with the longest TCP header
DEFAULT_HOLD_MS: Final = 1.0


@dataclass
class _Held:
    """Contiguous data of one flow direction waiting to leave as one segment."""

    first: TcpPacket
    latest: TcpPacket
    deadline: float
    payload: bytearray = field(default_factory=bytearray)

    @property
    def next_seq(self) -> int:
        return (self.first.seq + len(self.payload)) % MOD


class Resegment(Middlebox):
    name = "resegment"
    ranges = {"max_bytes": (1, MAX_PAYLOAD), "hold_ms": (0.001, 1000)}
    choices = {"mode": MODES}
    scope = Scope.SEGMENTS  # it changes the boundaries of the segments the wire carries

    def __init__(self, max_bytes: int = 536, mode: str = "split",
                 hold_ms: float = DEFAULT_HOLD_MS) -> None:
        super().__init__()
        if mode not in MODES:
            raise MiddleboxConfigError(f"resegment: mode must be one of {MODES}, got {mode!r}")
        if mode == "split" and hold_ms != DEFAULT_HOLD_MS:
            raise MiddleboxConfigError("resegment: hold_ms applies to mode=coalesce only")
        self.check_ranges(max_bytes=max_bytes, hold_ms=hold_ms)
        if mode == "coalesce" and max_bytes < 2:
            raise MiddleboxConfigError("resegment: coalescing needs max_bytes >= 2")
        self.max_bytes, self.mode, self.hold = max_bytes, mode, hold_ms / 1000
        self._held: dict[tuple[FlowKey, Direction], _Held] = {}
        self.params: dict[str, object] = {"max_bytes": max_bytes}
        if mode == "coalesce":
            self.params = {"mode": mode, "max_bytes": max_bytes, "hold_ms": hold_ms}

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        if self.mode == "coalesce":
            return self._coalesce(packet, direction, now)
        payload = packet.payload
        if len(payload) <= self.max_bytes:
            return [Forward(packet.raw)]
        self.stats["split"] += 1
        pieces = [payload[i : i + self.max_bytes] for i in range(0, len(payload), self.max_bytes)]
        actions: list[Action] = []
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            flags = packet.flags if last else packet.flags & ~(PSH | FIN)
            seq = (packet.seq + index * self.max_bytes) % MOD
            actions.append(Forward(rebuild(packet, seq=seq, flags=flags, payload=piece)))
        return actions

    # -- coalescing ---------------------------------------------------------------------------

    def _flush(self, key: tuple[FlowKey, Direction]) -> Forward:
        held = self._held.pop(key)
        if held.first is held.latest:
            return Forward(held.first.raw)
        self.stats["coalesced-segments"] += 1
        latest = held.latest
        flags = (held.first.flags & ~(PSH | FIN)) | (latest.flags & (PSH | FIN))
        return Forward(rebuild(held.first, ack=latest.ack, window=latest.window, flags=flags,
                               options=latest.options, payload=bytes(held.payload)))

    def _coalesce(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        key = (flow_key(packet, direction), direction)
        payload = packet.payload
        actions: list[Action] = []
        held = self._held.get(key)
        if held is not None and (
            not payload or packet.flags & (SYN | RST | URG) or packet.seq != held.next_seq
            or len(held.payload) + len(payload) > self.max_bytes
            or not _fits(held, packet)
        ):
            actions.append(self._flush(key))
            held = None
        if not payload or packet.flags & (SYN | RST | URG):
            actions.append(Forward(packet.raw))
            return actions
        if held is None:
            if len(payload) >= self.max_bytes or packet.flags & (PSH | FIN):
                actions.append(Forward(packet.raw))
                return actions
            self._held[key] = _Held(packet, packet, now + self.hold, bytearray(payload))
            return actions
        held.payload += payload
        held.latest = packet
        if packet.flags & (PSH | FIN) or len(held.payload) >= self.max_bytes:
            actions.append(self._flush(key))
        return actions

    def next_timer(self) -> float | None:
        return min((held.deadline for held in self._held.values()), default=None)

    def expire(self, now: float) -> list[Timed]:
        due = [key for key, held in self._held.items() if held.deadline <= now]
        return [(key[1], self._flush(key)) for key in due]


def _fits(held: _Held, packet: TcpPacket) -> bool:
    """Whether `packet` can join `held` within an IPv4 packet's 65,535 bytes: the combined
    segment has the first one's IP header (options included) and the latest one's TCP
    options, which may be longer than those MAX_PAYLOAD allows for."""
    size = held.first.ip.header_length + packet.header_length
    return size + len(held.payload) + len(packet.payload) <= IPV4_MAX
