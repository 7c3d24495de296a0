"""`testbed regress` on synthetic and recorded result files: it fails on a baseline it cannot
meet, passes the committed baselines on recorded results, catches a slowdown, lists what it
could not check, and rewrites baselines only when asked."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from tcpcrypt.randomness import seeded_random
from tcpcrypt.suites import SLOWDOWN_VARIABLE, get_suite
from testbed.baselines import (
    MIN_BAND,
    BaselineError,
    band_from_samples,
    default_baseline_path,
    load_baselines,
)
from testbed.cli import main

RECORDED = Path(__file__).with_name("data") / "recorded-rounds"


def write_round(directory: Path, experiment: str, metrics: dict[str, float]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{experiment}.json").write_text(json.dumps(
        {"schema": 1, "experiment": experiment, "metrics": metrics}))


def write_baseline(path: Path, reference: float | None, band: float | None = 1.3,
                   better: str = "higher") -> Path:
    entry: dict[str, object] = {"name": "a over b", "experiment": "toy", "metric": "toy.a",
                                "over": "toy.b", "better": better}
    if reference is not None:
        entry |= {"reference": reference, "band": band}
    path.write_text(json.dumps({"schema": 1, "experiments": ["toy"], "entries": [entry]}))
    return path


def test_a_baseline_it_cannot_meet_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    write_round(tmp_path / "results", "toy", {"toy.a": 10.0, "toy.b": 1.0})
    baseline = write_baseline(tmp_path / "b.json", reference=20.0)  # needs >= 15.4
    assert main(["regress", str(tmp_path / "results"), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "REGRESSION" in out


def test_a_baseline_met_within_its_band_passes(tmp_path: Path) -> None:
    write_round(tmp_path / "results", "toy", {"toy.a": 17.0, "toy.b": 1.0})
    baseline = write_baseline(tmp_path / "b.json", reference=20.0)
    assert main(["regress", str(tmp_path / "results"), "--baseline", str(baseline)]) == 0


def test_a_lower_is_better_entry_fails_only_above_its_band(tmp_path: Path) -> None:
    baseline = write_baseline(tmp_path / "b.json", reference=2.0, better="lower")
    write_round(tmp_path / "fast", "toy", {"toy.a": 1.0, "toy.b": 1.0})
    write_round(tmp_path / "slow", "toy", {"toy.a": 2.7, "toy.b": 1.0})
    assert main(["regress", str(tmp_path / "fast"), "--baseline", str(baseline)]) == 0
    assert main(["regress", str(tmp_path / "slow"), "--baseline", str(baseline)]) == 1


def test_committed_baselines_pass_on_recorded_results() -> None:
    assert main(["regress", str(RECORDED)]) == 0


def test_every_committed_baseline_has_a_band_measured_over_enough_rounds() -> None:
    baselines = load_baselines(default_baseline_path())
    assert baselines.entries and set(baselines.experiments) >= {
        entry.experiment for entry in baselines.entries}
    for entry in baselines.entries:
        assert entry.reference is not None and entry.band is not None, entry.name
        assert entry.rounds >= 5 and entry.band >= MIN_BAND, entry.name
    catching = [entry.name for entry in baselines.entries if entry.band and entry.band < 2]
    assert any("X25519 key exchange" in name for name in catching)  # the slowdown's witness


def test_a_doubled_server_key_exchange_in_recorded_results_is_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    shutil.copytree(RECORDED, results)
    for path in results.glob("*/protocol-costs.json"):
        document = json.loads(path.read_text())
        for suite in ("rsa-exp3-2048", "x25519"):
            document["metrics"][f"protocol.kex_cpu_us.B.{suite}"] *= 2
        path.write_text(json.dumps(document))
    assert main(["regress", str(results)]) == 1
    regressed = [line for line in capsys.readouterr().out.splitlines() if "REGRESSED" in line]
    # the X25519 ratios hold within a few percent and catch it; RSA-exp3's scatter too much
    # here for a band under 2x (docs/regress.md)
    assert any("X25519 key exchange" in line for line in regressed)


def test_metrics_absent_from_the_results_are_listed_as_not_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_round(tmp_path / "results", "other", {"other.x": 1.0})
    baseline = write_baseline(tmp_path / "b.json", reference=20.0)
    assert main(["regress", str(tmp_path / "results"), "--baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "not checked" in out and "toy.a / toy.b" in out


def test_several_rounds_are_checked_on_their_median(tmp_path: Path) -> None:
    for index, a in enumerate((20.0, 4.0, 19.0), start=1):  # one bad round among three
        write_round(tmp_path / "results" / f"round-{index}", "toy", {"toy.a": a, "toy.b": 1.0})
    baseline = write_baseline(tmp_path / "b.json", reference=20.0)
    assert main(["regress", str(tmp_path / "results"), "--baseline", str(baseline)]) == 0


def test_update_rewrites_references_and_bands_only_when_asked(tmp_path: Path) -> None:
    values = (10.0, 10.5, 9.5, 10.2, 9.8, 10.1)
    for index, a in enumerate(values, start=1):
        write_round(tmp_path / "results" / f"round-{index}", "toy", {"toy.a": a, "toy.b": 1.0})
    baseline = write_baseline(tmp_path / "b.json", reference=None)
    before = baseline.read_bytes()
    assert main(["regress", str(tmp_path / "results"), "--baseline", str(baseline)]) == 0
    assert baseline.read_bytes() == before  # unset entry: not checked, file untouched
    assert main(["regress", str(tmp_path / "results"), "--baseline", str(baseline),
                 "--update"]) == 0
    (entry,) = load_baselines(baseline).entries
    assert entry.reference == pytest.approx(math.exp(sorted(map(math.log, values))[2] / 2
                                                     + sorted(map(math.log, values))[3] / 2))
    assert entry.rounds == 6 and entry.band is not None and entry.band >= MIN_BAND


def test_update_refuses_too_few_rounds_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_round(tmp_path / "results", "toy", {"toy.a": 1.0, "toy.b": 1.0})
    baseline = write_baseline(tmp_path / "b.json", reference=None)
    before = baseline.read_bytes()
    assert main(["regress", str(tmp_path / "results"), "--baseline", str(baseline),
                 "--update"]) == 2
    assert "at least 5 rounds" in capsys.readouterr().err
    assert baseline.read_bytes() == before


def test_a_bad_baseline_file_is_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_round(tmp_path / "results", "toy", {"toy.a": 1.0, "toy.b": 1.0})
    (tmp_path / "b.json").write_text('{"schema": 1, "entries": [{"name": "x"}]}')
    assert main(["regress", str(tmp_path / "results"), "--baseline",
                 str(tmp_path / "b.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_band_is_the_widest_of_robust_spread_worst_deviation_and_floor() -> None:
    assert band_from_samples([5.0] * 6, "higher") == pytest.approx((5.0, MIN_BAND))
    reference, band = band_from_samples([10, 10, 10, 10, 10, 5], "higher")
    assert reference == pytest.approx(10.0)
    assert band == pytest.approx(2.0 ** 1.5)  # 1.5 x the worst (a halving) in log space
    _, upward_only = band_from_samples([10, 10, 10, 10, 10, 20], "higher")
    assert upward_only == pytest.approx(MIN_BAND)  # a faster round is no bad-side deviation
    with pytest.raises(BaselineError, match="at least 5"):
        band_from_samples([1.0, 2.0], "lower")


def test_slowdown_variable_repeats_the_servers_key_exchange(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert type(get_suite("x25519")).__name__ == "X25519Suite"
    monkeypatch.setenv(SLOWDOWN_VARIABLE, "3")
    suite = get_suite("x25519")
    calls = 0
    inner_respond = suite.inner.b_respond  # type: ignore[attr-defined]

    def counting(pk_a: bytes, random: object) -> tuple[bytes, bytes]:
        nonlocal calls
        calls += 1
        return inner_respond(pk_a, random)  # type: ignore[no-any-return]

    monkeypatch.setattr(suite.inner, "b_respond", counting)  # type: ignore[attr-defined]
    state, pk_a = suite.a_start(seeded_random(1))
    pk_b, secret_b = suite.b_respond(pk_a, seeded_random(2))
    assert calls == 3 and suite.a_finish(state, pk_b) == secret_b


def test_results_measured_otherwise_than_the_baselines_are_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "toy.json").write_text(json.dumps({
        "schema": 1, "experiment": "toy", "metrics": {"toy.a": 1.0, "toy.b": 1.0},
        "config": {"quick": False}}))  # a full run: its ratio would mean something else
    baseline = write_baseline(tmp_path / "b.json", reference=20.0)
    assert main(["regress", str(results), "--baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "left out" in out and "quick=False" in out and "not checked" in out
