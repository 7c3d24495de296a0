"""Connection workloads (`testbed.scenario.ConnectionLoad`) on an emulated network: the line
topology (client - path - server) with the server host pinned to the topology's cores, one
single-threaded `rr_server` per core sharing the port (SO_REUSEPORT), and `concurrency`
load generators in the client host at once (with `Topology.clients_apart`, pinned to the
cores the server is not pinned to, when the machine has any): each starts, imports and sets
up, says "ready", and all connect when told "go" (their start-up stays out of the measured
connections).

TCP, TLS and tcpcrypt through the in-process library (`rr_server --tcpcrypt SUITE`, TCP-ENO
in the kernel program the emulation loads; its listener takes SO_REUSEPORT like the TLS
one, so each core's process accepts its share). A tcpcrypt run whose connections were not
all encrypted is refused (it would measure plain TCP under a tcpcrypt label). Not here: the
daemon's `tcpcryptd-*` rows and the authenticated ones (see `experiments/connect.py`).
Resumed tcpcrypt rows run on one server core only: each process has its own resumption
cache, and the library resets (rather than running a full handshake) a connection that
resumes a session another process holds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from testbed.emulation.tenants import OtherTenants
from testbed.scenario import ConnectionLoad, LoadReport, Topology

PORT = 8000
SUPPORTED = ("tcp", "tls12-rsa", "tls12-rsa-resumed", "tls13", "tls13-resumed",
             "tcpcrypt-x25519", "tcpcrypt-x25519-resumed", "tcpcrypt-rsa-exp3",
             "tcpcrypt-rsa-exp3-resumed")


class EmulatedLoadNetwork:
    def __init__(self, net: Any, topology: Topology, cert: Path, key: Path) -> None:
        self.net, self.topology, self.cert, self.key = net, topology, cert, key

    def run(self, load: ConnectionLoad) -> LoadReport:
        from testbed.apps.hosts import cpu_ns, start_module, stop_process
        from testbed.apps.protocols import PROTOCOLS

        if load.protocol not in SUPPORTED:
            raise ValueError(f"the emulated load network runs {', '.join(SUPPORTED)}, not "
                             f"{load.protocol} (daemon and authenticated rows: see connect)")
        spec = PROTOCOLS[load.protocol]
        if spec.library_suite and spec.resumed and self.topology.server_cores > 1:
            raise ValueError(refuse_resumed_library(load.protocol))
        client, server = self.net.get("client"), self.net.get("server")
        args = ["--port", str(PORT), "--response-bytes", str(load.response_bytes),
                "--reuse-port"]
        if spec.tls:
            args += ["--tls", spec.tls, "--cert", str(self.cert), "--key", str(self.key)]
        if spec.library_suite:
            args += ["--tcpcrypt", spec.library_suite] + (["--resumption"] if spec.resumed
                                                          else [])
        servers = [start_module(server, "testbed.apps.rr_server", *args)
                   for _ in range(self.topology.server_cores)]
        try:
            pin(servers, range(self.topology.server_cores))
            clients = max(1, load.concurrency)
            share = max(1, load.connections // clients)
            generators = start_generators(client, clients, [
                "--host", server.IP(), "--port", str(PORT), "--protocol", load.protocol,
                "--connections", str(share)])
            if self.topology.clients_apart:  # on the cores the server is not pinned to
                pin(generators, self.topology.client_cores())
            before = sum(cpu_ns(process.pid) for process in servers)
            go = time.time()
            with OtherTenants([p.pid for p in servers + generators]) as others:
                reports = finish_generators(generators)
            used = sum(cpu_ns(process.pid) for process in servers) - before
        finally:
            for process in servers:
                stop_process(process)
        samples = [sample for report in reports for sample in report["samples"]]
        if spec.library_suite:
            plain = sum(1 for sample in samples if not sample.get("encrypted"))
            if plain:
                raise RuntimeError(f"{load.protocol}: {plain} of {len(samples)} connections "
                                   "were not encrypted")
        handled = len(samples) + (clients if spec.resumed else 0)
        # every generator started connecting at `go`, set up already (the Python start-up
        # of the others no longer competes with the measured connections); the rate is taken
        # between the 10th and the 90th percentile completion, as in simulation
        done = sorted(float(s["done_s"]) - go for s in samples)
        # the generators' CPU (each reports its own over its measured connections)
        client_s = sum(float(report.get("cpu_s", 0.0)) for report in reports)
        return LoadReport(load.protocol, len(samples), done[-1] if done else 0.0,
                          [s["first_byte_ms"] for s in samples],
                          used / 1e9 * len(samples) / max(1, handled), finish_times_s=done,
                          client_cpu_s=client_s, others_runnable=others.average,
                          client_handshake_cpu_s=sum(float(s.get("handshake_cpu_us", 0.0))
                                                     for s in samples) / 1e6,
                          client_first_flight_cpu_s=sum(
                              float(s.get("handshake_first_flight_cpu_us", 0.0))
                              for s in samples) / 1e6)


def pin(processes: list[subprocess.Popen[str]], cores: range) -> None:
    """Pin `processes` (every thread) to `cores`. The server's go to cores 0..n-1, the
    server host's cores: Mininet's plain hosts ignore their `cores` parameter (only its
    CPU-limited hosts, which need cgroup set-up, apply it), so the pinning is done here."""
    import os

    allowed = set(cores)
    for process in processes:
        for task in Path(f"/proc/{process.pid}/task").iterdir():
            os.sched_setaffinity(int(task.name), allowed)


def start_generators(host: Any, count: int, args: list[str]) -> list[subprocess.Popen[str]]:
    """`count` load generators in `host`, each imported and set up, waiting for "go"."""
    generators: list[subprocess.Popen[str]] = []
    try:
        for _ in range(count):
            process: subprocess.Popen[str] = host.popen(
                [sys.executable, "-m", "testbed.apps.loadgen", *args, "--wait-for-go"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
            generators.append(process)
        for process in generators:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                _, error = process.communicate(timeout=10)
                raise RuntimeError(f"a load generator did not start: {error.strip()[-500:]}")
    except BaseException:
        for process in generators:
            process.kill()
            process.wait()
        raise
    return generators


def finish_generators(generators: list[subprocess.Popen[str]],
                      timeout_s: float = 300) -> list[Any]:
    """Say "go" to every generator at once, then collect each one's JSON report."""
    try:
        for process in generators:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        reports = []
        for process in generators:
            out, error = process.communicate(timeout=timeout_s)
            if process.returncode != 0:
                raise RuntimeError(f"testbed.apps.loadgen failed: {error.strip()[-500:]}")
            reports.append(json.loads(out))
        return reports
    finally:
        for process in generators:
            if process.poll() is None:
                process.kill()
                process.wait()


def refuse_resumed_library(label: str) -> str:
    """Why a resumed library row cannot run on a server of several processes."""
    return (f"{label} on more than one server core: each core's process keeps its own "
            "resumption cache, and the library resets a connection that resumes a session "
            "another process holds (one core only)")


@contextmanager
def emulated_load_network(topology: Topology) -> Iterator[EmulatedLoadNetwork]:
    import os

    from testbed.apps.tls_material import write_self_signed
    from testbed.emulation.network import emulated_network
    from topologies.line import LineTopo

    if topology.machine_cores not in (0, os.cpu_count()):
        raise ValueError(f"an emulation shares this machine's {os.cpu_count()} cores; "
                         f"machine_cores={topology.machine_cores} cannot be honoured")
    if topology.clients_apart and not topology.machine_cores:
        raise ValueError("clients_apart pins the clients to the machine's cores the server "
                         "does not use: it needs machine_cores")
    if topology.clients != 1 or topology.loss or topology.rate_mbps:
        raise ValueError("the emulated load network has one client and unshaped links "
                         "(put a link(...) model on the path for delay and loss)")
    with tempfile.TemporaryDirectory(prefix="testbed-tls-") as scratch:
        cert, key = write_self_signed(Path(scratch))
        paths = (topology.path,) if topology.path else ()
        with emulated_network(LineTopo(paths=paths, server_cores=topology.server_cores)) as net:
            yield EmulatedLoadNetwork(net, topology, cert, key)
