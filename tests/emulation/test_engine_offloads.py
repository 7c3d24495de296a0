"""The bridge engine on a path whose hosts keep their offloads: super-packets cross it, edited
packets carry checksums the receiver verifies, loss still acts per wire segment, and runs
through a path record the engine's CPU and every interface's offloads."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from testbed.emulation.middlebox_nodes import EngineReport, stop_middleboxes
from testbed.emulation.network import emulated_network
from testbed.runner import run_experiment
from topologies.line import LineTopo

SIZE = 4_000_000


def checksum_errors(host: Any) -> int:
    """TCP segments `host` dropped for a bad checksum (InCsumErrors)."""
    lines = [line.split() for line in host.cmd("cat /proc/net/snmp").splitlines()
             if line.startswith("Tcp:")]
    return int(dict(zip(lines[0], lines[1], strict=True))["InCsumErrors"])


def fetch(path: str, directory: Path, *, verify_checksums: bool = False
          ) -> tuple[str, str, EngineReport, dict[str, str], int]:
    """(sent, received SHA-256, the engine's report, offloads, receivers' checksum errors)
    of a file fetched over `path`. With `verify_checksums`, the engine's egress computes
    checksums in software (tx off) and the end hosts verify every one (rx off): a wrong
    partial checksum from the engine would be dropped instead of trusted along the veths."""
    data = os.urandom(SIZE)
    (directory / "blob").write_bytes(data)
    with emulated_network(LineTopo(paths=(path,))) as net:
        client, server, middlebox = net.get("client"), net.get("server"), net.get("mb1")
        offloads = dict(net.offload_settings)
        if verify_checksums:
            for interface in ("mb1-eth0", "mb1-eth1"):
                middlebox.cmd(f"ethtool -K {interface} tx off")
            client.cmd("ethtool -K client-eth0 rx off")
            server.cmd("ethtool -K server-eth0 rx off")
        server.cmd(f"cd {directory} && python3 -m http.server 8080 >/dev/null 2>&1 &")
        for _ in range(50):
            if "200" in client.cmd(f"curl -s -o /dev/null -w '%{{http_code}}' "
                                   f"--max-time 2 http://{server.IP()}:8080/"):
                break
            time.sleep(0.1)
        received = client.cmd(f"curl -s --max-time 60 http://{server.IP()}:8080/blob "
                              "| sha256sum").split()[0]
        errors = checksum_errors(client) + checksum_errors(server)
        (report,) = stop_middleboxes(net)
    return hashlib.sha256(data).hexdigest(), received, report, offloads, errors


def test_tcp_crosses_the_engine_intact_with_every_offload_on(tmp_path: Path) -> None:
    sent, received, report, offloads, _ = fetch("passthrough", tmp_path)
    assert received == sent
    for interface in ("client:client-eth0", "server:server-eth0", "mb1:mb1-eth0",
                      "mb1:mb1-eth1"):
        assert "tso=on" in offloads[interface] and "tx=on" in offloads[interface], offloads
    # data crossed as super-packets: far fewer frames than 1448-byte segments
    assert report.engine["bytes-in"] > SIZE
    assert report.engine["fast-forwarded"] < SIZE / 1448


@pytest.mark.parametrize(("path", "edits"), [
    ("seq-rewrite(seed=7)", "forward"),           # every packet, super-packets included
    ("strip-options(on=syn,kinds=8)", "stripped"),  # the SYN loses its timestamps
])
def test_edited_packets_carry_checksums_the_receiver_verifies(
        path: str, edits: str, tmp_path: Path) -> None:
    sent, received, report, _, errors = fetch(path, tmp_path, verify_checksums=True)
    assert received == sent
    assert errors == 0
    assert report.models[0]["stats"].get(edits, 0) >= 1, report
    assert not report.problem and not report.engine.get("send-errors"), report


def test_loss_still_drops_one_percent_of_wire_segments(tmp_path: Path) -> None:
    sent, received, report, _, _ = fetch("link(loss=0.01,seed=4)", tmp_path)
    assert received == sent
    stats = report.models[0]["stats"]
    assert report.engine["super-packets-split"] > 0
    assert stats["seen"] > SIZE / 1448  # each wire segment met the model
    assert 0.004 <= stats["drop"] / stats["seen"] <= 0.02, stats


def test_throughput_through_a_path_records_the_path_engine_cpu_and_offloads(
        tmp_path: Path) -> None:
    result = run_experiment("throughput", quick=True, out_dir=tmp_path,
                            overrides={"path": "passthrough", "protocols": "tcp"})
    (row,) = [r for r in result.rows if r.get("protocol") == "tcp"]
    assert row["path"] == "passthrough" and row["sha256_ok"]
    assert 0 < row["engine_cpu"] <= 1.5 and row["engine_cpu"] <= row["engine_busy"] + 0.01
    assert result.environment["path"] == "passthrough"
    assert any(key.startswith("mb1:") for key in result.environment["offloads"])


BULK_BYTES = 100_000_000


def test_a_bulk_transfer_through_pass_through_loses_no_frame_at_the_engine() -> None:
    """100 MB at full speed through pass-through: the kernel dropped no frame at the engine's
    AF_PACKET sockets (PACKET_STATISTICS), none was truncated or failed to send, so whatever
    bounds the figure is not loss at the engine; the sender reports what limited it."""
    from testbed.apps.hosts import run_module_json, start_module

    with emulated_network(LineTopo(paths=("passthrough",))) as net:
        client, server = net.get("client"), net.get("server")
        receiver = start_module(server, "testbed.apps.bulk", "receive", "--port", "8000",
                                "--buffers", str(4 << 20))
        try:
            sent = run_module_json(client, "testbed.apps.bulk", "send", "--host", server.IP(),
                                   "--port", "8000", "--bytes", str(BULK_BYTES), "--seed", "3",
                                   "--buffers", str(4 << 20))
        finally:
            receiver.kill()
            receiver.wait()
        (report,) = stop_middleboxes(net)
    assert sent["peer_sha256"] == sent["sha256"]
    assert report.engine["bytes-in"] > BULK_BYTES
    for counter in ("socket-drops", "truncated", "send-errors", "engine-errors"):
        assert report.engine.get(counter, 0) == 0, report.engine
    tcp = sent["tcp"]
    assert tcp["congestion"] and tcp["min_rtt_ms"] > 0 and tcp["srtt_ms"] > 0, tcp
    assert 0 <= tcp["cwnd_limited"] <= 1, tcp
