"""A client-server experiment on a chosen path: the `path` parameter (the middlebox chain
syntax, "none" for the direct link), the network it runs on, and what the engine costs.

    check_path(text)                   # the canonical chain, or MiddleboxConfigError (at once)
    with path_network(text) as net:    # LineTopo with one middlebox node, or the direct link
        meter = EngineMeter(net)       # engine CPU from here on
        ...
        load = meter.load(seconds)     # {"mb1": 0.93}: cores the engine used meanwhile
        warning = engine_bound(load, {"sender": 0.4, "receiver": 0.5})

On 2 cores the engine shares the CPU with both endpoints (and the daemons); a result is
bounded by the engine, not the protocol, when the engine's core was saturated while the
endpoints were not, and `engine_bound` says so.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from testbed.apps.hosts import cpu_ns

SATURATED = 0.85  # the engine is one process: a core used 85% of the time or more is its limit
DIRECT = "none"


def check_path(text: str) -> str:
    """The canonical form of a path ("none": the direct link); MiddleboxConfigError (a
    ValueError naming the problem) for an unknown model or a bad parameter."""
    from middleboxes.registry import parse_chain

    return parse_chain(str(text)).describe()


def sharing_note() -> str:
    """What every result through an engine says about the CPU it ran on."""
    return (f"the middlebox engine is one process sharing this machine's {os.cpu_count()} "
            "cores with both endpoints and their daemons: its CPU (engine_cpu) is reported "
            "beside theirs")


def describe_topology(path: str) -> str:
    if path == DIRECT:
        return "line: client - server, linked directly, no middlebox"
    return f"line: client - mb1 (bridge engine running {path}) - server"


@contextmanager
def path_network(path: str) -> Iterator[Any]:
    """The emulated line for `path`, with the server routing a NAT's public address back."""
    from testbed.emulation.network import emulated_network
    from topologies.line import LineTopo

    canonical = check_path(path)
    paths = () if canonical == DIRECT else (canonical,)
    with emulated_network(LineTopo(paths=paths)) as net:
        nat_routes(net, canonical)
        yield net


def nat_routes(net: Any, path: str) -> None:
    """The server answers a NAT's public address through the middlebox (route and neighbour;
    the bridge rewrites Ethernet headers anyway)."""
    from middleboxes.nat import Nat
    from middleboxes.registry import parse_chain

    client, server = net.get("client"), net.get("server")
    for model in parse_chain(path).models:
        if isinstance(model, Nat):
            public = str(ipaddress.IPv4Address(model.public))
            interface = server.defaultIntf().name
            server.cmd(f"ip route replace {public}/32 dev {interface}")
            server.cmd(f"ip neigh replace {public} lladdr {client.MAC()} dev {interface}")


class EngineMeter:
    """CPU time of every middlebox engine of `net` since the meter was made (or `restart`)."""

    def __init__(self, net: Any) -> None:
        self.engines = {engine.node: engine.process.pid
                        for engine in getattr(net, "middlebox_engines", [])}
        self.restart()

    def restart(self) -> None:
        self.start = {node: cpu_ns(pid) for node, pid in self.engines.items()}

    def used_s(self) -> dict[str, float]:
        """CPU seconds per engine since the start."""
        return {node: (cpu_ns(pid) - self.start[node]) / 1e9
                for node, pid in self.engines.items()}

    def load(self, seconds: float) -> dict[str, float]:
        """Cores each engine kept busy over `seconds` of wall time (1.0: one whole core)."""
        return {node: used / seconds if seconds > 0 else 0.0
                for node, used in self.used_s().items()}


def engine_bound(engines: dict[str, float], endpoints: dict[str, float],
                 saturated: float = SATURATED) -> str | None:
    """A warning when an engine's core was saturated while no endpoint's was: the figure
    measures the engine, not the protocol. `engines` and `endpoints` map names to cores
    used (CPU seconds per second of the measurement)."""
    busy = {node: load for node, load in engines.items() if load >= saturated}
    if not busy or any(load >= saturated for load in endpoints.values()):
        return None
    node, load = max(busy.items(), key=lambda item: item[1])
    others = ", ".join(f"{name} {value:.2f}" for name, value in endpoints.items())
    return (f"the middlebox engine in {node} used {load:.2f} of a core while the endpoints "
            f"did not saturate theirs ({others}): this figure is bounded by the engine, not "
            "by the protocol")
