"""access-paths: many clients, each behind its own middlebox chain drawn from a profile, to
reproduce a population of access networks.

The "paper-2010" profile follows the middlebox survey of the tcpcrypt talk (142 access networks
in 24 countries): sequence numbers rewritten on 10% of paths, data resegmented on 3%, proxy
ACKs on 3%, and every path that resegmented or proxied also stripped new options from the SYN.
How often options were stripped alone is not given as a number ("not rare"): the profile
assumes 10%, a figure to vary, not a measurement.
"""

from __future__ import annotations

import random

from mininet.topo import Topo

from topologies.validation import TopologyConfigError, checked_cores, checked_path

Profile = tuple[tuple[str, float], ...]

PROFILES: dict[str, Profile] = {
    "paper-2010": (
        ("seq-rewrite", 0.10),
        ("strip-options(on=syn),resegment(max_bytes=536)", 0.03),
        ("strip-options(on=syn),proxy-ack", 0.03),
        ("strip-options(on=syn)", 0.10),
        ("passthrough", 0.74),
    ),
}


def draw_paths(profile: str, count: int, seed: int) -> list[str]:
    """`count` chains drawn from the profile with a seeded generator."""
    if profile not in PROFILES:
        raise TopologyConfigError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    chains, weights = zip(*PROFILES[profile], strict=True)
    return random.Random(seed).choices(list(chains), weights=list(weights), k=count)


class AccessPathsTopo(Topo):  # type: ignore[misc]
    """cK - mbK - server for K = 1..clients; mbK's chain drawn from `profile` with `seed`, or
    given explicitly: `paths` (one chain per client, in order; `clients` then defaults to its
    length and must match it)."""

    def build(self, clients: int | None = None, profile: str = "paper-2010", seed: int = 1,
              server_cores: int = 1, paths: tuple[str, ...] | None = None) -> None:
        if paths is not None:
            if clients is not None and clients != len(paths):
                raise TopologyConfigError(
                    f"clients={clients} but {len(paths)} explicit paths were given")
            clients = len(paths)
        elif clients is None:
            clients = 10
        if not 1 <= clients <= 200:
            raise TopologyConfigError(f"clients must be 1..200, got {clients}")
        chains = list(paths) if paths is not None else draw_paths(profile, clients, seed)
        server = self.addHost("server", cores=str(checked_cores(server_cores)))
        for index, path in enumerate(chains, start=1):
            client = self.addHost(f"c{index}")
            middlebox = self.addHost(f"mb{index}", role="middlebox", path=checked_path(path))
            self.addLink(client, middlebox)
            self.addLink(middlebox, server)
