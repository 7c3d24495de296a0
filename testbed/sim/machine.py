"""One machine shared by every host, as an emulation on one machine is: client work needs a
machine core, server work one of the server's pinned cores and a machine core, and other
tenants of the machine (the background load measured before an emulated run) take their
share of its cores."""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

if TYPE_CHECKING:
    from testbed.sim.network import SimHost

SLICE_S = 0.001  # a tenant holds a core for this long at a time (a scheduler's time slice)


def shared_connection(server: SimHost, machine: simpy.Resource,
                      segments: list[tuple[str, float]], latencies: list[float],
                      finished: list[float]) -> Generator[Any, Any, None]:
    """One connection's ("wire" | "server" | "client", seconds) segments on the machine."""
    env = server.env
    start = env.now
    for kind, seconds in segments:
        if kind == "wire":
            yield env.timeout(seconds)
            continue
        own = server.cores.request() if kind == "server" else None
        if own is not None:
            yield own
        shared = machine.request()
        yield shared
        yield env.timeout(seconds)
        machine.release(shared)
        if own is not None:
            server.cores.release(own)
            server.busy_s += seconds
    latencies.append((env.now - start) * 1000)
    finished.append(env.now)


def start_background(env: simpy.Environment, machine: simpy.Resource, cores: float) -> None:
    """Tenants that keep `cores` core-equivalents of the machine busy on average: ceil(cores)
    of them, each wanting a core for `SLICE_S` out of every SLICE_S / duty seconds."""
    if cores <= 0:
        return
    tenants = math.ceil(cores)
    duty = cores / tenants
    for _ in range(tenants):
        env.process(_tenant(env, machine, SLICE_S * (1 / duty - 1)))


def _tenant(env: simpy.Environment, machine: simpy.Resource,
            idle_s: float) -> Generator[Any, Any, None]:
    while True:
        claim = machine.request()
        yield claim
        yield env.timeout(SLICE_S)
        machine.release(claim)
        if idle_s:
            yield env.timeout(idle_s)
