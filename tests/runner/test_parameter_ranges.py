"""Experiment parameters: each has a range (or choices, or a validator), non-finite numbers
are refused, and every refusal is one line before anything starts; `testbed list NAME` shows
the parameters, their ranges and, for chain parameters, the chain syntax and the models."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.cli import main
from testbed.experiment import Param
from testbed.registry import discover, spec_of
from testbed.runner import ConfigError, resolve_params, run_experiment


def test_every_parameter_of_every_experiment_declares_what_it_accepts() -> None:
    found = discover()
    assert not found.broken
    for name, module in found.experiments.items():
        for param in spec_of(module).params:
            assert param.declared(), f"{name}: parameter {param.name} has no range"


@pytest.mark.parametrize(
    ("experiment", "setting", "message"),
    [
        ("middlebox-matrix", "megabytes=nan", "wants a finite number"),
        ("middlebox-matrix", "megabytes=inf", "wants a finite number"),
        ("middlebox-matrix", "megabytes=1e12", "megabytes: must be in 0.001..64"),
        ("middlebox-matrix", "connections=0", "connections: must be in 1..20"),
        ("middlebox-matrix", "conditions=link(delay_ms=nan)", "delay_ms must be a finite"),
        ("middlebox-matrix", "conditions=link(delay_ms=inf)", "delay_ms must be a finite"),
        ("middlebox-matrix", "conditions=link(rate_mbps=nan)", "rate_mbps must be a finite"),
        ("middlebox-matrix", "conditions=link(rate_mbps=1e-300)", "rate_mbps is 0"),
        ("datapath", "aead=rot13", "aead: must be one of aes-128-gcm"),
        ("datapath", "megabytes=-1", "megabytes: must be in"),
        ("protocol-costs", "frame_megabytes=nan", "wants a finite number"),
        ("throughput", "megabytes=1e12", "megabytes: must be in"),
        ("access-population", "client_timeout_s=inf", "wants a finite number"),
    ],
)
def test_bad_parameters_are_refused_in_one_line_before_anything_starts(
    experiment: str, setting: str, message: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "results"
    assert main(["run", experiment, "--out", str(out), "--set", setting]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error
    assert not out.exists()  # refused before the run made anything


def test_a_validator_raising_its_own_error_type_is_still_a_one_line_refusal() -> None:
    def picky(value: object) -> None:
        if value != "y":
            raise LookupError(f"no such thing as {value}")

    with pytest.raises(ValueError, match="no such thing as x"):
        Param("thing", "y", validate=picky).check("x")


def test_a_declared_default_outside_its_own_range_is_a_declaration_error() -> None:
    with pytest.raises(ValueError, match="must be in 1..5"):
        Param("count", 9, low=1, high=5)


def test_quick_values_are_checked_too() -> None:
    spec = spec_of(discover().experiments["middlebox-matrix"])
    assert resolve_params(spec, True, None)["megabytes"] == 2.0
    with pytest.raises(ConfigError, match="cell_timeout_s"):
        run_experiment("middlebox-matrix", out_dir=Path("/nonexistent/never"),
                       overrides={"cell_timeout_s": "0.5"})


def test_list_name_shows_parameters_ranges_and_the_chain_syntax(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["list", "middlebox-matrix"]) == 0
    shown = capsys.readouterr().out
    for text in ("megabytes", "0.001..64", "1..20", "A chain: models in path order",
                 "delay_ms", "0..60000", "idle_s", "split|coalesce"):
        assert text in shown
    assert main(["list", "datapath"]) == 0
    shown = capsys.readouterr().out
    assert "aes-128-gcm|" in shown and "A chain" not in shown
