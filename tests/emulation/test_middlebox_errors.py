"""A model that raises on packets in a real Mininet run: the engine keeps running, the packets
are dropped and counted, and the experiment's warnings say so (TCP retransmits the drops, so
the data still arrives intact)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from middleboxes.registry import PLUGINS_ENV, load_plugins
from testbed.emulation.state import load_states
from testbed.runner import run_experiment

PLUGIN = Path(__file__).resolve().parent.parent / "middleboxes" / "raising_model.py"


def test_a_raising_model_costs_packets_not_the_engine_and_the_run_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PLUGINS_ENV, str(PLUGIN))  # the engine in the Mininet node loads it
    load_plugins(str(PLUGIN))  # and this process, to validate the chain
    result = run_experiment(
        "middlebox-matrix", quick=True, out_dir=tmp_path,
        overrides={"conditions": "raise-every(every=40)", "protocols": "tcp,tls13",
                   "megabytes": "0.5"},
    )
    rows = {row["protocol"]: row for row in result.rows}
    assert rows["tcp"]["outcome"] == "plaintext" and rows["tcp"]["integrity_ok"]
    assert rows["tls13"]["outcome"] == "encrypted" and rows["tls13"]["integrity_ok"]
    assert rows["tcp"]["model_errors"] > 0
    raised = [w for w in result.warnings if "raise-every" in w and "ZeroDivisionError" in w]
    assert raised, result.warnings
    assert "dropped because model raise-every(every=40) raised" in raised[0]
    # this process's runs only: other emulation runs may be in progress on this machine
    assert [s for s in load_states() if s.owner_pid == os.getpid()] == []
