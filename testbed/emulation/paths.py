"""A client-server experiment on a chosen path: the `path` parameter (the middlebox chain
syntax, "none" for the direct link), the network it runs on, and what the engine costs.

    check_path(text)                   # the canonical chain, or MiddleboxConfigError (at once)
    with path_network(text) as net:    # LineTopo with one middlebox node, or the direct link
        meter = EngineMeter(net)       # engine CPU from here on
        ...
        load = meter.load(seconds)     # {"mb1": 0.93}: cores the engine used meanwhile
        busy = meter.demand(seconds)   # ... and the share of the time it ran or waited to
        warning = engine_bound(busy, {"sender": 0.4, "receiver": 0.5})

On 2 cores the engine shares the CPU with both endpoints (and the daemons); a result is
bounded by the engine, not the protocol, when the engine's core was saturated while the
endpoints were not, and `engine_bound` says so.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def run_and_wait_ns(pid: int) -> tuple[int, int]:
    """Nanoseconds the threads of `pid` ran and waited on a run queue (ready to run, another
    task on the core), from /proc/PID/task/*/schedstat."""
    ran = waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "schedstat").read_text().split()
            ran, waited = ran + int(fields[0]), waited + int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    return ran, waited


class EngineMeter:
    """CPU time of every middlebox engine of `net` since the meter was made (or `restart`),
    and how much of the time it wanted a core: ran, or waited for one. On a shared machine an
    engine can be the bottleneck without getting a whole core; ran + waited near the whole
    wall time is what saturated means here."""

    def __init__(self, net: Any) -> None:
        self.engines = {engine.node: engine.process.pid
                        for engine in getattr(net, "middlebox_engines", [])}
        self.restart()

    def restart(self) -> None:
        self.start = {node: run_and_wait_ns(pid) for node, pid in self.engines.items()}

    def since(self) -> dict[str, tuple[float, float]]:
        """Seconds each engine ran and waited for a core since the start."""
        return self._since()

    def _since(self) -> dict[str, tuple[float, float]]:
        now = {node: run_and_wait_ns(pid) for node, pid in self.engines.items()}
        return {node: ((now[node][0] - self.start[node][0]) / 1e9,
                       (now[node][1] - self.start[node][1]) / 1e9) for node in now}

    def used_s(self) -> dict[str, float]:
        """CPU seconds per engine since the start."""
        return {node: ran for node, (ran, _) in self._since().items()}

    def load(self, seconds: float) -> dict[str, float]:
        """Cores each engine kept busy over `seconds` of wall time (1.0: one whole core)."""
        return {node: used / seconds if seconds > 0 else 0.0
                for node, used in self.used_s().items()}

    def demand(self, seconds: float) -> dict[str, float]:
        """Share of `seconds` each engine ran or waited to run (1.0: it never idled)."""
        return {node: (ran + waited) / seconds if seconds > 0 else 0.0
                for node, (ran, waited) in self._since().items()}


def engine_figures(since: dict[str, tuple[float, float]], seconds: float) -> dict[str, float]:
    """`engine_cpu` (cores used) and `engine_busy` (share of the time it ran or waited to
    run) of the busiest engine, over `seconds`, from `EngineMeter.since()`; {} without an
    engine."""
    if not since or seconds <= 0:
        return {}
    return {"engine_cpu": max(ran for ran, _ in since.values()) / seconds,
            "engine_busy": max(ran + waited for ran, waited in since.values()) / seconds}


def engine_bound(engines: dict[str, float], endpoints: dict[str, float],
                 saturated: float = SATURATED) -> str | None:
    """A warning when an engine's core was saturated while no endpoint's was: the figure
    measures the engine, not the protocol. `engines` maps names to the share of the time each
    engine ran or waited to run (`EngineMeter.demand`), `endpoints` to the cores each end
    used (CPU seconds per second of the measurement)."""
    busy = {node: load for node, load in engines.items() if load >= saturated}
    if not busy or any(load >= saturated for load in endpoints.values()):
        return None
    node, load = max(busy.items(), key=lambda item: item[1])
    others = ", ".join(f"{name} {value:.2f}" for name, value in endpoints.items())
    return (f"the middlebox engine in {node} was running or ready to run {load:.0%} of the "
            f"time while the endpoints did not saturate their cores ({others}): this figure "
            "is bounded by the engine, not by the protocol")
