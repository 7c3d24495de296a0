"""The paper-reproduction report from saved results: a table per claim with the paper's
figure, this run's and the ratio; absent claims said to be absent; 80 columns, nothing cut."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from testbed.claims import NOT_MEASURED, STATUS_FILE, all_claims, load_results
from testbed.cli import main
from testbed.paper_report import report

Writer = Callable[..., Path]


def _text(directory: Path, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    report(console, directory)
    return console.export_text()


def _claim(directory: Path, title_start: str) -> dict[str, object]:
    (claim,) = [c for c in all_claims(load_results(directory)) if c.title.startswith(title_start)]
    return {"missing": claim.missing, "rows": {str(r.get("figure", r.get("middlebox"))): r
                                               for r in claim.rows}}


def test_every_claim_shows_the_papers_figure_beside_this_runs_ratio(
        tmp_path: Path, write_results: Writer) -> None:
    write_results(tmp_path)
    ssl = _claim(tmp_path, "SSL vs TCP")["rows"]
    assert isinstance(ssl, dict)
    assert ssl["ratio tls12-rsa / tcp"] == {"figure": "ratio tls12-rsa / tcp",
                                            "paper (2010)": "80.0x", "this run": "13.3x"}
    tcpcrypt = _claim(tmp_path, "tcpcrypt vs SSL")["rows"]
    assert isinstance(tcpcrypt, dict)
    assert tcpcrypt["ratio tls12-rsa / tcpcrypt-rsa-exp3"]["paper (2010)"] == "36.0x"
    assert tcpcrypt["ratio tls12-rsa / tcpcrypt-rsa-exp3"]["this run"] == "4.00x"
    # the daemon's row beside the library's, named as the run named it
    assert tcpcrypt["ratio tls13 / tcpcryptd-x25519"]["this run"] == "0.85x"
    cached = _claim(tmp_path, "cached tcpcrypt")["rows"]
    assert isinstance(cached, dict)
    assert cached["ratio tcpcrypt-x25519-resumed / tcp"]["paper (2010)"] == "1.50x"
    assert cached["ratio tcpcrypt-x25519-resumed / tcp"]["this run"] == "1.25x (+0.050 ms)"
    rate = _claim(tmp_path, "simulated 8-core")["rows"]
    assert isinstance(rate, dict)
    assert rate["ratio tcpcrypt-rsa-exp3 / tls12-rsa (rates)"]["this run"] == "36.0x"
    matrix = _claim(tmp_path, "middleboxes")["rows"]
    assert isinstance(matrix, dict)
    assert matrix["strip-options(on=syn)"]["tcpcryptd-x25519"] == "fallback"
    assert matrix[list(matrix)[-1]]["tcpcryptd-x25519"] == "broken (unexpected)"


def test_a_claim_without_its_results_is_not_measured_and_invents_nothing(
        tmp_path: Path, write_results: Writer) -> None:
    write_results(tmp_path, "throughput")
    text = _text(tmp_path)
    for title in ("SSL vs TCP", "tcpcrypt vs SSL", "cached tcpcrypt", "middleboxes",
                  "simulated 8-core", "web server"):
        claim = _claim(tmp_path, title)
        assert claim["rows"] == {} and str(claim["missing"]).startswith(NOT_MEASURED)
    assert text.count(NOT_MEASURED) == 6
    assert "9,000 Mbit/s" in text and "80.0x" not in text


def test_a_failed_experiment_is_named_with_its_reason(tmp_path: Path,
                                                      write_results: Writer) -> None:
    write_results(tmp_path, "connect")
    (tmp_path / STATUS_FILE).write_text(json.dumps(
        {"failed": {"web-server": "RuntimeError: wrk failed in client"}}))
    text = _text(tmp_path)
    assert "web-server failed (RuntimeError: wrk failed in client)" in " ".join(text.split())
    assert "failed: web-server: RuntimeError" in text


def test_a_connection_rate_on_another_profile_is_left_out(tmp_path: Path,
                                                         write_results: Writer) -> None:
    path = write_results(tmp_path, "connection-rate") / "connection-rate.json"
    path.write_text(path.read_text().replace('"xeon-2008"', '"measured"'))
    results = load_results(tmp_path)
    assert "connection-rate" not in results.documents
    assert "xeon-2008" in results.unreadable["connection-rate.json"]
    assert str(_claim(tmp_path, "simulated 8-core")["missing"]).startswith(NOT_MEASURED)


@pytest.mark.parametrize("width", [80, 60])
def test_tables_fit_a_narrow_terminal_and_cut_no_header(tmp_path: Path, write_results: Writer,
                                                        width: int) -> None:
    write_results(tmp_path)
    text = _text(tmp_path, width)
    assert all(len(line) <= width for line in text.splitlines()), max(text.splitlines(), key=len)
    assert "…" not in text
    for header in ("figure", "paper (2010)", "this run", "middlebox", "tcpcryptd-x25519"):
        assert re.search(rf"[┃|] {re.escape(header)} +[┃|]", text), header
    # the paper's figure and this run's side by side in one table, even at 60 columns
    assert re.search(r"┃ figure +┃ paper \(2010\) ┃ this run +┃", text)


def test_the_report_in_a_log_file_reads_the_same(tmp_path: Path, write_results: Writer) -> None:
    write_results(tmp_path / "results")
    log = tmp_path / "run.log"
    with log.open("w") as stream:  # not a terminal: rich's default width, no colour codes
        report(Console(file=stream), tmp_path / "results")
    text = log.read_text()
    assert "\x1b[" not in text and "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "ratio tls12-rsa / tcp" in text


def test_testbed_report_writes_a_self_contained_page(tmp_path: Path, write_results: Writer,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    write_results(tmp_path)
    assert main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 6
    assert not re.search(r"(src|href)=\"(?!data:)", page)  # nothing fetched from elsewhere
    assert "HTML report written to" in capsys.readouterr().out


def test_a_directory_without_results_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert main(["report", str(tmp_path)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("testbed: error:") for e in errors)


def test_reproduce_goes_on_past_a_failed_experiment_and_the_report_names_it(
        tmp_path: Path, write_results: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan's orchestration only: each experiment's run is replaced by writing its
    synthetic result, web-server's by a crash; the experiments themselves have their own
    emulation tests."""
    import testbed.runner
    from testbed.reproduce import PLAN, reproduce

    ran: list[tuple[str, str | None]] = []
    (tmp_path / "web-server.json").write_text("{}")  # an older run's: must not be shown

    def run(name: str, **options: object) -> object:
        ran.append((name, options.get("profile")))  # type: ignore[arg-type]
        if name == "web-server":
            raise RuntimeError("wrk failed in client:\nconnection refused")
        write_results(tmp_path, name)
        return type("R", (), {"expectations": [], "duration_s": 1.0, "warnings": []})()

    monkeypatch.setattr(testbed.runner, "run_experiment", run)
    monkeypatch.setenv("TESTBED_LOCK_WAIT_S", "0")  # recorded, so the test's value is undone
    monkeypatch.delenv("TESTBED_LOCK_WAIT_S")
    console = Console(file=io.StringIO(), width=80, record=True)
    failures = reproduce(console, tmp_path)
    assert [name for name, _ in ran] == [name for name, _, _ in PLAN]
    assert ("connection-rate", "xeon-2008") in ran
    assert failures == {"web-server": "RuntimeError: connection refused"}
    assert not (tmp_path / "web-server.json").exists()
    import os

    assert os.environ["TESTBED_LOCK_WAIT_S"] == "1800"  # emulated runs wait for the lock
    text = " ".join(_text(tmp_path).split())
    assert "web-server failed (RuntimeError: connection refused)" in text
    assert "ratio tls12-rsa / tcp" in text  # the rest is shown


def test_an_unreadable_result_is_left_out_with_its_reason(tmp_path: Path,
                                                         write_results: Writer) -> None:
    write_results(tmp_path, "connect")
    (tmp_path / "throughput.json").write_text("{not json")
    (tmp_path / "old.json").write_text(json.dumps({"schema": 0}))
    text = " ".join(_text(tmp_path).split())
    assert "left out: old.json" in text and "schema 0, expected 1" in text
    assert "left out: throughput.json" in text
    assert "throughput: bulk transfer not measured in this run: no throughput result" in text
