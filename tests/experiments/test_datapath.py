"""The datapath experiment in its quick form: the proxy's framing stays far ahead per byte.

A ratio taken in one run (CI guard looser than the bench expectation's 4x)."""

from __future__ import annotations

import json
from pathlib import Path

from testbed.runner import run_experiment


def test_proxy_framing_outpaces_per_packet_rewriting(tmp_path: Path) -> None:
    run_experiment("datapath", quick=True, out_dir=tmp_path, seed=1)
    metrics = json.loads((tmp_path / "datapath.json").read_text())["metrics"]
    assert metrics["datapath.MBps.inplace"] > 0
    assert metrics["datapath.MBps.proxy"] >= 2 * metrics["datapath.MBps.inplace"]
