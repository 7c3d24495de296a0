"""The access-population experiment in its --quick form, in Mininet: clients behind chains
drawn from the paper-2010 profile, tcpcryptd on every host, each client's outcome judged by
both daemons' records and SHA-256, compared with what its drawn chain predicts."""

from __future__ import annotations

import os
from typing import Any

import pytest

from experiments.access_population import SPEC, predicted_outcome
from testbed.emulation.state import load_states
from testbed.runner import resolve_params, run_experiment
from topologies.access_paths import draw_paths


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return run_experiment("access-population", quick=True,
                          out_dir=tmp_path_factory.mktemp("access"))


def client_rows(result: Any) -> list[dict[str, Any]]:
    return [row for row in result.rows if "client" in row]


def chain_rows(result: Any) -> list[dict[str, Any]]:
    return [row for row in result.rows if "chain" in row]


def test_every_client_has_a_row_with_the_chain_drawn_for_it_and_the_run_cleaned_up(
    result: Any,
) -> None:
    clients = int(resolve_params(SPEC, True, None)["clients"])
    paths = draw_paths("paper-2010", clients, 1)
    assert [(row["client"], row["path"]) for row in client_rows(result)] == [
        (f"c{k}", path) for k, path in enumerate(paths, start=1)]
    assert result.metrics["access.clients"] == clients
    # this process's runs only: other emulation runs may be in progress on this machine
    assert [s for s in load_states() if s.owner_pid == os.getpid()] == []


def test_no_client_is_broken_and_every_transfer_is_intact(result: Any) -> None:
    broken = {row["client"]: row["reason"] for row in client_rows(result)
              if row["outcome"] == "broken"}
    assert broken == {}
    assert all(row["integrity_ok"] for row in client_rows(result))
    assert result.metrics["access.share.broken"] == 0
    assert result.metrics["access.silent_corruption_clients"] == 0


def test_each_client_encrypts_or_falls_back_as_its_chain_predicts(result: Any) -> None:
    rows = client_rows(result)
    assert {row["client"]: row["outcome"] for row in rows} == {
        row["client"]: predicted_outcome(row["path"]) for row in rows}
    # the quick population has both kinds of path, so both outcomes are exercised
    assert {row["outcome"] for row in rows} == {"encrypted", "fallback"}
    for row in rows:
        if row["outcome"] == "fallback":  # the daemons saw no ENO option on the SYN
            assert "no-eno-syn" in row["reason"], row


def test_measured_shares_equal_the_shares_the_drawn_chains_predict(result: Any) -> None:
    metrics = result.metrics
    assert metrics["access.unexpected_clients"] == 0
    assert metrics["access.share.encrypted"] == metrics["access.predicted_share.encrypted"]
    assert metrics["access.share.fallback"] == metrics["access.predicted_share.fallback"]
    assert all(check.passed for check in result.expectations), result.expectations


def test_the_per_chain_summary_adds_up_to_the_client_rows(result: Any) -> None:
    summary = {row["chain"]: row for row in chain_rows(result)}
    for row in client_rows(result):
        assert summary[row["path"]][row["outcome"]] >= 1
    assert sum(row["clients"] for row in summary.values()) == len(client_rows(result))
    for row in summary.values():
        assert row["clients"] == row["encrypted"] + row["fallback"] + row["broken"]
        assert row["profile_weight"] is not None  # every drawn chain is one of the profile's


def test_the_outcome_figure_is_written(result: Any) -> None:
    (figure,) = result.figures
    path = result.path.parent / figure
    assert path.name == "access-population.png" and path.stat().st_size > 10_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("chain", "outcome"), [
    ("passthrough", "encrypted"),
    ("seq-rewrite", "encrypted"),
    ("strip-options(on=syn)", "fallback"),
    ("strip-options(on=synack)", "fallback"),
    ("strip-options(on=syn),proxy-ack", "fallback"),
    ("strip-options(on=syn,ports=80)", "encrypted"),  # the experiment's server is on 8000
    ("strip-options(on=syn,kinds=30)", "encrypted"),  # MPTCP's option, not ENO's
])
def test_the_prediction_follows_whether_the_chain_strips_the_eno_option(
    chain: str, outcome: str,
) -> None:
    assert predicted_outcome(chain) == outcome
