"""The runtime seam: a network for a `testbed.scenario.Topology` in the chosen runtime.

Both networks answer `run(ConnectionLoad) -> LoadReport`. The emulation one builds Mininet
(imported only here, only when asked); the simulation one a simpy world charging the costs of
a cost profile."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from testbed.scenario import Topology


@contextmanager
def open_network(runtime: str, topology: Topology, *, profile: str | None,
                 seed: int) -> Iterator[Any]:
    if runtime == "simulation":
        from testbed.sim.costs import DEFAULT_PROFILE, load_profile
        from testbed.sim.network import SimNetwork

        yield SimNetwork(topology, load_profile(profile or DEFAULT_PROFILE), seed)
    elif runtime == "emulation":
        from testbed.emulation.connection_load import emulated_load_network

        with emulated_load_network(topology) as network:
            yield network
    else:
        raise ValueError(f"the {runtime} runtime has no network")
