"""The protocol-costs experiment in its quick form: what it measures and records.

Correctness only (every suite and AEAD measured, rows, expectations recorded): how fast is
`testbed regress`'s business, against bands measured from the machine's own dispersion.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tcpcrypt.aead import AEAD_NAMES
from tcpcrypt.suites import SUITE_NAMES
from testbed.runner import run_experiment


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("protocol-costs")
    run_experiment("protocol-costs", quick=True, out_dir=out, seed=5)
    document: dict[str, object] = json.loads((out / "protocol-costs.json").read_text())
    assert (out / "protocol-costs.png").stat().st_size > 10_000
    return document


def metrics(result: dict[str, object]) -> dict[str, float]:
    values = result["metrics"]
    assert isinstance(values, dict)
    return values


def test_every_suite_and_aead_is_measured(result: dict[str, object]) -> None:
    values = metrics(result)
    for suite in SUITE_NAMES:
        for side in "AB":
            assert values[f"protocol.handshake_cpu_us.{side}.{suite}"] > 0
    for aead in AEAD_NAMES:
        for size in (1448, 16384):
            assert values[f"protocol.frame_MBps.{aead}.{size}"] > 0
            assert values[f"protocol.aead_raw_MBps.{aead}.{size}"] > 0


def test_every_suite_has_a_row_with_both_sides_and_their_ratio(result: dict[str, object]) -> None:
    rows = result["rows"]
    assert isinstance(rows, list)
    by_suite = {row["suite"]: row for row in rows if "suite" in row}
    assert set(by_suite) == set(SUITE_NAMES)
    rsa = by_suite["rsa-exp3-2048"]
    assert rsa["kex A/B"] == pytest.approx(rsa["A_kex_us"] / rsa["B_kex_us"])


def test_result_records_environment_and_expectations(result: dict[str, object]) -> None:
    environment = result["environment"]
    assert isinstance(environment, dict) and environment["libraries"]["cryptography"]
    expectations = result["expectations"]
    assert isinstance(expectations, list) and len(expectations) == 2 + len(AEAD_NAMES)
    assert result["config"]["quick"] is True  # type: ignore[index]


def test_figure_path_is_relative_to_the_json(result: dict[str, object]) -> None:
    assert result["figures"] == [str(Path("protocol-costs.png"))]


def test_the_papers_rsa_timings_stand_beside_this_runs(result: dict[str, object]) -> None:
    rows = result["rows"]
    assert isinstance(rows, list)
    paper = {row["RSA-exp3-2048"]: row for row in rows if "RSA-exp3-2048" in row}
    assert paper["client (A): decrypt, ms"]["paper_2010"] == 10.42
    assert paper["server (B): encrypt, ms"]["paper_2010"] == 0.26
    values = metrics(result)
    assert paper["A / B"]["measured"] == pytest.approx(
        values["protocol.kex_cpu_us.A.rsa-exp3-2048"]
        / values["protocol.kex_cpu_us.B.rsa-exp3-2048"])
