"""Helpers of the kernel program's tests: two network namespaces joined by a veth pair, peers
run inside them (peer.py), and a capture read back as packets."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packets.tcp import TcpPacket, parse_packet

PEER = Path(__file__).with_name("peer.py")


def enter(ns: str) -> list[str]:
    """Run in a named namespace's network only: `ip netns exec` would also remount /sys,
    hiding bpffs pins under /sys/fs/bpf."""
    return ["nsenter", f"--net=/run/netns/{ns}"]


def sh(*command: str, check: bool = True) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Pair:
    """Namespaces a (10.201.0.1) and b (10.201.0.2) joined by a veth pair."""

    a: str
    b: str
    a_if: str
    b_if: str
    a_ip: str = "10.201.0.1"
    b_ip: str = "10.201.0.2"
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def run(self, ns: str, *command: str, check: bool = True) -> str:
        return sh(*enter(ns), *command, check=check)

    def start(self, ns: str, *args: str, timeout: float = 10) -> subprocess.Popen[str]:
        environment = dict(os.environ, PEER_TIMEOUT=str(timeout))
        process = subprocess.Popen([*enter(ns), sys.executable, str(PEER), *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=environment)
        self.processes.append(process)
        return process

    def start_server(self, ns: str, *args: str, timeout: float = 10) -> subprocess.Popen[str]:
        process = self.start(ns, *args, timeout=timeout)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert json.loads(line or "{}").get("listening"), process.stderr.read()
        return process

    def peer(self, ns: str, *args: str, timeout: float = 10) -> list[dict[str, Any]]:
        process = self.start(ns, *args, timeout=timeout)
        return finish(process, timeout + 20)


def finish(process: subprocess.Popen[str], timeout: float = 30) -> list[dict[str, Any]]:
    out, err = process.communicate(timeout=timeout)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if process.returncode != 0:
        raise AssertionError(f"peer failed ({process.returncode}): {err.strip()[-2000:]}")
    return [line for line in lines if not line.get("listening")]


@dataclass
class Capture:
    process: subprocess.Popen[str]
    path: Path

    def stop(self) -> list[TcpPacket]:
        time.sleep(0.3)
        self.process.terminate()
        self.process.wait(timeout=10)
        return read_pcap(self.path)


def capture(pair: Pair, ns: str, interface: str, path: Path) -> Capture:
    process = subprocess.Popen([*enter(ns), "tcpdump", "-i", interface, "-U", "-n",
                                "--immediate-mode", "-s", "0", "-w", str(path), "tcp"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    pair.processes.append(process)
    assert process.stderr is not None
    line = process.stderr.readline()  # "listening on ...": the capture runs
    assert "listening" in line, line
    return Capture(process, path)


def read_pcap(path: Path) -> list[TcpPacket]:
    data = path.read_bytes()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    record = struct.Struct(endian + "IIII")
    packets, position = [], 24
    while position + record.size <= len(data):
        _, _, captured, _ = record.unpack_from(data, position)
        frame = data[position + record.size : position + record.size + captured]
        position += record.size + captured
        if len(frame) > 34 and frame[12:14] == b"\x08\x00" and frame[14 + 9] == socket.IPPROTO_TCP:
            total = int.from_bytes(frame[16:18], "big")
            packets.append(parse_packet(frame[14 : 14 + total]))
    return packets
