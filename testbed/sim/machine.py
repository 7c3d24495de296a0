"""One machine shared by every host, as an emulation on one machine is, scheduled the way a
fair scheduler shares cores: processor sharing.

Every piece of work running on the machine (a client's or the server's share of a
connection) and every other tenant's runnable thread (the background, always runnable) get
an equal share of the machine's cores, at most one core each: with n of them on c cores,
each runs at min(1, c / n) of a core's speed. A short piece of work therefore never waits
behind a tenant's whole time slice (a waking task gets the core at once under Linux's fair
scheduler), and a long one gets its fair share, not the whole core. Server work also needs
one of the server's own cores first: one single-threaded server process per pinned core.
A blocking server (`Topology.server_blocking`) holds its process from a connection's first
server work to its last. With the clients apart (`Topology.clients_apart`), the server's
pinned cores and the clients' cores are two such machines, the other tenants spread over
both in proportion to their cores.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

if TYPE_CHECKING:
    from testbed.sim.network import SimHost

EPSILON_S = 1e-12


class SharedCpu:
    """`cores` cores shared equally by the running jobs and `tenants` always-running others."""

    def __init__(self, env: simpy.Environment, cores: int, tenants: float = 0.0) -> None:
        if cores < 1 or tenants < 0:
            raise ValueError(f"a machine needs cores >= 1 and tenants >= 0, got {cores}, "
                             f"{tenants}")
        self.env, self.cores, self.tenants = env, cores, tenants
        self._jobs: dict[simpy.Event, float] = {}  # job -> CPU seconds still to do
        self._since = env.now
        self._version = 0

    def speed(self) -> float:
        """The share of a core each running job gets now."""
        sharers = len(self._jobs) + self.tenants
        return min(1.0, self.cores / sharers) if sharers else 1.0

    def run(self, seconds: float) -> Generator[Any, Any, None]:
        """Do `seconds` of CPU work on the machine, sharing it."""
        if seconds <= 0:
            return
        self._advance()
        done = self.env.event()
        self._jobs[done] = seconds
        self._reschedule()
        yield done

    def _advance(self) -> None:
        now = self.env.now
        if self._jobs and now > self._since:
            progress = (now - self._since) * self.speed()
            for job in self._jobs:
                self._jobs[job] -= progress
        self._since = now

    def _reschedule(self) -> None:
        self._version += 1
        if not self._jobs:
            return
        version = self._version
        first = min(self._jobs.values())
        timer = self.env.timeout(max(0.0, first) / self.speed())
        timer.callbacks.append(lambda _event: self._on_timer(version))

    def _on_timer(self, version: int) -> None:
        if version != self._version:
            return  # a job arrived or left since: a later timer holds
        self._advance()
        finished = [job for job, left in self._jobs.items() if left <= EPSILON_S]
        for job in finished:
            del self._jobs[job]
            job.succeed()
        self._reschedule()


def split_machine(env: simpy.Environment, machine_cores: int, server_cores: int,
                  tenants: float, apart: bool) -> tuple[SharedCpu, SharedCpu]:
    """(the server's cores, the clients' cores): one shared machine, or, with the clients
    apart, the server's pinned cores and the rest, each with its part of the other tenants
    (spread over the machine's cores in proportion: the tenants are not pinned)."""
    if not apart or server_cores >= machine_cores:
        machine = SharedCpu(env, machine_cores, tenants)
        return machine, machine
    share = tenants / machine_cores
    rest = machine_cores - server_cores
    return (SharedCpu(env, server_cores, share * server_cores),
            SharedCpu(env, rest, share * rest))


def shared_connection(server: SimHost, machine: SharedCpu,
                      segments: list[tuple[str, float]], latencies: list[float],
                      finished: list[float], clients: SharedCpu | None = None,
                      blocking: bool = False) -> Generator[Any, Any, None]:
    """One connection's ("wire" | "server" | "client", seconds) segments on the machine
    (client work on `clients` when the clients run on cores of their own). A `blocking`
    server process holds its core from the connection's first server segment to its last
    (waiting for the client's flights in between), as a single-threaded server serving one
    connection at a time from accept to close does; else it holds it only while it works."""
    client_cpu = clients or machine
    env = server.env
    start = env.now
    last = max((i for i, (kind, _) in enumerate(segments) if kind == "server"), default=-1)
    held: Any = None
    for index, (kind, seconds) in enumerate(segments):
        if kind == "wire":
            yield env.timeout(seconds)
            continue
        if kind != "server":
            yield from client_cpu.run(seconds)
            continue
        if held is None:
            held = server.cores.request()
            yield held
        yield from machine.run(seconds)
        server.busy_s += seconds
        if not blocking or index == last:
            server.cores.release(held)
            held = None
    latencies.append((env.now - start) * 1000)
    finished.append(env.now)
