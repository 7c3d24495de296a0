"""Scenario: the two data paths a transparent tcpcrypt daemon can have, compared in memory.

In-place rewriting (divert): every data segment passes through the daemon as a packet; the
daemon parses it, encrypts its payload and rebuilds it with fresh checksums (and would also have
to shift sequence numbers for the frame overhead). Redirect to a local proxy (what tcpcryptd
does): the daemon reads the application's stream in large chunks and seals them as frames of
up to 16 KiB; the kernel segments. This measures the userspace work per byte of each, side by
side in one run, with the same AEAD. Neither includes the kernel's cost of getting packets to
userspace (NFQUEUE: one netlink message and one verdict per packet for in-place; two socket
copies per chunk for the proxy), which favours in-place here.

Covers: the data-path decision of issue #3 (docs/daemon.md quotes the result).
"""

from __future__ import annotations

import statistics
import time

from packets.ipv4 import IPv4Header
from packets.tcp import ACK, PSH, build_packet, parse_packet, rebuild
from tcpcrypt.aead import AEAD_NAMES, aead_by_name
from tcpcrypt.frames import FrameSealer
from tcpcrypt.key_schedule import SessionSecret
from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param, RunContext

MSS = 1448
CHUNK = 256 * 1024

SPEC = ExperimentSpec(
    name="datapath",
    description="daemon data path: per-packet in-place encryption vs proxy framing (userspace)",
    runtime="memory",
    params=(
        Param("megabytes", 32.0, quick=4.0, help="data pushed through each path per round",
              low=0.001, high=4096),
        Param("rounds", 5, quick=3, help="alternating rounds (median taken)", low=1,
              high=101),
        Param("aead", "aes-128-gcm", help="AEAD used by both paths", choices=AEAD_NAMES),
    ),
    expectations=(
        Expectation("proxy framing >= 4x the per-packet in-place path",
                    lhs="datapath.MBps.proxy", op=">=", rhs="datapath.MBps.inplace",
                    factor=4.0, source="design choice recorded in docs/daemon.md"),
    ),
    bench=True,
)


def _sealer(aead: str) -> FrameSealer:
    spec = aead_by_name(aead)
    chain = SessionSecret(bytes(range(32))).key_chain(spec.key_length)
    return FrameSealer(spec, chain.key_ab)


def inplace_MBps(total: int, aead: str) -> float:
    """Parse, encrypt the payload as one frame, rebuild with checksums: per MSS segment."""
    sealer = _sealer(aead)
    header = IPv4Header(20, 0, 0, 1, 0x4000, 64, 6, 0, bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2)),
                        b"")
    packet = build_packet(header, src_port=40000, dst_port=80, seq=1, ack=1, flags=ACK | PSH,
                          window=65535, payload=bytes(MSS))
    count = max(1, total // MSS)
    start = time.perf_counter()
    for _ in range(count):
        parsed = parse_packet(packet)
        rebuild(parsed, payload=sealer.seal(parsed.payload))
    return count * MSS / (time.perf_counter() - start) / 1e6


def proxy_MBps(total: int, aead: str) -> float:
    """Seal 256 KiB reads of the application's stream into 16 KiB frames."""
    sealer = _sealer(aead)
    chunk = bytes(CHUNK)
    count = max(1, total // CHUNK)
    start = time.perf_counter()
    for _ in range(count):
        sealer.seal_stream(chunk)
    return count * CHUNK / (time.perf_counter() - start) / 1e6


def run(ctx: RunContext) -> ExperimentOutput:
    total = int(float(ctx.params["megabytes"]) * 1e6)
    aead = str(ctx.params["aead"])
    rounds = int(ctx.params["rounds"])
    inplace: list[float] = []
    proxy: list[float] = []
    with ctx.progress(rounds, "datapath") as progress:
        for _ in range(rounds):
            inplace.append(inplace_MBps(total, aead))
            proxy.append(proxy_MBps(total, aead))
            progress.advance()
    rows: list[dict[str, object]] = [
        {"path": "inplace", "unit": f"{MSS} B segments", "MBps": statistics.median(inplace)},
        {"path": "proxy", "unit": f"{CHUNK // 1024} KiB reads", "MBps": statistics.median(proxy)},
    ]
    metrics = {f"datapath.MBps.{row['path']}": float(row["MBps"]) for row in rows}  # type: ignore[arg-type]
    return ExperimentOutput(rows, metrics)
