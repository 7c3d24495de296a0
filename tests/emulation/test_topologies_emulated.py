"""The dumbbell and access-paths topologies on the emulation runtime: nodes with more than two
interfaces (a middlebox node with several client-side links, a server with one link per access
path) are wired with Linux bridges inside their namespaces, carry real transfers intact, and
leave nothing behind."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from testbed.apps.tcpcryptd_host import start_tcpcryptd, stop_tcpcryptd, tcpcrypt_cli
from testbed.emulation.middlebox_nodes import EngineReport, middlebox_reports
from testbed.emulation.network import emulated_network
from testbed.emulation.state import STATE_DIR, load_states
from topologies.access_paths import AccessPathsTopo, draw_paths
from topologies.dumbbell import DumbbellTopo

PORT = 8080
ACCESS_SEED = 4  # draws strip, strip+resegment, passthrough, strip+proxy-ack for 4 clients


@contextmanager
def no_emulation_running() -> Iterator[None]:
    """Holds the emulation lock: no run (ours or another engineer's) is mid-setup meanwhile."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def root_links() -> set[str]:
    with no_emulation_running():
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                             check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def assert_nothing_left(before: set[str]) -> None:
    assert root_links() == before
    # this process's runs only: other emulation runs may be in progress on this machine
    assert [s for s in load_states() if s.owner_pid == os.getpid()] == []


def serve(server: Any, directory: Path) -> None:
    """http.server in `directory`, once it answers on the server's loopback (so that the
    clients' first connection is a real one, not a refused probe)."""
    server.cmd(f"cd {directory} && python3 -m http.server {PORT} >/dev/null 2>&1 &")
    for _ in range(50):
        if "200" in server.cmd(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 2 "
                               f"http://127.0.0.1:{PORT}/"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{server.name} does not serve")


def fetch_all(clients: list[Any], server: Any) -> dict[str, str]:
    """Every client fetches the blob at the same time; {client: SHA-256 received}."""
    processes = {
        client.name: client.popen(
            ["sh", "-c", f"curl -s --max-time 60 http://{server.IP()}:{PORT}/blob | sha256sum"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for client in clients
    }
    return {name: process.communicate(timeout=90)[0].split()[0]
            for name, process in processes.items()}


def misaddressed(host: Any) -> int:
    """IPv4 packets `host` received for an address not its own (a frame sent to the wrong MAC)."""
    lines = [line.split() for line in host.cmd("cat /proc/net/snmp").splitlines()
             if line.startswith("Ip:")]
    return int(dict(zip(lines[0], lines[1], strict=True))["InAddrErrors"])


def carried(report: EngineReport) -> int:
    """Bytes an engine read, headers included (frames are super-packets of up to 64 KB)."""
    return int(report.engine.get("bytes-in", 0))


def test_dumbbell_clients_transfer_concurrently_through_the_shared_bottleneck_intact(
    tmp_path: Path,
) -> None:
    data = os.urandom(3_000_000)
    (tmp_path / "blob").write_bytes(data)
    before = root_links()
    topo = DumbbellTopo(clients=3, bottleneck="link(delay_ms=2)")
    with emulated_network(topo) as net:
        clients = [net.get(f"c{k}") for k in (1, 2, 3)]
        server, left = net.get("server"), net.get("left")
        links = left.cmd("ip -o link show")
        assert "left-br" in links and "left-eng" in links and "left-brp" in links
        serve(server, tmp_path)
        received = fetch_all(clients, server)
        reports = {r.node: r for r in middlebox_reports(net)}
        wrong_host = {client.name: misaddressed(client) for client in clients}
    assert received == {c: hashlib.sha256(data).hexdigest() for c in ("c1", "c2", "c3")}
    # the bottleneck delays frames for three clients: each went to its own client's MAC (the
    # engine once used the last header seen, and SYN-ACKs reached the wrong client)
    assert wrong_host == {"c1": 0, "c2": 0, "c3": 0}
    # all three downloads (3 MB each) crossed both engines
    assert carried(reports["left"]) > 3 * len(data) and carried(reports["right"]) > 3 * len(data)
    assert_nothing_left(before)


def test_access_paths_clients_each_reach_the_server_through_their_own_chain(
    tmp_path: Path,
) -> None:
    data = os.urandom(2_000_000)
    (tmp_path / "blob").write_bytes(data)
    paths = draw_paths("paper-2010", 4, ACCESS_SEED)
    assert len(set(paths)) == 4  # four different chains, passthrough among them
    before = root_links()
    with emulated_network(AccessPathsTopo(clients=4, seed=ACCESS_SEED)) as net:
        clients = [net.get(f"c{k}") for k in (1, 2, 3, 4)]
        server = net.get("server")
        assert f"inet {server.IP()}/" in server.cmd("ip -o addr show dev server-br")
        serve(server, tmp_path)
        for client in clients:
            assert "200" in client.cmd(f"curl -s -o /dev/null -w '%{{http_code}}' "
                                       f"--max-time 5 http://{server.IP()}:{PORT}/")
        received = fetch_all(clients, server)
        reports = {r.node: r for r in middlebox_reports(net)}
    assert received == {f"c{k}": hashlib.sha256(data).hexdigest() for k in (1, 2, 3, 4)}
    assert [reports[f"mb{k}"].path for k in (1, 2, 3, 4)] == paths
    for k in (1, 2, 3, 4):  # each 2 MB download crossed its client's own middlebox node
        assert carried(reports[f"mb{k}"]) > len(data), (k, reports[f"mb{k}"])
    assert_nothing_left(before)


def test_tcpcrypt_falls_back_on_the_stripping_path_and_encrypts_on_the_clean_one(
    tmp_path: Path,
) -> None:
    data = os.urandom(500_000)
    (tmp_path / "blob").write_bytes(data)
    before = root_links()
    topo = AccessPathsTopo(paths=("passthrough", "strip-options(on=syn)"))
    with emulated_network(topo) as net:
        clean, stripped, server = net.get("c1"), net.get("c2"), net.get("server")
        daemons = [start_tcpcryptd(host, ports=[PORT]) for host in (server, clean, stripped)]
        try:
            serve(server, tmp_path)
            received = fetch_all([clean, stripped], server)
            time.sleep(0.2)  # the daemons close their records once both relays have ended
            records = {host.name: tcpcrypt_cli(host, "sessions", timeout=15)
                       for host in (clean, stripped, server)}
        finally:
            for daemon in daemons:
                stop_tcpcryptd(daemon)
        addresses = {clean.IP(): "c1", stripped.IP(): "c2"}
    assert received == {"c1": hashlib.sha256(data).hexdigest(),
                        "c2": hashlib.sha256(data).hexdigest()}
    outcomes: dict[str, set[str]] = {"c1": set(), "c2": set(), "server<-c1": set(),
                                     "server<-c2": set()}
    for name in ("c1", "c2"):
        for record in records[name]:
            if record["role"] == "A":
                outcomes[name].add("encrypted" if record["encrypted"] else record["state"])
    for record in records["server"]:
        peer = addresses[record["wire_remote"].split(":")[0]]
        outcomes[f"server<-{peer}"].add("encrypted" if record["encrypted"] else record["state"])
    assert outcomes == {"c1": {"encrypted"}, "c2": {"fallback"},
                        "server<-c1": {"encrypted"}, "server<-c2": {"fallback"}}, records
    assert_nothing_left(before)
