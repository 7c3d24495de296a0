"""Injected randomness: every protocol object draws its random bytes from a `RandomSource`.

`system_random` is the operating system's generator; `seeded_random(seed)` is a deterministic
stream (SHAKE-256 of the seed and a counter) so that tests and experiments can replay a run
byte for byte.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

RandomSource = Callable[[int], bytes]


def system_random(length: int) -> bytes:
    """Random bytes from the operating system."""
    return os.urandom(length)


def seeded_random(seed: int) -> RandomSource:
    """A deterministic random source: the same seed always yields the same byte stream."""
    counter = 0
    seed_bytes = seed.to_bytes(16, "big", signed=True)

    def draw(length: int) -> bytes:
        nonlocal counter
        block = hashlib.shake_256(seed_bytes + counter.to_bytes(8, "big")).digest(length)
        counter += 1
        return block

    return draw
