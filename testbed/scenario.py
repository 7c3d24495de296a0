"""What an experiment hands its runtime, as plain data: the topology it needs and the
workloads to run on it, and what a workload reports back (the same in every runtime)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Topology:
    """Clients, one path (a middlebox chain, "" for none) and a server of `server_cores`."""

    server_cores: int = 1
    clients: int = 1
    path: str = ""
    delay_ms: float = 0.05  # one way, per link
    rate_mbps: float = 0.0  # 0: unlimited
    loss: float = 0.0
    # 0: clients run on machines of their own; N: every host shares one machine of N cores,
    # the server pinned to `server_cores` of them (what an emulation on one machine is)
    machine_cores: int = 0
    # with machine_cores: other tenants' scheduling entities (threads, or sessions where the
    # kernel's autogroups are on), always runnable, sharing that machine's cores fairly with
    # this run's work (`testbed.sim.machine`, `testbed.emulation.tenants`)
    background_cores: float = 0.0
    # with machine_cores: the clients pinned to the cores the server is not pinned to (cores
    # server_cores..machine_cores-1), when there are any; else they share the server's
    clients_apart: bool = False
    # with machine_cores: each server process serves one connection at a time, from accept
    # to close, waiting for the client's flights in between (the emulated rr_server)
    server_blocking: bool = False

    def client_cores(self) -> range:
        """The machine's cores the clients run on: the others' when apart, else all."""
        if self.clients_apart and self.server_cores < self.machine_cores:
            return range(self.server_cores, self.machine_cores)
        return range(self.machine_cores)


@dataclass(frozen=True)
class ConnectionLoad:
    """Connections that each send a small request and read a small response, then close.

    Closed loop with `concurrency` clients when `offered_per_s` is 0 (saturation), else an open
    loop of Poisson arrivals at `offered_per_s`."""

    protocol: str
    connections: int
    concurrency: int = 1
    offered_per_s: float = 0.0
    response_bytes: int = 100


@dataclass
class LoadReport:
    protocol: str
    completed: int
    duration_s: float  # from the first connection's start to the last one's end
    latencies_ms: list[float] = field(default_factory=list)
    server_cpu_s: float = 0.0
    failed: int = 0
    finish_times_s: list[float] = field(default_factory=list)  # when each one ended
    client_cpu_s: float = 0.0  # the load generators' CPU over the measured connections
    client_handshake_cpu_s: float = 0.0  # of which inside the TLS handshake call
    # of that, up to sending the first flight (before a deferred accept() returns)
    client_first_flight_cpu_s: float = 0.0
    # emulation: other tenants' runnable scheduling entities (autogroups) on average during
    # the run (None: not known)
    others_runnable: float | None = None

    @property
    def rate_per_s(self) -> float:
        """Completions per second in steady state: between the 10th and the 90th percentile
        completion when their times are known (no ramp-up, no drain), else overall."""
        times = sorted(self.finish_times_s)
        if len(times) >= 50:
            low, high = len(times) // 10, (9 * len(times)) // 10
            if times[high] > times[low]:
                return (high - low) / (times[high] - times[low])
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def server_cpu_us(self) -> float:
        return self.server_cpu_s / self.completed * 1e6 if self.completed else 0.0

    @property
    def client_cpu_us(self) -> float:
        return self.client_cpu_s / self.completed * 1e6 if self.completed else 0.0

    @property
    def client_handshake_cpu_us(self) -> float:
        return self.client_handshake_cpu_s / self.completed * 1e6 if self.completed else 0.0

    @property
    def client_first_flight_cpu_us(self) -> float:
        return self.client_first_flight_cpu_s / self.completed * 1e6 if self.completed else 0.0

    def latency_ms(self, fraction: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        if fraction == 0.5:
            return statistics.median(self.latencies_ms)
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
