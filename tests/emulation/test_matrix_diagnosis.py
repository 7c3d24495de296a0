"""A fail-closed middlebox in the matrix: it resets tcpcrypt's handshakes and declares so, so
the broken cell is the expected outcome, and the cell keeps its diagnosis: both daemons'
records (the daemon's column) and what the model counted; the library's column is broken as
expected too, with the model's counters."""

from __future__ import annotations

from pathlib import Path

import pytest

from middleboxes import registry
from testbed.runner import run_experiment

PLUGIN = Path(__file__).resolve().parent.parent / "middleboxes" / "fail_closed_model.py"


def test_a_declared_fail_closed_reset_is_expected_and_keeps_its_diagnosis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(registry.PLUGINS_ENV, str(PLUGIN))  # the engine loads it too
    monkeypatch.setattr(registry, "MODELS", dict(registry.MODELS))
    monkeypatch.setattr(registry, "PLUGIN_MODELS", dict(registry.PLUGIN_MODELS))
    registry.load_plugins(str(PLUGIN))
    result = run_experiment(
        "middlebox-matrix", quick=True, out_dir=tmp_path,
        overrides={"conditions": "reset-eno-syns",
                   "protocols": "tcp,tcpcryptd-x25519,tcpcrypt-x25519",
                   "megabytes": "0.2", "connections": "1", "cell_timeout_s": "20"},
    )
    rows = {row["protocol"]: row for row in result.rows}
    assert rows["tcp"]["outcome"] == "plaintext" and rows["tcp"]["diagnosis"] is None
    cell = rows["tcpcryptd-x25519"]
    assert cell["expected"] == "broken" and cell["outcome"] == "broken", cell
    assert result.metrics["matrix.unexpected_cells"] == 0
    assert "client:" in cell["diagnosis"] and "server:" in cell["diagnosis"]
    assert "reset-eno-syns: " in cell["diagnosis"] and "reset=" in cell["diagnosis"]
    library = rows["tcpcrypt-x25519"]
    assert library["expected"] == "broken" and library["outcome"] == "broken", library
    assert "reset-eno-syns: " in library["diagnosis"] and "reset=" in library["diagnosis"]
    assert result.environment["middlebox_plugins"]["models"]["reset-eno-syns"] == str(PLUGIN)
