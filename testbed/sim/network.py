"""The simulated network: a server host with N cores (a simpy Resource) behind one path of
links with delay, rate and loss, and clients on the other side; connections run their
protocol's exchange and charge each side's work from the cost profile.

Client machines are not contended (their work adds to the flight's time) unless the topology
puts every host on one machine of `machine_cores` cores, as emulation does: then client work
queues for a machine core too, and server work for one of its own pinned cores and a machine
core (with `clients_apart`, the clients' work on the cores the server is not pinned to;
with `server_blocking`, each server process held from accept to its last flight).
Consecutive flights with no server work become one timeout, so a connection costs few
simulator events. A lost flight is sent again after the retransmission
timeout (1 s for a SYN, 200 ms otherwise, as Linux). Links do not queue: the rate adds each
flight's transmission time. When the topology has a middlebox path, the path's outcome for the
protocol (decided once by the real models and tcpcrypt core, `testbed.sim.paths`) applies:
a path that makes tcpcrypt fall back runs plain TCP, a broken path fails every connection.
"""

from __future__ import annotations

import random
import time
from collections.abc import Generator
from typing import Any

import simpy

from testbed.scenario import ConnectionLoad, LoadReport, Topology
from testbed.sim.costs import CostProfile
from testbed.sim.exchanges import CONNECTION, HANDSHAKE, Flight, exchange
from testbed.sim.machine import SharedCpu, shared_connection, split_machine

SYN_RTO_S = 1.0
RTO_S = 0.2

Step = tuple[float, float]  # (time on the wire and at the client, server CPU seconds) per step


class SimHost:
    """A host whose CPU is `cores` cores: work waits for a free core, then holds it."""

    def __init__(self, env: simpy.Environment, name: str, cores: int) -> None:
        self.env, self.name = env, name
        self.cores = simpy.Resource(env, capacity=cores)
        self.busy_s = 0.0

    def work(self, seconds: float) -> Generator[Any, Any, None]:
        claim = self.cores.request()
        yield claim
        yield self.env.timeout(seconds)
        self.cores.release(claim)
        self.busy_s += seconds


class SimNetwork:
    def __init__(self, topology: Topology, profile: CostProfile, seed: int) -> None:
        self.topology, self.profile, self.seed = topology, profile, seed
        self.random = random.Random(seed)
        self.wall_s = 0.0
        # without loss, a protocol's plan is the same for every connection: computed once
        self._fixed = not topology.loss
        self._plans: dict[str, tuple[list[tuple[float, float]], float]] = {}
        self._machine: SharedCpu | None = None
        self._clients_cpu: SharedCpu | None = None
        self._done: tuple[simpy.Event, int, list[float]] = (simpy.Environment().event(), 0, [])
        if topology.server_blocking and not topology.machine_cores:
            raise ValueError("a blocking server is modelled on a shared machine only "
                             "(machine_cores), as emulation runs it")
        if topology.machine_cores and topology.machine_cores < topology.server_cores:
            raise ValueError(f"a server of {topology.server_cores} cores does not fit a "
                             f"machine of {topology.machine_cores}")

    def _flight_s(self, flight: Flight) -> float:
        topology = self.topology
        hops = 2 if topology.path else 1  # client - middlebox - server
        seconds = hops * topology.delay_ms / 1000
        if topology.rate_mbps:
            seconds += hops * flight.size * 8 / (topology.rate_mbps * 1e6)
        if topology.loss:
            while self.random.random() < 1 - (1 - topology.loss) ** hops:
                seconds += SYN_RTO_S if flight.name.startswith("SYN") else RTO_S
        return seconds

    def plan(self, protocol: str) -> tuple[list[tuple[float, float]], float]:
        """The connection's steps as (seconds before the server works, server seconds), and
        the seconds after the last server work until the client has its response."""
        profile = self.profile
        server_handshake = profile.server_us(protocol) - profile.server_us("tcp")
        wire, client_handshake = self.client_split(protocol)
        steps: list[tuple[float, float]] = []
        for flight in exchange(protocol):
            wire += self._flight_s(flight)
            if not flight.to_server:
                if HANDSHAKE in flight.work:
                    wire += client_handshake
                continue
            work = 0.0
            if CONNECTION in flight.work:
                work += profile.server_us("tcp") / 1e6
            if HANDSHAKE in flight.work:
                work += server_handshake / 1e6
            if work:
                steps.append((wire, work))
                wire = 0.0
        return steps, wire

    def client_split(self, protocol: str) -> tuple[float, float]:
        """(client seconds before the first flight, client seconds on each handshake flight
        it receives). All of its handshake work is on those flights unless the profile says
        how much of it falls inside the handshake (`<protocol>.client_in_handshake`, measured
        by the emulated load generator): the rest then comes before the first flight (setting
        up the TLS object), where no server waits for it. So does the part of the handshake
        up to its first flight (`<protocol>.client_first_flight`: building the ClientHello
        and its key share), which a server deferring accept() until that flight never waits
        for; only the rest (after the server's flight) is on the flights it receives."""
        profile = self.profile
        tcp = profile.client_us("tcp") / 1e6
        handshake = (profile.client_us(protocol) - profile.client_us("tcp")) / 1e6
        flights = sum(1 for f in exchange(protocol) if not f.to_server and HANDSHAKE in f.work)
        inside = profile.costs_us.get(f"{protocol}.client_in_handshake")
        if inside is None or not flights:
            return tcp, handshake
        inside_s = min(handshake, inside / 1e6)
        first_s = min(inside_s, profile.costs_us.get(f"{protocol}.client_first_flight", 0.0)
                      / 1e6)
        return tcp + handshake - inside_s + first_s, (inside_s - first_s) / flights

    def segments(self, protocol: str) -> list[tuple[str, float]]:
        """The connection as ("wire" | "server" | "client", seconds) in order: for a world
        whose clients share the server's machine, where client work also needs a core."""
        profile = self.profile
        server_handshake = (profile.server_us(protocol) - profile.server_us("tcp")) / 1e6
        before, client_handshake = self.client_split(protocol)
        out: list[tuple[str, float]] = [("client", before)]
        accepted = False  # a blocking server waits, from accept on, for every later flight
        for flight in exchange(protocol):
            out.append(("wire", self._flight_s(flight)))
            if not flight.to_server:
                if HANDSHAKE in flight.work:
                    out.append(("client", client_handshake))
                continue
            accepted = accepted or CONNECTION in flight.work
            work = (profile.server_us("tcp") / 1e6 if CONNECTION in flight.work else 0.0) + (
                server_handshake if HANDSHAKE in flight.work else 0.0)
            if work or (accepted and self.topology.server_blocking):
                out.append(("server", work))
        return out

    def _connection(self, server: SimHost, protocol: str, latencies: list[float],
                    finished: list[float]) -> Generator[Any, Any, None]:
        env, cores = server.env, server.cores
        start = env.now
        if self._machine is not None:
            yield from shared_connection(server, self._machine, self.segments(protocol),
                                         latencies, finished, self._clients_cpu,
                                         self.topology.server_blocking)
            self._check_done()
            return
        steps, tail = self._plans[protocol] if self._fixed else self.plan(protocol)
        for wire, work in steps:
            yield env.timeout(wire)
            claim = cores.request()
            yield claim
            yield env.timeout(work)
            cores.release(claim)
            server.busy_s += work
        yield env.timeout(tail)
        latencies.append((env.now - start) * 1000)
        finished.append(env.now)
        self._check_done()

    def _check_done(self) -> None:
        done, total, latencies = self._done
        if len(latencies) == total and not done.triggered:
            done.succeed()

    def run(self, load: ConnectionLoad) -> LoadReport:
        """Run `load` to completion on a fresh world; the report's times are simulated."""
        protocol = self._effective_protocol(load.protocol)
        if protocol is None:
            return LoadReport(load.protocol, 0, 0.0, failed=load.connections)
        if load.connections <= 0:
            return LoadReport(load.protocol, 0, 0.0)
        env = simpy.Environment()
        server = SimHost(env, "server", self.topology.server_cores)
        topology = self.topology
        self._machine = self._clients_cpu = None
        if topology.machine_cores:
            self._machine, self._clients_cpu = split_machine(
                env, topology.machine_cores, topology.server_cores,
                topology.background_cores, topology.clients_apart)
        latencies: list[float] = []
        finished: list[float] = []
        if self._fixed and protocol not in self._plans:
            self._plans[protocol] = self.plan(protocol)
        clock = time.perf_counter()
        if load.offered_per_s > 0:
            env.process(self._arrivals(server, protocol, load, latencies, finished))
        else:
            share, extra = divmod(load.connections, max(1, load.concurrency))
            for index in range(max(1, load.concurrency)):
                count = share + (1 if index < extra else 0)
                if count:
                    env.process(self._client(server, protocol, count, latencies, finished))
        done = env.event()
        self._done = (done, load.connections, latencies)
        env.run(until=done)
        self.wall_s += time.perf_counter() - clock
        return LoadReport(load.protocol, len(latencies), env.now, latencies, server.busy_s,
                          finish_times_s=finished)

    def _client(self, server: SimHost, protocol: str, count: int, latencies: list[float],
                finished: list[float]) -> Generator[Any, Any, None]:
        for _ in range(count):
            yield from self._connection(server, protocol, latencies, finished)

    def _arrivals(self, server: SimHost, protocol: str, load: ConnectionLoad,
                  latencies: list[float], finished: list[float]) -> Generator[Any, Any, None]:
        env = server.env
        arrivals = random.Random(self.seed * 7919 + 1)
        for _ in range(load.connections):
            yield env.timeout(arrivals.expovariate(load.offered_per_s))
            env.process(self._connection(server, protocol, latencies, finished))

    def _effective_protocol(self, protocol: str) -> str | None:
        """The protocol that really runs over this topology's path (None: broken)."""
        if not self.topology.path:
            return protocol
        from testbed.sim.paths import decide

        outcome = decide(self.topology.path, protocol)
        if outcome == "broken":
            return None
        return "tcp" if outcome == "fallback" else protocol
