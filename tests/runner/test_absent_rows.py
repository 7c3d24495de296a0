"""Expectations about rows a run left out are not checked; a row that ran without its metric
still fails the expectation."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from testbed.cli import UNMET_EXIT, _check, _unmet_exit
from testbed.experiment import Expectation, ExperimentSpec, Param
from testbed.report import expectations_table
from testbed.runner import run_experiment

ROWED = '''
"""Scenario: one metric per listed row. Covers: expectations about absent rows."""
from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param

SPEC = ExperimentSpec(
    name="rowed", description="rows", runtime="memory",
    params=(Param("protocols", "fast,slow", validate=lambda text: None),
            Param("broken", "", validate=lambda text: None)),
    expectations=(Expectation("slow costs 2x fast", lhs="rowed.cost_us.slow", op=">=",
                              rhs="rowed.cost_us.fast", factor=2.0),),
    rows_param="protocols",
)

COSTS = {"fast": 10.0, "slow": 30.0}

def run(ctx):
    labels = [label for label in str(ctx.params["protocols"]).split(",") if label]
    broken = str(ctx.params["broken"])
    metrics = {f"rowed.cost_us.{label}": COSTS[label] for label in labels if label != broken}
    return ExperimentOutput(rows=[{"protocol": label} for label in labels], metrics=metrics)
'''


@pytest.fixture
def rowed_package(tmp_path: Path) -> Iterator[str]:
    name = f"rowed_experiments_{abs(hash(tmp_path)) % 10**8}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text('"""rowed"""\n')
    (package / "rowed.py").write_text(textwrap.dedent(ROWED))
    sys.path.insert(0, str(tmp_path))
    yield name
    sys.path.remove(str(tmp_path))
    for module in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[module]


def test_expectation_about_a_row_left_out_is_not_checked_and_exits_0(
    rowed_package: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_experiment("rowed", out_dir=tmp_path, package=rowed_package,
                            overrides={"protocols": "fast"})
    (outcome,) = result.expectations
    assert not outcome.checked and not outcome.failed and outcome.verdict == "not checked"
    assert outcome.description == "not checked: slow not in this run (protocols=fast)"
    assert _unmet_exit(Console(width=200), result, allowed=False) == 0
    stored = json.loads((tmp_path / "rowed.json").read_text())["expectations"][0]
    assert stored["checked"] is False
    console = Console(width=200, record=True)
    console.print(expectations_table(result.expectations))
    assert "not checked" in console.export_text()
    assert _check(Console(width=200), tmp_path / "rowed.json", None, 0.1) == 0


def test_row_that_ran_without_its_metric_still_fails(
    rowed_package: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_experiment("rowed", out_dir=tmp_path, package=rowed_package,
                            overrides={"broken": "slow"})
    (outcome,) = result.expectations
    assert outcome.checked and outcome.failed and outcome.verdict == "FAIL"
    assert outcome.description == "missing metric rowed.cost_us.slow"
    assert _unmet_exit(Console(width=200), result, allowed=False) == UNMET_EXIT
    assert _check(Console(width=200), tmp_path / "rowed.json", None, 0.1) == 1


def test_both_rows_run_checks_the_expectation(rowed_package: str, tmp_path: Path) -> None:
    (outcome,) = run_experiment("rowed", out_dir=tmp_path, package=rowed_package).expectations
    assert outcome.checked and outcome.passed and outcome.verdict == "PASS"


def test_a_missing_metric_of_a_row_that_ran_fails_even_beside_a_left_out_row() -> None:
    expectation = Expectation("x", lhs="e.q.slow", op=">=", rhs="e.q.fast")
    outcome = expectation.evaluate({}, ("protocols", ["fast"]))
    assert outcome.failed and "missing metric e.q.slow, e.q.fast" in outcome.description
    left_out = expectation.evaluate({"e.q.fast": 1.0}, ("protocols", ["fast"]))
    assert not left_out.checked and not left_out.failed


def test_rate_metrics_belong_to_their_protocol_row_not_their_core_count() -> None:
    expectation = Expectation("x", lhs="rate.conn_per_s.tcp.8", op=">=",
                              rhs="rate.conn_per_s.tls12-rsa.8")
    outcome = expectation.evaluate({"rate.conn_per_s.tcp.8": 5.0}, ("protocols", ["tcp"]))
    assert not outcome.checked and "tls12-rsa not in this run" in outcome.description


def test_without_rows_param_a_missing_metric_fails() -> None:
    spec = ExperimentSpec("plain", "d", "memory", params=(Param("protocols", "a"),),
                          expectations=(Expectation("x", lhs="p.q.b", op=">=", rhs=""),))
    (outcome,) = spec.evaluate({}, {"protocols": "a"})
    assert outcome.failed


def test_rows_param_must_name_a_parameter() -> None:
    with pytest.raises(ValueError, match="rows_param 'labels' is not one of its parameters"):
        ExperimentSpec("bad", "d", "memory", rows_param="labels")


def test_connect_and_throughput_name_their_rows_parameter() -> None:
    from experiments.connect import SPEC as CONNECT
    from experiments.throughput import SPEC as THROUGHPUT

    outcomes = CONNECT.evaluate({"connect.server_cpu_us.tcp": 60.0},
                                {"protocols": "tcp,tcpcrypt-x25519-resumed"})
    assert [o.verdict for o in outcomes] == ["not checked", "not checked", "not checked",
                                             "FAIL", "not checked"]
    assert THROUGHPUT.rows_param == "protocols"


def test_a_left_out_point_is_not_checked_but_a_point_that_ran_still_fails() -> None:
    expectation = Expectation("x", lhs="web.rps.tls13.keepalive", op=">=",
                              rhs="web.rps.tcp.keepalive", factor=0.5)
    rows, closed_only = ("protocols", ["tcp", "tls13"]), ("modes", ["close"])
    left_out = expectation.evaluate({}, rows, closed_only)
    assert not left_out.checked and not left_out.failed
    assert left_out.description == ("not checked: keepalive not in this run (modes=close)")
    ran = expectation.evaluate({"web.rps.tcp.keepalive": 10.0}, rows,
                               ("modes", ["close", "keepalive"]))
    assert ran.failed and "missing metric web.rps.tls13.keepalive" in ran.description


def test_web_server_names_its_modes_as_points() -> None:
    from experiments.web_server import SPEC as WEB

    outcomes = WEB.evaluate({}, {"protocols": "tcp,tls13", "modes": "close"})
    keepalive = [o for o in outcomes if "keepalive" in o.lhs]
    assert keepalive and all(not o.checked for o in keepalive)


def test_points_param_must_name_a_parameter_and_come_with_rows() -> None:
    with pytest.raises(ValueError, match="points_param 'modes' is not one of its parameters"):
        ExperimentSpec("bad", "d", "memory", params=(Param("protocols", "a"),),
                       rows_param="protocols", points_param="modes")
    with pytest.raises(ValueError, match="points_param needs rows_param"):
        ExperimentSpec("bad", "d", "memory", params=(Param("modes", "a"),),
                       points_param="modes")


def test_a_ratio_over_a_left_out_row_it_needs_is_not_checked_but_fails_when_it_ran() -> None:
    expectation = Expectation("x", lhs="e.ratio.fast", op="<=", rhs="", offset=3.0,
                              needs_rows=("base",))
    without_base = expectation.evaluate({}, ("protocols", ["fast"]))
    assert not without_base.checked and not without_base.failed
    assert without_base.description == "not checked: base not in this run (protocols=fast)"
    with_base = expectation.evaluate({}, ("protocols", ["fast", "base"]))
    assert with_base.failed and "missing metric e.ratio.fast" in with_base.description
    measured = expectation.evaluate({"e.ratio.fast": 2.5}, ("protocols", ["fast", "base"]))
    assert measured.checked and measured.passed
