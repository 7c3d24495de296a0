"""`testbed calibrate`: time everything, write the three cost profiles atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from testbed.calibration.derive import kernel_profile, xeon_2008_profile
from testbed.calibration.primitives import (
    aead_ns_per_byte,
    primitive_costs,
    tcpcrypt_handshake_us,
)
from testbed.calibration.sockets import median_costs
from testbed.environment import capture_environment
from testbed.results import write_atomically
from testbed.sim.costs import DATA_DIR, CostProfile, profile_path

SOCKET_PROTOCOLS = ("tcp", "tls12-rsa", "tls12-rsa-resumed", "tls13", "tls13-resumed")
TCPCRYPT_SUITES = {"tcpcrypt-x25519": "x25519", "tcpcrypt-rsa-exp3": "rsa-exp3-2048"}


def measure(connections: int, rounds: int, say: Callable[[str], None]) -> CostProfile:
    """The `measured` profile of this machine."""
    from testbed.apps.tls_material import write_self_signed

    costs: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="testbed-calibrate-") as scratch:
        cert, key = write_self_signed(Path(scratch))
        tcp_server, tcp_client = median_costs("tcp", connections, rounds, cert, key)
        costs["tcp.server"], costs["tcp.client"] = tcp_server.cpu_us, tcp_client.cpu_us
        costs["tcp.server_kernel"] = tcp_server.kernel_us
        costs["tcp.client_kernel"] = tcp_client.kernel_us
        say(f"tcp: server {tcp_server.cpu_us:.0f} us, client {tcp_client.cpu_us:.0f} us")
        for protocol in SOCKET_PROTOCOLS[1:]:
            server, client = median_costs(protocol, connections, rounds, cert, key)
            costs[f"{protocol}.server"] = max(0.0, server.cpu_us - tcp_server.cpu_us)
            costs[f"{protocol}.client"] = max(0.0, client.cpu_us - tcp_client.cpu_us)
            say(f"{protocol}: server {server.cpu_us:.0f} us, client {client.cpu_us:.0f} us")
    for label, suite in TCPCRYPT_SUITES.items():
        for resumed in (False, True):
            name = label + ("-resumed" if resumed else "")
            client_us, server_us = tcpcrypt_handshake_us(suite, resumed, connections)
            costs[f"{name}.server"], costs[f"{name}.client"] = server_us, client_us
            say(f"{name}: server {server_us:.0f} us, client {client_us:.0f} us")
    costs.update(primitive_costs(max(20, connections // 2)))
    environment = capture_environment()
    load = os.getloadavg()
    environment.update(calibrated=datetime.now(UTC).isoformat(timespec="seconds"),
                       load_average=load, connections=connections, rounds=rounds,
                       machine_loaded=load[0] >= 0.5 * (os.cpu_count() or 1))
    if environment["machine_loaded"]:
        say(f"note: load average {load[0]:.1f} on {os.cpu_count()} cores: the machine was "
            "loaded while calibrating; the figures are noisy")
    return CostProfile(
        "measured", "testbed calibrate on this machine: loopback TCP and TLS (OpenSSL via "
        "Python's ssl) per side, this project's tcpcrypt core in memory per side, primitives; "
        "thread CPU time, medians over rounds", costs, aead_ns_per_byte(), environment,
    )


EMULATED_LABELS = ("tcp", "tls12-rsa", "tls12-rsa-resumed", "tls13", "tls13-resumed",
                   "tcpcrypt-x25519", "tcpcrypt-x25519-resumed", "tcpcrypt-rsa-exp3",
                   "tcpcrypt-rsa-exp3-resumed")


def with_emulated_server_costs(profile: CostProfile, connections: int,
                               say: Callable[[str], None]) -> CostProfile:
    """The profile with every server cost taken from an emulated `connect` run: what the
    server host really pays there (veth instead of loopback; for tcpcrypt, the in-process
    library on the kernel's TCP-ENO: its socket calls and framing beside the protocol core).
    The figures they replace stay, renamed `<name>.loopback` (TCP, TLS) and `<name>.core`
    (tcpcrypt in memory)."""
    from testbed.runner import run_experiment

    with tempfile.TemporaryDirectory(prefix="testbed-calibrate-") as scratch:
        result = run_experiment("connect", runtime="emulation", out_dir=Path(scratch),
                                overrides={"protocols": ",".join(EMULATED_LABELS),
                                           "connections": str(connections)})
    costs = dict(profile.costs_us)
    emulated = {label: result.metrics.get(f"connect.server_cpu_us.{label}")
                for label in EMULATED_LABELS}
    tcp = emulated["tcp"]
    if tcp is None:
        raise RuntimeError("the emulated connect run reported no TCP server cost")
    costs["tcp.server.loopback"], costs["tcp.server"] = costs["tcp.server"], tcp
    for label, value in emulated.items():
        if label == "tcp" or value is None:
            continue
        suffix = "core" if label.startswith("tcpcrypt") else "loopback"
        costs[f"{label}.server.{suffix}"] = costs[f"{label}.server"]
        costs[f"{label}.server"] = max(0.0, value - tcp)
        say(f"{label}: emulated server {value:.0f} us per connection")
    environment = {**profile.environment, "server_costs_from": "an emulated connect run "
                   f"({connections} connections per protocol; tcpcrypt through the library)",
                   "emulation_warnings": result.warnings}
    return CostProfile(profile.name, profile.source + "; server costs from an emulated "
                       "connect run (testbed calibrate --emulation)", costs,
                       profile.aead_ns_per_byte, environment)


def calibrate(out_dir: Path = DATA_DIR, connections: int = 300, rounds: int = 3,
              say: Callable[[str], None] = print, emulation: bool = False) -> list[Path]:
    """Measure, derive, write costs-measured/kernel/xeon-2008.json into `out_dir`."""
    measured = measure(connections, rounds, say)
    if emulation:
        measured = with_emulated_server_costs(measured, connections, say)
    kernel = kernel_profile(measured)
    written = []
    for profile in (measured, kernel, xeon_2008_profile(kernel)):
        path = profile_path(profile.name, out_dir)
        write_atomically(path, profile.to_json())
        written.append(path)
    return written
