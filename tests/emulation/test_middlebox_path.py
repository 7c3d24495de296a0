"""Models on a real path: the AF_PACKET bridge engine between client and server in Mininet."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from testbed.emulation.middlebox_nodes import middlebox_reports
from testbed.emulation.network import emulated_network
from testbed.emulation.state import load_states
from topologies.line import LineTopo


def transfer_sha256(path: str, directory: Path) -> tuple[str, str]:
    """(sent, received) SHA-256 of a 2 MB file fetched with curl over the path."""
    data = os.urandom(2_000_000)
    (directory / "blob").write_bytes(data)
    with emulated_network(LineTopo(paths=(path,))) as net:
        client, server = net.get("client"), net.get("server")
        server.cmd(f"cd {directory} && python3 -m http.server 8080 >/dev/null 2>&1 &")
        for _ in range(50):
            if "200" in client.cmd(f"curl -s -o /dev/null -w '%{{http_code}}' "
                                   f"--max-time 2 http://{server.IP()}:8080/"):
                break
            time.sleep(0.1)
        received = client.cmd(f"curl -s --max-time 60 http://{server.IP()}:8080/blob "
                              "| sha256sum").split()[0]
    return hashlib.sha256(data).hexdigest(), received


# proxy-ack used to stall here now and then: it acknowledged data past a gap (a frame the
# engine's socket had dropped), so the sender freed data the receiver never got.
@pytest.mark.parametrize("path", [
    "passthrough", "strip-options(on=all)", "seq-rewrite(seed=7)", "resegment(max_bytes=500)",
    "resegment(max_bytes=500),resegment(mode=coalesce,max_bytes=1200)", "proxy-ack",
    "proxy-ack,link(loss=0.02,seed=5)",  # data to the client: lost before the proxy
])
def test_data_arrives_intact_through_the_model(path: str, tmp_path: Path) -> None:
    sent, received = transfer_sha256(path, tmp_path)
    assert received == sent
    assert [s for s in load_states() if s.owner_pid == os.getpid()] == []  # this run's


def test_link_delay_is_applied_in_each_direction() -> None:
    with emulated_network(LineTopo(paths=("link(delay_ms=10)",))) as net:
        client, server = net.get("client"), net.get("server")
        server.cmd("python3 -m http.server 8080 >/dev/null 2>&1 &")
        time.sleep(0.5)
        connect = client.cmd(f"curl -s -o /dev/null --retry 5 --retry-connrefused "
                             f"-w '%{{time_connect}}' http://{server.IP()}:8080/")
        [report] = middlebox_reports(net)
    rtt_ms = float(connect) * 1000
    assert rtt_ms >= 19.5, rtt_ms  # the SYN and the SYN-ACK each waited 10 ms
    # every delay counted from the kernel's receive stamp (none fell back to the read time)
    assert report.engine.get("stamp-unusable", 0) == 0, report.engine
    assert sum(v for k, v in report.engine.items() if k.startswith("read-lag")) > 0
