"""chain: several models on one path, in order from the client to the server.

A packet to the server crosses them first to last, a packet to the client last to first.
Delays add up along the way; a drop ends the packet's journey; packets a model injects leave
at once (they do not cross the chain's other models). A packet a model releases on a timer
(`expire`) continues through the models after it.
"""

from __future__ import annotations

from collections.abc import Sequence

from middleboxes.base import (
    Action,
    Delay,
    Direction,
    Drop,
    EnoEffect,
    Forward,
    Inject,
    Middlebox,
    Scope,
    Timed,
)
from packets.tcp import TcpPacket


class Chain(Middlebox):
    name = "chain"

    def __init__(self, models: Sequence[Middlebox]) -> None:
        super().__init__()
        self.models = list(models)
        self._timed = [model for model in self.models if model.holds_packets()]

    def needs(self) -> Scope:
        """The most any model on the chain needs (an empty chain: nothing)."""
        return max((model.needs() for model in self.models), default=Scope.NOTHING)

    def describe(self) -> str:
        return ",".join(model.describe() for model in self.models) or "none"

    def eno_effect(self, port: int) -> EnoEffect:
        """The first model, from the client, that does not pass ENO decides: once stripped,
        the option is not there for a later model to block, and the other way round."""
        for model in self.models:
            effect = model.eno_effect(port)
            if effect is not EnoEffect.PASSES:
                return effect
        return EnoEffect.PASSES

    def _order(self, direction: Direction) -> list[Middlebox]:
        return self.models if direction is Direction.TO_SERVER else self.models[::-1]

    def _through(self, models: Sequence[Middlebox], start: list[tuple[float, bytes]],
                 direction: Direction, now: float) -> list[Action]:
        in_flight = start
        finished: list[Action] = []
        for model in models:
            after: list[tuple[float, bytes]] = []
            for delay, raw in in_flight:
                for action in model.handle(raw, direction, now + delay):
                    if isinstance(action, Forward):
                        after.append((delay, action.packet))
                    elif isinstance(action, Delay):
                        after.append((delay + action.seconds, action.packet))
                    else:
                        finished.append(action)
            in_flight = after
        for delay, raw in in_flight:
            finished.append(Delay(delay, raw) if delay else Forward(raw))
        return finished

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        # Nothing at all comes out when a model holds the packet back (a coalescer).
        return self._through(self._order(direction), [(0.0, packet.raw)], direction, now)

    def handle(self, raw: bytes, direction: Direction, now: float) -> list[Action]:
        """As `Middlebox.handle`, without parsing the packet first: each model parses (and
        drops a malformed packet) itself, so a segment is parsed once per model, not once
        more for the chain (per-segment paths parse every wire segment)."""
        if not self.models:
            return super().handle(raw, direction, now)
        self.stats["seen"] += 1
        try:
            actions = self._through(self._order(direction), [(0.0, raw)], direction, now)
        except Exception as error:  # a buggy model must not kill the engine
            return [Drop(self._model_error(error))]
        for action in actions:
            self.stats[type(action).__name__.lower()] += 1
        return actions

    def holds_packets(self) -> bool:
        return bool(self._timed)

    def next_timer(self) -> float | None:
        due = [when for model in self._timed if (when := model.next_timer()) is not None]
        return min(due) if due else None

    def expire(self, now: float) -> list[Timed]:
        timed: list[Timed] = []
        for model in self._timed:
            for direction, action in model.release(now):
                if isinstance(action, (Forward, Delay)):
                    order = self._order(direction)
                    rest = order[order.index(model) + 1:]
                    delay = action.seconds if isinstance(action, Delay) else 0.0
                    timed.extend((direction, after) for after in
                                 self._through(rest, [(delay, action.packet)], direction, now))
                elif isinstance(action, Inject):
                    timed.append((action.direction, action))
                else:
                    timed.append((direction, action))
        return timed
