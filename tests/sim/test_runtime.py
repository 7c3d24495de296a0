"""The runtime seam: experiments say which runtimes they support, bad combinations are refused
in one line before anything runs, results record the runtime and the cost profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.cli import main
from testbed.experiment import ExperimentSpec
from testbed.runner import ConfigError, run_experiment

SMALL_RATE = {"cores": "1,2", "protocols": "tcp,tls12-rsa", "connections": "300"}


def test_an_emulation_only_experiment_refuses_the_simulation_runtime(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="throughput runs in emulation, not in simulation"):
        run_experiment("throughput", runtime="sim", out_dir=tmp_path)
    assert not (tmp_path / "throughput.json").exists()


def test_a_profile_outside_simulation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--profile applies to the simulation runtime only"):
        run_experiment("protocol-costs", profile="kernel", out_dir=tmp_path)


def test_an_unknown_profile_or_runtime_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown cost profile 'nope'"):
        run_experiment("connection-rate", runtime="sim", profile="nope", out_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown runtime 'warp'"):
        run_experiment("connection-rate", runtime="warp", out_dir=tmp_path)


def test_the_command_line_refuses_a_bad_combination_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "middlebox-matrix", "--runtime", "sim", "--out", str(tmp_path)])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "runs in emulation" in error


def test_a_default_runtime_must_be_among_the_supported_ones() -> None:
    with pytest.raises(ValueError, match="is not among its runtimes"):
        ExperimentSpec("x", "x", runtime="emulation", runtimes=("simulation",))


def test_a_simulated_result_records_its_runtime_and_profile(tmp_path: Path) -> None:
    run_experiment("connection-rate", runtime="sim", profile="kernel", out_dir=tmp_path,
                   overrides=SMALL_RATE)
    document = json.loads((tmp_path / "connection-rate.json").read_text())
    assert document["schema"] == 1
    assert (document["runtime"], document["profile"]) == ("simulation", "kernel")
    assert {"rate.conn_per_s.tcp.1", "rate.conn_per_s.tls12-rsa.2",
            "sim.connections_per_wall_s"} <= set(document["metrics"])


def test_the_default_profile_is_measured_and_emulation_results_have_none(
    tmp_path: Path,
) -> None:
    result = run_experiment("connection-rate", out_dir=tmp_path, overrides=SMALL_RATE)
    assert (result.runtime, result.profile) == ("simulation", "measured")
    toy = run_experiment("datapath", quick=True, out_dir=tmp_path)
    assert toy.profile is None and json.loads(
        (tmp_path / "datapath.json").read_text())["profile"] is None


def test_background_load_outside_a_simulated_shared_machine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="background_cores models other tenants"):
        run_experiment("connection-rate", runtime="sim", out_dir=tmp_path,
                       overrides={**SMALL_RATE, "background_cores": "0.5"})

