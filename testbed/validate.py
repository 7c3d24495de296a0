"""`testbed validate`: the same small experiments in emulation and in simulation, compared
metric by metric; the simulation is trusted where it lands within 25% of emulation.

Compared: server CPU per connection (`connect.server_cpu_us.<protocol>`: emulation measured
as the `connect` experiment measures it, whose `tcpcrypt-*` rows are the in-process library
on the kernel's TCP-ENO, like the simulation's; simulation from a simulated run of the same
protocol with the server costs the validation calibrated in the same network, in rounds
interleaved with the compared ones: `testbed.validate_connect`) and `connection-rate` at 1
and 2 cores (TCP and TLS 1.3), each emulated point beside a simulation of the same set-up
with costs calibrated around it (`testbed.validate_rate`: the load generators' CPU on the
server's machine, the other tenants counted during the run). The result file lists each
metric, both values, the difference and whether it is within the bound, what each point
modelled, and the host's RSA-2048 sign and X25519 times; the profile the connect rows were
simulated with is written beside it (`costs-validate.json`). The command exits 1 when one
metric is not within the bound.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from testbed.results import write_atomically

BOUND = 0.25
CONNECT_PROTOCOLS = ("tcp", "tls13", "tcpcrypt-x25519", "tcpcrypt-rsa-exp3")
RATE_PROTOCOLS = ("tcp", "tls13")
RATE_CORES = (1, 2)


CONNECT_MODEL = (
    "one emulated line; per protocol, in turn, one server process (a warm-up round "
    "counted nowhere) and calibration and compared rounds interleaved (seven calibration "
    "rounds alternating with six compared ones, 300 TCP connections or 60 of another "
    "protocol each, a fresh load generator per round, the server's CPU clock read around "
    "it; quick: calibrate, compare, calibrate, of 40); the calibration rounds' median "
    "sets the profile's server costs (tcp.server, each other protocol's extra over it), "
    "the compared rounds' median is the emulated figure, and the simulation charges the "
    "profile's costs on the protocol's exchange"
)

RATE_MODEL = (
    "per core count, one emulated network, the server pinned to cores 0..n-1 and the load"
    " generators to the other cores (all cores when none is left); per protocol, the "
    "protocol alone (one connection at a time; two rounds before the saturated run, one "
    "after, the median) gives the server's CPU per connection; a separate saturated "
    "calibration run gives the load generators' CPU per connection under load (and the "
    "part inside the TLS handshake, and of that the part up to the client's first flight): "
    "the workload's demand, an input; the compared "
    "saturated run (4 load generators per server core; 8000 TCP connections, 2000 TLS "
    "ones) counts the other tenants' runnable entities (autogroups); the simulation puts "
    "the server (one blocking process per core, held from accept to its last flight, so "
    "waiting for the client's handshake work after the server's flight, not for its first "
    "flight's) and the same clients on the same cores, processor-shared with that many "
    "always-runnable "
    "others spread over the machine, charging those costs"
)


@dataclass(frozen=True)
class Comparison:
    metric: str
    emulation: float | None
    simulation: float | None
    difference: float | None  # simulation / emulation - 1
    within: bool


def compare(metric: str, emulation: float | None, simulation: float | None,
            bound: float = BOUND) -> Comparison:
    if emulation is None or simulation is None or emulation == 0:
        return Comparison(metric, emulation, simulation, None, False)
    difference = simulation / emulation - 1
    return Comparison(metric, emulation, simulation, difference, abs(difference) <= bound)


def runnable_others(interval_s: float = 2.0) -> float:
    """Other tenants' runnable entities (autogroups) on average over `interval_s` before any
    emulated run (for the record; each rate point counts its own during the run)."""
    from testbed.emulation.tenants import sample_for

    return sample_for(interval_s)


def validate(out_dir: Path, quick: bool, profile: str = "measured",
             say: Callable[[str], None] = print) -> tuple[list[Comparison], Path]:
    from testbed.calibration.primitives import host_costs_us
    from testbed.sim.costs import load_profile, profile_path
    from testbed.validate_connect import (
        connect_profile,
        emulated_connect,
        simulated_server_cpu_us,
    )
    from testbed.validate_connect import point_record as connect_record
    from testbed.validate_rate import (
        emulated_points,
        now,
        point_record,
        rate_profile,
        saturated_connections,
        simulated_rate,
    )

    background = runnable_others()
    host = host_costs_us()
    calibrated_at = now()
    points, calibrations = emulated_points(RATE_PROTOCOLS, RATE_CORES, quick, say)
    machine = os.cpu_count() or 1
    base = load_profile(profile)
    profiles = {cores: rate_profile(base, costs, calibrated_at)
                for cores, costs in calibrations.items()}
    records, simulated = [], {}
    for point in points:
        costs = profiles[point.cores]
        connections = saturated_connections(point.protocol, quick)
        rate = simulated_rate(point, costs, machine, connections)
        bare = simulated_rate(point, costs, machine, connections, with_clients=False)
        waited = simulated_rate(point, costs, machine, connections, first_flight_waited=True)
        simulated[f"rate.conn_per_s.{point.protocol}.{point.cores}"] = rate
        records.append(point_record(point, costs, rate, bare, waited))
    emulated = {f"rate.conn_per_s.{p.protocol}.{p.cores}": p.conn_per_s for p in points}
    connect_points = emulated_connect(CONNECT_PROTOCOLS, quick, say)
    in_run = connect_profile(base, connect_points, now())
    profile_file = profile_path(in_run.name, out_dir)
    write_atomically(profile_file, in_run.to_json())
    comparisons, connect_records = [], []
    for measured in connect_points:
        metric = f"connect.server_cpu_us.{measured.protocol}"
        sim_us = simulated_server_cpu_us(measured.protocol, in_run, 200)
        comparisons.append(compare(metric, measured.emulated_us, sim_us))
        connect_records.append(connect_record(measured, sim_us))
    for protocol in RATE_PROTOCOLS:
        for count in RATE_CORES:
            metric = f"rate.conn_per_s.{protocol}.{count}"
            comparisons.append(compare(metric, emulated.get(metric), simulated.get(metric)))
    document: dict[str, Any] = {
        "schema": 1, "experiment": "validate", "runtime": "emulation+simulation",
        "profile": profile, "bound": BOUND, "quick": quick,
        "host": host,
        "runnable_others_before_emulation": background,
        "connect_model": CONNECT_MODEL,
        "connect_profile": profile_file.name,
        "connect_points": connect_records,
        "rate_model": RATE_MODEL,
        "rate_points": records,
        "rate_calibration": {str(cores): [asdict(c) for c in costs]
                             for cores, costs in calibrations.items()},
        "comparisons": [asdict(c) for c in comparisons],
        "passed": all(c.within for c in comparisons),
    }
    path = out_dir / "validate.json"
    write_atomically(path, document)
    return comparisons, path
