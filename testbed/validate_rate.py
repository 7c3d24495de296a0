"""The connection-rate half of `testbed validate`: each emulated point beside a simulation of
the same set-up, with costs calibrated seconds before it.

Per server core count, in one emulated network (the server's processes pinned to cores
0..n-1, the load generators to the machine's other cores when there are any, else to all of
them, sharing the server's: `Topology.clients_apart`), per protocol:
  1. calibrate: the protocol alone (one load generator, one connection at a time), the
     server's CPU per connection (its processes' CPU clocks) and the load generator's (its own
     process CPU clock): the client cost measured like the server's, on the same veth path,
     with the same Python load generator the saturated run uses (and, for TLS, how much of
     the client's CPU falls inside its handshake call); two rounds before the
     saturated run and one after it, the median of the three;
  2. the workload's demand: a saturated calibration run (the same load generators as the
     compared run, half its connections), whose load generators' CPU per connection is the
     client cost charged. The clients are the workload, not the system under test: their
     CPU per connection rises under load when they share cores (a TCP connection cost the
     generators 117 and 131 us alone, 155 and 180 us saturated, at 2 cores), and the
     simulation takes that demand as an input, measured in a run other than the compared one;
  3. the compared saturated run (`4 x cores` load generators, as `connection-rate` runs in
     emulation), counting the other tenants' runnable scheduling entities (autogroups) while
     it runs (`testbed.emulation.tenants`).
Then the simulation of each point: the same server (one single-threaded process per core,
serving one connection at a time from accept to close: `Topology.server_blocking`), the
same cores (the server's, and the clients' apart from them or shared), the same number of
clients (each connection's client work charged to the clients' cores) and the other tenants
counted during that point spread over the machine, with the costs from step 1
(`rate_profile`). Nothing is fitted to the emulated rate: the inputs are the server's costs
measured alone, the clients' demand measured in another saturated run, and the count of
others; the rate is the prediction.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from testbed.scenario import ConnectionLoad, Topology
from testbed.sim.costs import CostProfile

# the median of three rounds, two before the saturated run and one after it: the others'
# load drifts within seconds here, and one burst of it moves one round only
CALIBRATION_ROUNDS = 3
CALIBRATION_CONNECTIONS = {"tcp": 1000, "tls13": 200}
# a saturated run of about two seconds or more: 2000 TCP connections took half a second, and
# the 1-core TCP rate of such short runs moved from 3266 to 4748/s between runs with the
# same count of others (the others' bursts do not average out in half a second)
SATURATED_CONNECTIONS = {"tcp": 8000, "tls13": 2000}
QUICK_SATURATED_CONNECTIONS = 200


@dataclass(frozen=True)
class CalibratedCosts:
    """One protocol on the emulated network: the server's CPU per connection alone (the
    system under test: a cost the simulation composes), and the load generator's per
    connection (the workload: alone, and under the saturated load of a separate calibration
    run, which is what the simulation charges)."""

    protocol: str
    server_us: float
    client_us: float  # the load generator's CPU per connection charged (under load)
    client_handshake_us: float = 0.0  # of client_us, inside the TLS handshake call
    client_alone_us: float = 0.0  # the load generator's alone, one connection at a time
    # for the record, not modelled: a connection's time to its first response byte alone
    # (the simulation's links take the topology's default delay)
    alone_first_byte_ms: float = 0.0
    # of client_handshake_us, up to sending the first flight (before the server accepts)
    client_first_flight_us: float = 0.0


@dataclass(frozen=True)
class RatePoint:
    """One emulated saturated run and what its simulation needs."""

    protocol: str
    cores: int
    clients: int
    conn_per_s: float
    server_cpu_us: float  # under load, for comparison with the calibrated cost
    client_cpu_us: float
    others_runnable: float


def rate_profile(base: CostProfile, calibrated: list[CalibratedCosts],
                 when: str) -> CostProfile:
    """`base` with the TCP and each calibrated protocol's server and client costs replaced:
    TCP's as measured, another protocol's as its extra over TCP (the profile's convention)."""
    costs = dict(base.costs_us)
    by_protocol = {c.protocol: c for c in calibrated}
    tcp = by_protocol.get("tcp")
    if tcp is None:
        raise ValueError("rate calibration needs tcp (every other cost is an extra over it)")
    costs["tcp.server"], costs["tcp.client"] = tcp.server_us, tcp.client_us
    for protocol, measured in by_protocol.items():
        if protocol != "tcp":
            costs[f"{protocol}.server"] = max(0.0, measured.server_us - tcp.server_us)
            costs[f"{protocol}.client"] = max(0.0, measured.client_us - tcp.client_us)
            if measured.client_handshake_us:
                costs[f"{protocol}.client_in_handshake"] = measured.client_handshake_us
                costs[f"{protocol}.client_first_flight"] = measured.client_first_flight_us
    environment = {**base.environment, "rate_costs_calibrated": when,
                   "rate_costs": [asdict(c) for c in calibrated]}
    return CostProfile(base.name, base.source + "; TCP and " + ", ".join(
        p for p in by_protocol if p != "tcp") + " costs from an emulated run, one connection "
        "at a time, right before the rate run (testbed validate)", costs,
        base.aead_ns_per_byte, environment)


def saturated_connections(protocol: str, quick: bool) -> int:
    """Connections of a compared saturated run (its demand run takes half as many)."""
    if quick:
        return QUICK_SATURATED_CONNECTIONS
    return SATURATED_CONNECTIONS.get(protocol, SATURATED_CONNECTIONS["tls13"])


def calibration_connections(protocol: str, quick: bool) -> int:
    """Connections per calibration round: about half a second of one protocol alone here (a
    TCP connection takes a fifth of a TLS one's time), a quarter of that when quick."""
    count = CALIBRATION_CONNECTIONS.get(protocol, CALIBRATION_CONNECTIONS["tls13"])
    return max(20, count // 4) if quick else count


def emulated_points(protocols: tuple[str, ...], cores_list: tuple[int, ...], quick: bool,
                    say: Callable[[str], None]) -> tuple[list[RatePoint],
                                                         dict[int, list[CalibratedCosts]]]:
    """Per core count and protocol: calibrate it alone, run it saturated, calibrate again."""
    from experiments.connection_rate import saturating_clients
    from testbed.emulation.connection_load import emulated_load_network

    machine = os.cpu_count() or 1
    points: list[RatePoint] = []
    calibrations: dict[int, list[CalibratedCosts]] = {}
    for cores in cores_list:
        topology = Topology(server_cores=cores, machine_cores=machine, clients_apart=True)
        calibrations[cores] = []
        with emulated_load_network(topology) as network:
            for protocol in protocols:
                alone = ConnectionLoad(protocol, calibration_connections(protocol, quick))
                rounds = [network.run(alone) for _ in range(CALIBRATION_ROUNDS - 1)]
                clients = saturating_clients(network, protocol, cores)
                connections = saturated_connections(protocol, quick)
                demand = network.run(ConnectionLoad(protocol, max(50, connections // 2),
                                                    concurrency=clients))
                report = network.run(ConnectionLoad(protocol, connections, concurrency=clients))
                rounds.append(network.run(alone))
                costs = CalibratedCosts(
                    protocol, statistics.median(r.server_cpu_us for r in rounds),
                    demand.client_cpu_us, demand.client_handshake_cpu_us,
                    statistics.median(r.client_cpu_us for r in rounds),
                    statistics.median(statistics.median(r.latencies_ms) for r in rounds
                                      if r.latencies_ms) if any(r.latencies_ms for r in rounds)
                    else 0.0, demand.client_first_flight_cpu_us)
                calibrations[cores].append(costs)
                others = report.others_runnable or 0.0
                points.append(RatePoint(protocol, cores, clients, report.rate_per_s,
                                        report.server_cpu_us, report.client_cpu_us, others))
                say(f"{cores} core(s), {protocol}: alone server {costs.server_us:.0f} us, "
                    f"client {costs.client_alone_us:.0f} us per connection; client under "
                    f"load {costs.client_us:.0f} us; saturated "
                    f"{report.rate_per_s:.0f}/s, {others:.2f} other runnable entities")
    return points, calibrations


def simulated_rate(point: RatePoint, profile: CostProfile, machine_cores: int,
                   connections: int, with_clients: bool = True,
                   first_flight_waited: bool = False) -> float:
    # `connections`: as many as the emulated point's (the rate is taken in steady state)
    """The simulated rate of the emulated `point`'s set-up: its server cores and clients on
    one machine of `machine_cores`, shared with `point.others_runnable` other entities.
    For the record (how much modelling each changes): `with_clients=False` leaves the
    clients' CPU off the machine; `first_flight_waited=True` has the blocking server wait
    for the client's first flight's work too (the model before that part was measured)."""
    from testbed.sim.network import SimNetwork

    costs = dict(profile.costs_us)
    if not with_clients:
        costs.update({"tcp.client": 0.0, f"{point.protocol}.client": 0.0})
    if first_flight_waited:
        costs.pop(f"{point.protocol}.client_first_flight", None)
    if costs != profile.costs_us:
        profile = CostProfile(profile.name, profile.source, costs, profile.aead_ns_per_byte,
                              profile.environment)
    topology = Topology(server_cores=point.cores, machine_cores=machine_cores,
                        background_cores=point.others_runnable, clients_apart=True,
                        server_blocking=True)
    network = SimNetwork(topology, profile, seed=1)
    return network.run(ConnectionLoad(point.protocol, connections,
                                      concurrency=point.clients)).rate_per_s


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def point_record(point: RatePoint, profile: CostProfile, simulated: float,
                 without_clients: float, first_flight_waited: float) -> dict[str, Any]:
    """What was modelled for one point, for the result file."""
    return {**asdict(point), "simulated_conn_per_s": simulated,
            "simulated_without_client_cpu": without_clients,
            "simulated_first_flight_waited": first_flight_waited,
            "modelled": {"server_cores": point.cores, "clients": point.clients,
                         "server": "one blocking process per core (accept to close)",
                         "client_cores": list(Topology(
                             server_cores=point.cores, machine_cores=os.cpu_count() or 1,
                             clients_apart=True).client_cores()),
                         "background_entities": point.others_runnable,
                         "server_us": profile.server_us(point.protocol),
                         "client_us": profile.client_us(point.protocol),
                         "client_us_in_handshake": profile.costs_us.get(
                             f"{point.protocol}.client_in_handshake", 0.0),
                         "client_us_first_flight": profile.costs_us.get(
                             f"{point.protocol}.client_first_flight", 0.0)}}
