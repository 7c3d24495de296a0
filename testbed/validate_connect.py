"""The server-CPU half of `testbed validate`: each protocol's emulated server CPU per
connection beside a simulation whose costs the validation calibrated in the same network,
interleaved with the compared rounds.

Why in the same run: a profile calibrated at another time describes another machine here (a
TCP connection's server cost moved from 73 to 132 us between two calibrations of this shared
host, and 25% of a 100 us cost is within its noise), so a comparison against the standing
`measured` profile tests the machine's drift more than the simulation.

One emulated line (`path_network`, as `connect` uses) and per protocol, in turn, calibration
and compared rounds alternating, five and four (`ROUNDS`; `--quick`: calibrate, compare,
calibrate), each the same measurement `connect` makes (`connection_cost`: a fresh server
process, the load generator, the server's CPU over its connections). The calibration rounds'
median sets the protocol's per-operation server costs (`tcp.server`; every other protocol's
`<protocol>.server` as its extra over TCP's, the profile's convention); the compared rounds'
median is the emulated figure. The simulation runs the protocol's exchange in a simpy world
charging those costs (`SimNetwork`): it is computed from the calibrated costs, never from the
compared rounds. The calibrated profile is written beside the result (`costs-validate.json`,
loadable with `load_profile("validate", directory)`), so the comparison can be reproduced.

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

# short rounds, alternating, many of them: a round's CPU per connection moved by a third
# within seconds here (tcpcrypt-rsa-exp3: 596 to 954 us), and the median of five rounds
# taken around four others follows the machine where three around two did not
ROUNDS = ("calibrate", "compare") * 4 + ("calibrate",)
QUICK_ROUNDS = ("calibrate", "compare", "calibrate")


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


def round_connections(quick: bool) -> int:
    """Connections per round: 100 (four compared rounds: 400 per protocol, more than the
    full `connect` run validate made before), 50 when quick (one compared round)."""
    return 50 if quick else 100


def emulated_connect(protocols: tuple[str, ...], quick: bool,
                     say: Callable[[str], None]) -> list[ConnectPoint]:
    """Per protocol, the interleaved calibration and compared rounds on one emulated line."""
    from testbed.apps.protocols import PROTOCOLS
    from testbed.apps.tls_material import write_material
    from testbed.emulation.paths import path_network
    from testbed.measurements import connection_cost

    count = round_connections(quick)
    points = [ConnectPoint(protocol) for protocol in protocols]
    with tempfile.TemporaryDirectory(prefix="testbed-validate-") as scratch, \
            path_network("none") as net:
        material = write_material(Path(scratch))
        client, server = net.get("client"), net.get("server")
        for point in points:
            cert, key = material[PROTOCOLS[point.protocol].certificate]
            for role in QUICK_ROUNDS if quick else ROUNDS:
                measured = connection_cost(client, server, point.protocol, count, 100,
                                           cert, key)
                spec = PROTOCOLS[point.protocol]
                if spec.tcpcrypt_suite and measured["encrypted"] < 1.0:
                    raise RuntimeError(f"{point.protocol}: only {measured['encrypted']:.0%} "
                                       "of connections were encrypted")
                target = point.calibration_us if role == "calibrate" else point.compared_us
                target.append(float(measured["server_cpu_us"]))
            say(f"connect {point.protocol}: calibration rounds "
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
