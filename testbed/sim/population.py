"""Populations of Internet paths: destination ports and middlebox chains drawn with documented
frequencies, counted per distinct (port, chain) so that a million paths cost a few lookups.

"paper-2010-by-port" follows the middlebox survey in the tcpcrypt paper and talk (142 access
networks in 24 countries): sequence numbers rewritten on 10% of paths (18% on port 80), data
resegmented on 3% (13% on port 80), proxy ACKs on 3% (7% on port 80), and every path that
resegmented or proxied also stripped new options from the SYN. How often options were
stripped alone is not given ("not rare, especially on port 80"): the profile assumes 10%, and
15% on port 80. Ports are an assumption too: 60% of connections to 443, 30% to 80, 10% to
other ports (which get the all-ports figures). Vary them; they are not measurements.
"""

from __future__ import annotations

import random
from collections import Counter

Chains = tuple[tuple[str, float], ...]

_ALL_PORTS: Chains = (
    ("seq-rewrite", 0.10),
    ("strip-options(on=syn),resegment(max_bytes=536)", 0.03),
    ("strip-options(on=syn),proxy-ack", 0.03),
    ("strip-options(on=syn)", 0.10),
    ("passthrough", 0.74),
)
_PORT_80: Chains = (
    ("seq-rewrite", 0.18),
    ("strip-options(on=syn),resegment(max_bytes=536)", 0.13),
    ("strip-options(on=syn),proxy-ack", 0.07),
    ("strip-options(on=syn)", 0.15),
    ("passthrough", 0.47),
)

POPULATIONS: dict[str, tuple[tuple[tuple[int, float], ...], dict[int, Chains]]] = {
    "paper-2010-by-port": (
        ((443, 0.6), (80, 0.3), (8080, 0.1)),
        {443: _ALL_PORTS, 80: _PORT_80, 8080: _ALL_PORTS},
    ),
}


def draw_population(name: str, paths: int, seed: int) -> Counter[tuple[int, str]]:
    """How many of `paths` paths have each (port, chain)."""
    if name not in POPULATIONS:
        raise ValueError(f"unknown population {name!r}; known: {', '.join(POPULATIONS)}")
    ports, chains = POPULATIONS[name]
    generator = random.Random(seed)
    counts: Counter[tuple[int, str]] = Counter()
    port_counts = Counter(generator.choices([p for p, _ in ports], [w for _, w in ports],
                                            k=paths))
    for port, count in sorted(port_counts.items()):
        names, weights = zip(*chains[port], strict=True)
        counts.update((port, chain) for chain in generator.choices(names, weights, k=count))
    return counts


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion."""
    if total == 0:
        return 0.0, 1.0
    share = successes / total
    denominator = 1 + z * z / total
    centre = (share + z * z / (2 * total)) / denominator
    half = z * ((share * (1 - share) / total + z * z / (4 * total * total)) ** 0.5) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
