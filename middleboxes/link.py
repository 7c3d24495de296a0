"""link: delay, jitter, loss, duplication, reordering and a rate limit, in userspace (this
kernel has no netem). Each direction has its own serialisation queue; randomness is seeded."""

from __future__ import annotations

import random
from typing import Final

from middleboxes.base import (
    Action,
    Delay,
    Direction,
    Drop,
    Middlebox,
    MiddleboxConfigError,
    Scope,
)
from packets.tcp import TcpPacket

MIN_RATE_MBPS: Final = 0.001  # 1 kbit/s: a 1500-byte packet then takes 12 s


class Link(Middlebox):
    name = "link"
    ranges = {"delay_ms": (0, 60_000), "jitter_ms": (0, 60_000), "loss": (0, 1),
              "duplicate": (0, 1), "reorder": (0, 1), "rate_mbps": (0, 100_000),
              "seed": (0, 2**32 - 1)}

    def __init__(self, delay_ms: float = 0.0, jitter_ms: float = 0.0, loss: float = 0.0,
                 duplicate: float = 0.0, reorder: float = 0.0, rate_mbps: float = 0.0,
                 seed: int = 1) -> None:
        super().__init__()
        self.check_ranges(delay_ms=delay_ms, jitter_ms=jitter_ms, loss=loss,
                          duplicate=duplicate, reorder=reorder, rate_mbps=rate_mbps, seed=seed)
        if 0 < rate_mbps < MIN_RATE_MBPS:
            raise MiddleboxConfigError(
                f"link: rate_mbps is 0 (no limit) or at least {MIN_RATE_MBPS}, got {rate_mbps}")
        if jitter_ms > delay_ms:
            raise MiddleboxConfigError("link: jitter_ms cannot exceed delay_ms")
        self.delay = delay_ms / 1000
        self.jitter = jitter_ms / 1000
        self.loss, self.duplicate, self.reorder = loss, duplicate, reorder
        self.rate_bps = rate_mbps * 1e6
        self._random = random.Random(seed)
        self._busy_until = {Direction.TO_SERVER: 0.0, Direction.TO_CLIENT: 0.0}
        given = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss": loss,
                 "duplicate": duplicate, "reorder": reorder, "rate_mbps": rate_mbps}
        self.params: dict[str, object] = {k: v for k, v in given.items() if v}

    def needs(self) -> Scope:
        """A fixed delay acts alike on a super-packet and on its segments; loss, jitter,
        reordering, duplication and a rate limit (serialisation per segment) act per wire
        segment."""
        per_segment = (self.loss, self.jitter, self.reorder, self.duplicate, self.rate_bps)
        return Scope.SEGMENTS if any(per_segment) else Scope.PACKETS

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        if self.loss and self._random.random() < self.loss:
            return [Drop("link-loss")]
        departure = now
        if self.rate_bps:
            start = max(now, self._busy_until[direction])
            departure = start + len(packet.raw) * 8 / self.rate_bps
            self._busy_until[direction] = departure
        delay = departure - now + self.delay
        if self.jitter:
            delay += self._random.uniform(-self.jitter, self.jitter)
        if self.reorder and self._random.random() < self.reorder:
            delay += max(self.delay, 0.001)  # held back past the packets behind it
        actions: list[Action] = [Delay(max(delay, 0.0), packet.raw)]
        if self.duplicate and self._random.random() < self.duplicate:
            actions.append(Delay(max(delay, 0.0), packet.raw))
        return actions
