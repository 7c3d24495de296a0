"""The server-CPU half of `testbed validate`: each protocol's emulated server CPU per
connection beside a simulation whose costs the validation calibrated in the same network,
interleaved with the compared rounds.

Why in the same run: a profile calibrated at another time describes another machine here (a
TCP connection's server cost moved from 73 to 132 us between two calibrations of this shared
host, and 25% of a 100 us cost is within its noise), so a comparison against the standing
`measured` profile tests the machine's drift more than the simulation.

One emulated line (`path_network`, as `connect` uses) and per protocol, in turn, one server
process (`rr_server`, as `connect` starts it) serving a warm-up round counted nowhere, then
calibration and compared rounds alternating, seven and six (`ROUNDS`; `--quick`: calibrate,
compare, calibrate), each a fresh load generator, the server's CPU clock read around it:
`connect`'s measurement, without a process's start and end inside any round. The calibration
rounds' median sets the protocol's per-operation server costs (`tcp.server`; every other
protocol's `<protocol>.server` as its extra over TCP's, the profile's convention); the
compared rounds' median is the emulated figure. The simulation runs the protocol's exchange
in a simpy world charging those costs (`SimNetwork`): it is computed from the calibrated
costs, never from the compared rounds. The calibrated profile is written beside the result
(`costs-validate.json`, loadable with `load_profile("validate", directory)`), so the
comparison can be reproduced.

What this checks: that the simulation's composition of per-operation costs (TCP's work plus
each handshake's extra, placed on the exchange's flights) gives back a connection's server
CPU, and that the cost is stable within a run; an independent test of the simulation is the
rate half (`testbed.validate_rate`), where the simulated rate is a prediction.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.scenario import ConnectionLoad, Topology
from testbed.sim.costs import CostProfile


@dataclass
class ConnectPoint:
    """One protocol's rounds: server CPU per connection of each, by role."""

    protocol: str
    calibration_us: list[float] = field(default_factory=list)
    compared_us: list[float] = field(default_factory=list)

    @property
    def calibrated_us(self) -> float:
        return statistics.median(self.calibration_us)

    @property
    def emulated_us(self) -> float:
        return statistics.median(self.compared_us)


# a round's CPU per connection moved by a third or more within seconds here (the other
# tenants' bursts), so rounds are short and many, calibration and compared alternating
ROUNDS = ("calibrate", "compare") * 6 + ("calibrate",)
QUICK_ROUNDS = ("calibrate", "compare", "calibrate")
ROUND_CONNECTIONS = {"tcp": 300}  # about 25 ms of the server's CPU, as 60 TLS ones take 100
OTHER_ROUND_CONNECTIONS = 60
QUICK_ROUND_CONNECTIONS = 40
WARM_UP_CONNECTIONS = 10  # the server's first connections (lazy set-up): counted nowhere


def round_connections(protocol: str, quick: bool) -> int:
    """Connections per round: 300 for TCP, 60 for the others (six compared rounds: 1800 and
    360 per protocol), 40 when quick (one compared round)."""
    if quick:
        return QUICK_ROUND_CONNECTIONS
    return ROUND_CONNECTIONS.get(protocol, OTHER_ROUND_CONNECTIONS)


def server_rounds(client: Any, server: Any, protocol: str, roles: tuple[str, ...],
                  count: int, cert: Path, key: Path) -> ConnectPoint:
    """One server process of `protocol` for every round (after a warm-up round counted
    nowhere), its CPU clock read around each round of `count` connections from a fresh load
    generator: the server's CPU per connection, as `connection_cost` measures it, without a
    process's start and end in any round."""
    from testbed.apps.hosts import cpu_ns, run_module_json, start_module
    from testbed.apps.protocols import PROTOCOLS
    from testbed.measurements import PORT

    spec = PROTOCOLS[protocol]
    if spec.daemon_suite or spec.auth or spec.resumed:
        raise ValueError(f"{protocol}: validate's connect rounds take library and socket "
                         "protocols, full handshakes only")
    args = ["--port", str(PORT), "--response-bytes", "100"]
    if spec.tls:
        args += ["--tls", spec.tls, "--cert", str(cert), "--key", str(key)]
    if spec.library_suite:
        args += ["--tcpcrypt", spec.library_suite]
    load = ["--host", server.IP(), "--port", str(PORT), "--protocol", protocol]
    point = ConnectPoint(protocol)
    process = start_module(server, "testbed.apps.rr_server", *args)
    try:
        run_module_json(client, "testbed.apps.loadgen", *load,
                        "--connections", str(WARM_UP_CONNECTIONS))
        for role in roles:
            before = cpu_ns(process.pid)
            report = run_module_json(client, "testbed.apps.loadgen", *load,
                                     "--connections", str(count))
            used = cpu_ns(process.pid) - before
            samples = report["samples"]
            if len(samples) != count:
                raise RuntimeError(f"{protocol}: {count - len(samples)} of {count} "
                                   "connections failed")
            if spec.library_suite and not all(s["encrypted"] for s in samples):
                raise RuntimeError(f"{protocol}: not every connection was encrypted")
            target = point.calibration_us if role == "calibrate" else point.compared_us
            target.append(used / count / 1000)
    finally:
        process.kill()
        process.wait()
    return point


def emulated_connect(protocols: tuple[str, ...], quick: bool,
                     say: Callable[[str], None]) -> list[ConnectPoint]:
    """Per protocol, the interleaved calibration and compared rounds on one emulated line."""
    from testbed.apps.protocols import PROTOCOLS
    from testbed.apps.tls_material import write_material
    from testbed.emulation.paths import path_network

    points = []
    with tempfile.TemporaryDirectory(prefix="testbed-validate-") as scratch, \
            path_network("none") as net:
        material = write_material(Path(scratch))
        client, server = net.get("client"), net.get("server")
        for protocol in protocols:
            cert, key = material[PROTOCOLS[protocol].certificate]
            point = server_rounds(client, server, protocol,
                                  QUICK_ROUNDS if quick else ROUNDS,
                                  round_connections(protocol, quick), cert, key)
            points.append(point)
            say(f"connect {protocol}: calibration rounds "
                + ", ".join(f"{v:.0f}" for v in point.calibration_us)
                + " us, compared rounds " + ", ".join(f"{v:.0f}" for v in point.compared_us)
                + " us")
    return points


def connect_profile(base: CostProfile, points: list[ConnectPoint], when: str) -> CostProfile:
    """`base` with TCP's and each protocol's server cost from the calibration rounds."""
    by_protocol = {point.protocol: point for point in points}
    if "tcp" not in by_protocol:
        raise ValueError("connect calibration needs tcp (every other cost is an extra over it)")
    costs = dict(base.costs_us)
    tcp = by_protocol["tcp"].calibrated_us
    costs["tcp.server"] = tcp
    for protocol, point in by_protocol.items():
        if protocol != "tcp":
            costs[f"{protocol}.server"] = max(0.0, point.calibrated_us - tcp)
    environment = {**base.environment, "server_costs_calibrated": when,
                   "server_costs_from": "testbed validate: emulated connect rounds "
                   "interleaved with the compared ones (medians)",
                   "server_calibration_us": {p.protocol: p.calibration_us for p in points}}
    return CostProfile("validate", base.source + "; server costs calibrated by testbed "
                       "validate in the same run (emulated rounds interleaved with the "
                       "compared ones, medians)", costs, base.aead_ns_per_byte, environment)


def simulated_server_cpu_us(protocol: str, profile: CostProfile, connections: int) -> float:
    """A connection's server CPU in a simulated run of `protocol` charging `profile`."""
    from testbed.sim.network import SimNetwork

    network = SimNetwork(Topology(server_cores=1), profile, seed=1)
    return network.run(ConnectionLoad(protocol, connections)).server_cpu_us


def point_record(point: ConnectPoint, simulated: float) -> dict[str, Any]:
    return {"protocol": point.protocol, "calibration_rounds_us": point.calibration_us,
            "compared_rounds_us": point.compared_us, "calibrated_us": point.calibrated_us,
            "emulated_us": point.emulated_us, "simulated_us": simulated}
