"""seq-rewrite: shifts the client's sequence space by a random per-flow offset, as firewalls
that randomise the initial sequence number do (acknowledgements and SACK blocks coming back
are shifted the other way)."""

from __future__ import annotations

import random

from middleboxes.base import Action, Direction, FlowKey, Forward, Middlebox, Scope, flow_key
from packets.patch import patch_fields
from packets.tcp import TcpPacket, rebuild
from packets.tcp_options import KIND_SACK, TcpOption

MOD = 1 << 32


class SeqRewrite(Middlebox):
    name = "seq-rewrite"
    scope = Scope.PACKETS  # shifting a super-packet's sequence number shifts each segment's

    def __init__(self, seed: int = 1) -> None:
        super().__init__()
        self._random = random.Random(seed)
        self._offsets: dict[FlowKey, int] = {}
        self.params: dict[str, object] = {"seed": seed}

    def _offset(self, key: FlowKey) -> int:
        if key not in self._offsets:
            self._offsets[key] = self._random.randrange(1, MOD)
        return self._offsets[key]

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        offset = self._offset(flow_key(packet, direction))
        if direction is Direction.TO_SERVER:
            return [Forward(patch_fields(packet, seq=(packet.seq + offset) % MOD))]
        ack = (packet.ack - offset) % MOD if packet.flags & 0x10 else packet.ack
        if packet.option(KIND_SACK) is None:  # in place, checksums updated incrementally
            return [Forward(patch_fields(packet, ack=ack))]
        options = [_shift_sack(option, -offset) for option in packet.options]
        return [Forward(rebuild(packet, ack=ack, options=options))]


def _shift_sack(option: TcpOption, delta: int) -> TcpOption:
    if option.kind != KIND_SACK:
        return option
    edges = option.raw[2:]
    shifted = b"".join(
        ((int.from_bytes(edges[i : i + 4], "big") + delta) % MOD).to_bytes(4, "big")
        for i in range(0, len(edges) - len(edges) % 4, 4)
    )
    return TcpOption(KIND_SACK, option.raw[:2] + shifted)
