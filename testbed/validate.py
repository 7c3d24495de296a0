"""`testbed validate`: the same small experiments in emulation and in simulation with the
`measured` profile, compared metric by metric; the simulation is trusted where it lands within
25% of emulation.

Compared: server CPU per connection (`connect.server_cpu_us.<protocol>`: emulation from the
`connect` experiment, whose `tcpcrypt-*` rows are the in-process library on the kernel's
TCP-ENO, like the simulation's; simulation from a simulated
run of the same protocol) and `connection-rate` at 1 and 2 cores (TCP and TLS 1.3; the
emulated server host pinned to those cores; the simulation puts its clients on the server's
machine too, as the emulation does: `machine_cores`). The result file lists each metric,
both values, the difference and whether it is within the bound; the command exits 1 when
one is not.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from testbed.results import write_atomically
from testbed.runner import run_experiment
from testbed.scenario import ConnectionLoad, Topology

BOUND = 0.25
CONNECT_PROTOCOLS = ("tcp", "tls13", "tcpcrypt-x25519", "tcpcrypt-rsa-exp3")
RATE_PROTOCOLS = ("tcp", "tls13")
RATE_CORES = (1, 2)


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


def runnable_others(interval_s: float = 2.0, every_s: float = 0.02) -> float:
    """Other tenants' runnable threads on this machine, on average over `interval_s` (from
    /proc/stat's procs_running, less this sampling thread): measured before an emulated run,
    what the simulation then shares the machine's cores with (`testbed.sim.machine`)."""
    samples = []
    deadline = time.monotonic() + interval_s
    while time.monotonic() < deadline:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running "):
                samples.append(int(line.split()[1]) - 1)
                break
        time.sleep(every_s)
    return max(0.0, sum(samples) / len(samples)) if samples else 0.0


def simulated_server_cpu_us(protocol: str, profile: str, connections: int) -> float:
    from testbed.sim.costs import load_profile
    from testbed.sim.network import SimNetwork

    network = SimNetwork(Topology(server_cores=1), load_profile(profile), seed=1)
    return network.run(ConnectionLoad(protocol, connections)).server_cpu_us


def validate(out_dir: Path, quick: bool, profile: str = "measured") -> tuple[list[Comparison],
                                                                           Path]:
    protocols = ",".join(RATE_PROTOCOLS)
    cores = ",".join(str(c) for c in RATE_CORES)
    rate_overrides = {"protocols": protocols, "cores": cores,
                      "connections": "200" if quick else "2000"}
    background = runnable_others()
    emulated_rate = run_experiment("connection-rate", out_dir=out_dir / "emulation",
                                   runtime="emulation", overrides=rate_overrides)
    # the simulation of the same thing: clients and server on one machine of this many cores,
    # sharing it with the other tenants' runnable threads counted just before the emulated run
    shared = {**rate_overrides, "machine_cores": str(os.cpu_count() or 1),
              "background_cores": f"{background:.3f}"}
    simulated_rate = run_experiment("connection-rate", out_dir=out_dir / "simulation",
                                    runtime="sim", profile=profile, overrides=shared)
    # as many connections as calibration used: the daemons' fixed costs amortise alike
    connect = run_experiment("connect", out_dir=out_dir / "emulation",
                             overrides={"protocols": ",".join(CONNECT_PROTOCOLS),
                                        "connections": "100" if quick else "300"})
    comparisons = []
    for protocol in CONNECT_PROTOCOLS:
        metric = f"connect.server_cpu_us.{protocol}"
        comparisons.append(compare(metric, connect.metrics.get(metric),
                                   simulated_server_cpu_us(protocol, profile, 200)))
    for protocol in RATE_PROTOCOLS:
        for count in RATE_CORES:
            metric = f"rate.conn_per_s.{protocol}.{count}"
            comparisons.append(compare(metric, emulated_rate.metrics.get(metric),
                                       simulated_rate.metrics.get(metric)))
    document: dict[str, Any] = {
        "schema": 1, "experiment": "validate", "runtime": "emulation+simulation",
        "profile": profile, "bound": BOUND, "quick": quick,
        "runnable_others_before_emulation": background,
        "comparisons": [asdict(c) for c in comparisons],
        "passed": all(c.within for c in comparisons),
    }
    path = out_dir / "validate.json"
    write_atomically(path, document)
    return comparisons, path
