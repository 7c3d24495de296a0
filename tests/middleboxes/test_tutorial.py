"""The tutorial's middlebox in docs/middleboxes.md runs as printed."""

from __future__ import annotations

import re
from pathlib import Path

from middleboxes.base import Direction, Forward
from packets.ipv4 import IPv4Header
from packets.tcp import ACK, build_packet, checksums_ok, parse_packet

DOC = Path(__file__).resolve().parents[2] / "docs" / "middleboxes.md"


def test_tutorial_middlebox_clears_ecn_flags() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    source = next(block for block in blocks if "class ClearEcn" in block)
    namespace: dict[str, object] = {}
    exec(compile(source, str(DOC), "exec"), namespace)
    model = namespace["ClearEcn"]()  # type: ignore[operator]
    ip = IPv4Header(20, 0, 0, 1, 0x4000, 64, 6, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    raw = build_packet(ip, src_port=1, dst_port=2, seq=1, ack=1, flags=ACK | 0x40, window=5)
    (action,) = model.handle(raw, Direction.TO_SERVER, 0.0)
    assert isinstance(action, Forward)
    assert parse_packet(action.packet).flags == ACK and checksums_ok(action.packet)
    assert model.stats["cleared"] == 1
