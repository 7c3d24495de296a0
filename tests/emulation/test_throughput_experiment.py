"""The throughput experiment in Mininet: bulk transfers over TCP, TLS 1.3 and tcpcrypt (the
in-process library, and through tcpcryptd), every byte checked with SHA-256 at the receiver.
No timing assertions: the ratio of tcpcrypt's throughput to TCP's is an expectation checked by
`make bench`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from testbed.apps.bulk import pattern, pattern_sha256
from testbed.emulation.state import load_states
from testbed.runner import ConfigError, run_experiment

PROTOCOLS = ("tcp", "tls13", "tcpcrypt-x25519", "tcpcryptd-x25519")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return run_experiment(
        "throughput", quick=True, out_dir=tmp_path_factory.mktemp("throughput"),
        overrides={"megabytes": "5", "rounds": "2"},
    )


def _summaries(result: Any) -> dict[str, dict[str, Any]]:
    return {row["protocol"]: row for row in result.rows if "rounds" in row}


def test_every_protocol_has_a_row_with_its_data_intact(result: Any) -> None:
    rows = _summaries(result)
    assert set(rows) == set(PROTOCOLS)
    for label in PROTOCOLS:
        assert rows[label]["sha256_ok"] is True, label
        assert rows[label]["rounds"] == 2
        assert rows[label]["mbytes"] == pytest.approx(5.0)
        assert rows[label]["mbps"] > 0
        assert rows[label]["receiver_cpu"] > 0
    rounds = [row for row in result.rows if "round" in row and "error" not in row]
    assert len(rounds) == 2 * len(PROTOCOLS)
    assert all(row["sha256_ok"] for row in rounds)
    assert not [row for row in result.rows if "error" in row]
    assert [w for w in result.warnings if not w.startswith("load average")] == []
    assert [state for state in load_states() if state.owner_pid == os.getpid()] == []


def test_tcpcrypt_was_encrypted_by_the_library_and_the_daemons_and_tcp_was_not(
    result: Any,
) -> None:
    rows = _summaries(result)
    assert rows["tcpcrypt-x25519"]["encrypted"] is True
    assert rows["tcpcrypt-x25519"]["daemon_a_cpu"] == 0  # in process: no daemon
    assert rows["tcpcryptd-x25519"]["encrypted"] is True
    assert rows["tcpcryptd-x25519"]["daemon_a_cpu"] > 0
    assert rows["tls13"]["encrypted"] is True
    assert rows["tcp"]["encrypted"] is False
    assert rows["tcp"]["daemon_a_cpu"] == 0
    for label in PROTOCOLS:
        assert f"throughput.mbps.{label}" in result.metrics
    names = [outcome.lhs for outcome in result.expectations]
    assert "throughput.mbps.tcpcrypt-x25519" in names


def test_the_figure_is_written_beside_the_result(result: Any) -> None:
    assert result.figures == ["throughput.png"]
    assert result.path is not None
    figure = Path(result.path).parent / "throughput.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_pattern_is_seeded_and_every_block_differs() -> None:
    data = pattern(3, 1 << 16)
    assert data == pattern(3, 1 << 16) != pattern(4, 1 << 16)
    blocks = {data[i:i + 16] for i in range(0, len(data), 16)}
    assert len(blocks) == len(data) // 16
    assert pattern_sha256(3, 100) != pattern_sha256(3, 101)


@pytest.mark.parametrize("overrides, message", [
    ({"protocols": "tcp,quic"}, "unknown protocols"),
    ({"protocols": "tcp,tls13-resumed"}, "resumption"),
    ({"protocols": "tcp,tcp"}, "twice"),
    ({"megabytes": "0"}, "megabytes"),
    ({"megabytes": "99999"}, "megabytes"),
    ({"rounds": "0"}, "rounds"),
    ({"buffer_kb": "-1"}, "buffer_kb"),
])
def test_bad_parameters_are_refused_before_the_network_starts(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        run_experiment("throughput", quick=True, out_dir=tmp_path, overrides=overrides)


def test_a_hash_or_length_mismatch_marks_the_round() -> None:
    from experiments.throughput import _round_row

    good = pattern_sha256(1, 1000)
    sent = {"sha256": good, "peer_sha256": good, "cpu_s": 0.1, "send_seconds": 1.0}
    received = {"sha256": good, "bytes": 1000, "seconds": 1.0, "mbps": 0.008, "cpu_s": 0.1}
    outcome = {"sent": sent, "received": received, "daemon_cpu_s": [], "encrypted": False}
    assert _round_row("tcp", 0, outcome, good, 1000)["sha256_ok"] is True
    for change in ({"sha256": pattern_sha256(2, 1000)}, {"bytes": 999}):
        bad = {**outcome, "received": {**received, **change}}
        assert _round_row("tcp", 0, bad, good, 1000)["sha256_ok"] is False
