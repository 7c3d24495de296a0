"""The middlebox-matrix experiment in its --quick form, in Mininet: every middlebox condition
x TCP, TLS 1.3 and tcpcrypt through tcpcryptd, judged by the daemons' records and SHA-256."""

from __future__ import annotations

import os
from typing import Any

import pytest

from experiments.middlebox_matrix import CONDITIONS
from testbed.emulation.state import load_states
from testbed.runner import run_experiment

STRIPPING = [c for c in CONDITIONS if c.startswith("strip-options")]
TRANSPARENT = [c for c in CONDITIONS if not c.startswith("strip-options")]


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return run_experiment("middlebox-matrix", quick=True,
                          out_dir=tmp_path_factory.mktemp("matrix"))


def cells(result: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["middlebox"], row["protocol"]): row for row in result.rows}


def test_every_condition_and_protocol_has_a_cell_labelled_as_written(result: Any) -> None:
    assert set(cells(result)) == {(c, p) for c in CONDITIONS
                                  for p in ("tcp", "tls13", "tcpcryptd-x25519",
                                            "tcpcrypt-x25519")}
    # this process's runs only: other emulation runs may be in progress on this machine
    assert [s for s in load_states() if s.owner_pid == os.getpid()] == []


def test_no_cell_is_broken_and_none_is_silently_corrupted(result: Any) -> None:
    broken = {key: row.get("reason") for key, row in cells(result).items()
              if row["outcome"] == "broken"}
    assert broken == {}
    assert not any(row["silent_corruption"] for row in result.rows)
    assert all(row["integrity_ok"] for row in result.rows)
    assert result.metrics["matrix.silent_corruption_cells"] == 0


@pytest.mark.parametrize("protocol", ["tcpcryptd-x25519", "tcpcrypt-x25519"])
@pytest.mark.parametrize("condition", STRIPPING)
def test_stripping_the_option_makes_tcpcrypt_fall_back_cleanly(result: Any, condition: str,
                                                               protocol: str) -> None:
    row = cells(result)[(condition, protocol)]
    assert row["outcome"] == "fallback" and row["integrity_ok"], row


@pytest.mark.parametrize("protocol", ["tcpcryptd-x25519", "tcpcrypt-x25519"])
@pytest.mark.parametrize("condition", TRANSPARENT)
def test_rewriting_resegmenting_proxying_and_nat_leave_tcpcrypt_encrypted(
    result: Any, condition: str, protocol: str
) -> None:
    row = cells(result)[(condition, protocol)]
    assert row["outcome"] == "encrypted" and row["integrity_ok"], row


def test_tls_is_encrypted_and_tcp_plaintext_everywhere(result: Any) -> None:
    for (_, protocol), row in cells(result).items():
        if protocol == "tls13":
            assert row["outcome"] == "encrypted", row
        elif protocol == "tcp":
            assert row["outcome"] == "plaintext", row


def test_the_heat_map_is_written_and_the_expectations_hold(result: Any) -> None:
    (figure,) = result.figures
    path = result.path.parent / figure
    assert path.name == "middlebox-matrix.png" and path.stat().st_size > 10_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(check.passed for check in result.expectations), result.expectations
