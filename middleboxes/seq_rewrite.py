"""seq-rewrite: shifts the client's sequence space by a random per-flow offset, as firewalls
that randomise the initial sequence number do (acknowledgements and SACK blocks coming back
are shifted the other way).

A flow's offset is forgotten `idle_s` after its last packet, `closed_s` after it closed (RST,
or FIN both ways), or when `max_flows` newer flows need room (see flow_table.py)."""

from __future__ import annotations

import random

from middleboxes.base import Action, Direction, FlowKey, Forward, Middlebox, Scope, flow_key
from middleboxes.flow_table import (
    CLOSED_S,
    FLOW_RANGES,
    IDLE_S,
    MAX_FLOWS,
    FlowTable,
    flow_params,
)
from packets.patch import patch_fields
from packets.tcp import TcpPacket, rebuild
from packets.tcp_options import KIND_SACK, TcpOption

MOD = 1 << 32


class SeqRewrite(Middlebox):
    name = "seq-rewrite"
    scope = Scope.PACKETS  # shifting a super-packet's sequence number shifts each segment's

    ranges = {"seed": (0, 2**32 - 1), **FLOW_RANGES}

    def __init__(self, seed: int = 1, idle_s: float = IDLE_S, closed_s: float = CLOSED_S,
                 max_flows: int = MAX_FLOWS) -> None:
        super().__init__()
        self.check_ranges(seed=seed, idle_s=idle_s, closed_s=closed_s, max_flows=max_flows)
        self._random = random.Random(seed)
        self._offsets: FlowTable[FlowKey, int] = FlowTable(
            idle_s=idle_s, closed_s=closed_s, max_flows=max_flows, on_drop=self._dropped)
        self.params: dict[str, object] = {"seed": seed, **flow_params(idle_s, closed_s,
                                                                      max_flows)}

    def _dropped(self, key: FlowKey, offset: int, reason: str) -> None:
        self.stats[f"flows-{reason}"] += 1

    def flows(self) -> int:
        """Flows whose offset is held."""
        return len(self._offsets)

    def _offset(self, key: FlowKey, packet: TcpPacket, direction: Direction, now: float) -> int:
        offset = self._offsets.get(key, now)
        # A new flow, or a new SYN on a closed flow's addresses (a new connection): a new offset.
        if offset is None or (packet.is_syn() and self._offsets.is_closed(key)):
            offset = self._random.randrange(1, MOD)
            self._offsets.put(key, offset, now)
        self._offsets.observe(key, packet.flags, direction, now)
        return offset

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        offset = self._offset(flow_key(packet, direction), packet, direction, now)
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
