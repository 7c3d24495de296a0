"""chain: several models on one path, in order from the client to the server.

A packet to the server crosses them first to last, a packet to the client last to first.
Delays add up along the way; a drop ends the packet's journey; packets a model injects leave
at once (they do not cross the chain's other models).
"""

from __future__ import annotations

from collections.abc import Sequence

from middleboxes.base import Action, Delay, Direction, Drop, Forward, Inject, Middlebox
from packets.tcp import TcpPacket


class Chain(Middlebox):
    name = "chain"

    def __init__(self, models: Sequence[Middlebox]) -> None:
        super().__init__()
        self.models = list(models)

    def describe(self) -> str:
        return ",".join(model.describe() for model in self.models) or "none"

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        order = self.models if direction is Direction.TO_SERVER else self.models[::-1]
        in_flight: list[tuple[float, bytes]] = [(0.0, packet.raw)]
        finished: list[Action] = []
        for model in order:
            after: list[tuple[float, bytes]] = []
            for delay, raw in in_flight:
                for action in model.handle(raw, direction, now + delay):
                    if isinstance(action, Forward):
                        after.append((delay, action.packet))
                    elif isinstance(action, Delay):
                        after.append((delay + action.seconds, action.packet))
                    elif isinstance(action, Inject):
                        finished.append(action)
                    else:
                        finished.append(action)
            in_flight = after
        for delay, raw in in_flight:
            finished.append(Delay(delay, raw) if delay else Forward(raw))
        if not in_flight and not any(isinstance(a, Drop) for a in finished):
            finished.append(Drop("chain-consumed"))
        return finished
