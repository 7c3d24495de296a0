"""The datapath experiment in its quick form: both paths move data and are reported.

How far ahead the proxy stays is checked by `testbed regress`, not here."""

from __future__ import annotations

import json
from pathlib import Path

from testbed.runner import run_experiment


def test_both_paths_are_measured_and_their_expectation_recorded(tmp_path: Path) -> None:
    run_experiment("datapath", quick=True, out_dir=tmp_path, seed=1)
    document = json.loads((tmp_path / "datapath.json").read_text())
    assert document["metrics"]["datapath.MBps.inplace"] > 0
    assert document["metrics"]["datapath.MBps.proxy"] > 0
    assert [e["lhs"] for e in document["expectations"]] == ["datapath.MBps.proxy"]
