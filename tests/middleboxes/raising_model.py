"""A test-only middlebox that raises on every Nth data segment, loaded as a plugin
(MIDDLEBOX_PLUGINS=tests/middleboxes/raising_model.py) to check that an engine survives a
buggy model: the packet is dropped and counted, the run's warnings say so."""

from __future__ import annotations

from middleboxes.base import Action, Direction, Forward, Middlebox, MiddleboxConfigError
from packets.tcp import TcpPacket


class RaiseEvery(Middlebox):
    name = "raise-every"

    def __init__(self, every: int = 50) -> None:
        super().__init__()
        if every < 1:
            raise MiddleboxConfigError("raise-every: every must be >= 1")
        self.every = every
        self.params: dict[str, object] = {"every": every}
        self._data = 0

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        if packet.payload:
            self._data += 1
            if self._data % self.every == 0:
                raise ZeroDivisionError(f"deliberate bug on data segment {self._data}")
        return [Forward(packet.raw)]
