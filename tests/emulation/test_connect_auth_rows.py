"""The connect experiment's authenticated rows in Mininet: the library's tcpcrypt connection,
then CMAC, batch signing or PAKE over its session ID before the request."""

from __future__ import annotations

import pytest

from testbed.runner import run_experiment

AUTH_ROWS = ("tcpcrypt-x25519+cmac", "tcpcrypt-x25519+batch-sign", "tcpcrypt-x25519+pake")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> object:
    return run_experiment(
        "connect", quick=True, out_dir=tmp_path_factory.mktemp("connect-auth"),
        overrides={"protocols": ",".join(("tcpcrypt-x25519", *AUTH_ROWS)), "connections": "4"},
    )


def _rows(result: object) -> dict[str, dict[str, object]]:
    return {row["protocol"]: row for row in result.rows  # type: ignore[attr-defined]
            if "protocol" in row}


def test_every_authenticated_row_is_encrypted_and_authenticated(result: object) -> None:
    rows = _rows(result)
    metrics = result.metrics  # type: ignore[attr-defined]
    for label in AUTH_ROWS:
        row = rows[label]
        assert row["encrypted"] == 1.0
        assert row["authenticated"] == 1.0
        assert row["auth_failures"] == 0 and row["error"] is None
        assert metrics[f"connect.server_cpu_us.{label}"] > 0  # no timing comparison here
        assert metrics[f"connect.latency_ms.{label}"] > 0
    assert rows["tcpcrypt-x25519+batch-sign"]["batch_window_ms"] == 5.0
    assert rows["tcpcrypt-x25519+cmac"]["batch_window_ms"] is None
    assert "authenticated" not in rows["tcpcrypt-x25519"]
    host = result.environment["host_costs_us"]  # type: ignore[attr-defined]
    assert host["host.rsa2048_sign_us"] > 0 and host["host.x25519_us"] > 0


def test_the_authenticated_rows_stand_beside_the_papers(result: object) -> None:
    rows = _rows(result)
    assert rows["tcpcrypt-x25519+batch-sign"]["paper_2010_ms"] == 11.2
    assert rows["tcpcrypt-x25519+cmac"]["paper_2010_ms"] == 11.4
    assert rows["tcpcrypt-x25519+pake"]["paper_2010_ms"] == 15.2
