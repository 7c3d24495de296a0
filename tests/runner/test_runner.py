"""The runner: discovery, parameters, JSON results, atomic writes, expectations, checks."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.cli import main
from testbed.registry import discover
from testbed.runner import ConfigError, run_experiment


def test_discovery_finds_specs_and_reports_broken_modules(toy_package: str) -> None:
    found = discover(toy_package)
    assert list(found.experiments) == ["toy"]
    assert "broken" in found.broken and "ModuleNotFoundError" in found.broken["broken"]


def test_run_writes_a_complete_json_result(toy_package: str, tmp_path: Path) -> None:
    result = run_experiment("toy", out_dir=tmp_path / "out", seed=3, package=toy_package)
    document = json.loads((tmp_path / "out" / "toy.json").read_text())
    assert document["schema"] == 1
    assert document["experiment"] == "toy" and document["runtime"] == "memory"
    assert {"kernel", "cpu_model", "cores", "python", "libraries"} <= set(document["environment"])
    assert document["config"] == {"count": 10, "scale": 1.5, "label": "x", "flag": False,
                                  "seed": 3, "repeat": 1, "quick": False}
    assert document["metrics"] == {"toy.big": 60.0, "toy.small": 4.0}
    assert document["rows"] == [{"count": 10, "big": 60.0}]
    assert document["warnings"] == ["toy warning"]
    assert document["expectations"][0]["passed"] is True
    assert result.path == tmp_path / "out" / "toy.json"


def test_quick_uses_quick_values(toy_package: str, tmp_path: Path) -> None:
    result = run_experiment("toy", quick=True, out_dir=tmp_path, package=toy_package)
    assert result.config["count"] == 2


def test_overrides_are_typed(toy_package: str, tmp_path: Path) -> None:
    result = run_experiment(
        "toy", out_dir=tmp_path, package=toy_package,
        overrides={"count": "4", "scale": "0.5", "label": "y", "flag": "yes"},
    )
    assert result.config["count"] == 4 and result.config["scale"] == 0.5
    assert result.config["label"] == "y" and result.config["flag"] is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"overrides": {"nope": "1"}}, "has no parameter 'nope'"),
        ({"overrides": {"count": "ten"}}, "wants int"),
        ({"overrides": {"flag": "maybe"}}, "wants true/false"),
        ({"repeat": 0}, "--repeat"),
        ({"seed": -1}, "--seed"),
    ],
)
def test_bad_parameters_are_refused_before_the_experiment_runs(
    toy_package: str, tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    toy = importlib.import_module(f"{toy_package}.toy")
    with pytest.raises(ConfigError, match=message):
        run_experiment("toy", out_dir=tmp_path, package=toy_package, **kwargs)  # type: ignore[arg-type]
    assert toy.CALLS == []


def test_unknown_experiment_suggests_close_names(toy_package: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean toy"):
        run_experiment("tyo", out_dir=tmp_path, package=toy_package)


def test_crash_mid_run_leaves_previous_result_intact(toy_package: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_experiment("toy", out_dir=out, package=toy_package)
    before = (out / "toy.json").read_text()
    with pytest.raises(RuntimeError):
        run_experiment("toy", out_dir=out, package=toy_package, overrides={"label": "crash"})
    assert (out / "toy.json").read_text() == before
    assert sorted(p.name for p in out.iterdir()) == ["toy.json", "toy.png"]  # no temp files


def test_repeat_reports_median_metrics_and_tags_rows(toy_package: str, tmp_path: Path) -> None:
    result = run_experiment("toy", out_dir=tmp_path, package=toy_package, seed=0, repeat=3)
    assert result.metrics["toy.big"] == 30.0  # seeds 0,1,2 -> 15, 30, 45
    assert [row["repeat"] for row in result.rows] == [0, 1, 2]


def test_each_repeat_keeps_its_own_figures(toy_package: str, tmp_path: Path) -> None:
    result = run_experiment("toy", out_dir=tmp_path, package=toy_package, seed=0, repeat=2)
    assert result.figures == ["repeat-0/toy.png", "repeat-1/toy.png"]
    assert [(tmp_path / f).read_bytes() for f in result.figures] == [b"0", b"1"]
    single = run_experiment("toy", out_dir=tmp_path / "one", package=toy_package)
    assert single.figures == ["toy.png"]


def test_failed_expectation_is_recorded(toy_package: str, tmp_path: Path) -> None:
    result = run_experiment("toy", out_dir=tmp_path, package=toy_package,
                            overrides={"scale": "0.01"})
    assert result.expectations[0].passed is False


def test_run_says_when_expectations_fail_and_exits_3_unless_allowed(
    toy_package: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    from testbed.cli import UNMET_EXIT, _unmet_exit

    failed = run_experiment("toy", out_dir=tmp_path, package=toy_package,
                            overrides={"scale": "0.01"})
    met = run_experiment("toy", out_dir=tmp_path, package=toy_package)
    console = Console(width=200)
    assert _unmet_exit(console, met, allowed=False) == 0
    assert _unmet_exit(console, failed, allowed=False) == UNMET_EXIT == 3
    assert "1 of 1 expectations not met: double (exit 3)" in capsys.readouterr().out
    assert _unmet_exit(console, failed, allowed=True) == 0
    assert "--allow-unmet: exit 0" in capsys.readouterr().out


def _write_result(path: Path, big: float, small: float) -> None:
    path.write_text(json.dumps({
        "schema": 1, "metrics": {"toy.big": big, "toy.small": small},
        "expectations": [{"name": "double", "lhs": "toy.big", "op": ">=", "rhs": "toy.small",
                          "factor": 2.0, "offset": 0.0, "source": ""}],
    }))


def test_check_flags_a_ratio_regression_against_a_baseline(tmp_path: Path) -> None:
    _write_result(tmp_path / "old.json", 10.0, 1.0)
    _write_result(tmp_path / "same.json", 20.0, 2.0)
    _write_result(tmp_path / "worse.json", 5.0, 1.0)
    assert main(["check", str(tmp_path / "same.json"), "--baseline",
                 str(tmp_path / "old.json")]) == 0
    assert main(["check", str(tmp_path / "worse.json"), "--baseline",
                 str(tmp_path / "old.json")]) == 1


def test_cli_refuses_an_unknown_experiment_with_one_line(tmp_path: Path) -> None:
    testbed = Path(sys.executable).with_name("testbed")
    done = subprocess.run([str(testbed), "run", "no-such-experiment", "--out", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "unknown experiment" in done.stderr
    assert not (tmp_path / "no-such-experiment.json").exists()


def test_cli_lists_experiments() -> None:
    testbed = Path(sys.executable).with_name("testbed")
    done = subprocess.run([str(testbed), "list"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "protocol-costs" in done.stdout
