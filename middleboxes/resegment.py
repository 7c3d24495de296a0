"""resegment: splits every data segment into segments of at most `max_bytes` (as some proxies
and traffic normalisers do). Only the last piece keeps PSH and FIN."""

from __future__ import annotations

from middleboxes.base import Action, Direction, Forward, Middlebox, MiddleboxConfigError
from packets.tcp import FIN, PSH, TcpPacket, rebuild

MOD = 1 << 32


class Resegment(Middlebox):
    name = "resegment"

    def __init__(self, max_bytes: int = 536) -> None:
        super().__init__()
        if max_bytes < 1:
            raise MiddleboxConfigError(f"resegment: max_bytes must be >= 1, got {max_bytes}")
        self.max_bytes = max_bytes
        self.params: dict[str, object] = {"max_bytes": max_bytes}

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
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
