"""Injected randomness: every protocol object draws its random bytes from a `RandomSource`.

A `RandomSource` is any callable that takes a byte count and returns that many bytes. Nothing in
`tcpcrypt/` reads global randomness on its own, so a run can be replayed:

* `system_random` is the operating system's generator (production, the daemon);
* `seeded_random(seed)` is a deterministic byte stream for tests, vectors and replayed
  experiments: SHA-256 in counter mode over the seed. It is one continuous stream, so the bytes
  do not depend on how the draws are split (`draw(16) + draw(16) == draw(32)` of a fresh source
  with the same seed). It is not meant to be secret against anyone who knows the seed.

One thing cannot be injected: `cryptography` generates RSA keys and OAEP padding from the
operating system's randomness (see `suites.RsaKeyHolder`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Final

from tcpcrypt.errors import UsageError

RandomSource = Callable[[int], bytes]
"""Returns the number of random bytes asked for."""

_STREAM_LABEL: Final = b"tcpcrypt-testbed seeded_random v1"
_BLOCK_LENGTH: Final = 32


def system_random(length: int) -> bytes:
    """`length` random bytes from the operating system."""
    if length < 0:
        raise UsageError(f"cannot draw {length} random bytes")
    return os.urandom(length)


def seeded_random(seed: int) -> RandomSource:
    """A deterministic random source: the same seed always yields the same byte stream.

    Block k of the stream is SHA-256(label | len(seed) | seed | k), with the seed as a signed
    big-endian integer of minimal length, so every integer seed (negative or huge) is distinct.
    """
    seed_bytes = seed.to_bytes((seed.bit_length() + 8) // 8, "big", signed=True)
    prefix = _STREAM_LABEL + len(seed_bytes).to_bytes(4, "big") + seed_bytes
    pending = bytearray()
    counter = 0

    def draw(length: int) -> bytes:
        nonlocal counter
        if length < 0:
            raise UsageError(f"cannot draw {length} random bytes")
        while len(pending) < length:
            pending.extend(hashlib.sha256(prefix + counter.to_bytes(8, "big")).digest())
            counter += 1
        block = bytes(pending[:length])
        del pending[:length]
        return block

    return draw
