"""The connect experiment in Mininet: real TCP, TLS, and tcpcrypt (the in-process library on
the kernel's TCP-ENO, and through tcpcryptd)."""

from __future__ import annotations

import os

import pytest

from testbed.emulation.state import load_states
from testbed.runner import ConfigError, run_experiment


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> object:
    return run_experiment(
        "connect", quick=True, out_dir=tmp_path_factory.mktemp("connect"),
        overrides={"protocols": "tcp,tls12-rsa,tls13,tls13-resumed,tls13-ecdsa,"
                                "tcpcrypt-x25519,tcpcrypt-x25519-resumed,tcpcryptd-x25519,"
                                "tcpcryptd-x25519-resumed",
                   "connections": "15"},
    )


def test_every_runnable_protocol_has_a_row_and_nothing_is_left(result: object) -> None:
    rows = {row["protocol"]: row for row in result.rows  # type: ignore[attr-defined]
            if "protocol" in row}
    assert set(rows) == {"tcp", "tls12-rsa", "tls13", "tls13-resumed", "tls13-ecdsa",
                         "tcpcrypt-x25519", "tcpcrypt-x25519-resumed", "tcpcryptd-x25519",
                         "tcpcryptd-x25519-resumed"}
    assert [s for s in load_states() if s.owner_pid == os.getpid()] == []  # this run's


def test_tls_resumption_resumes_and_every_protocol_is_measured(result: object) -> None:
    metrics = result.metrics  # type: ignore[attr-defined]
    rows = {row["protocol"]: row for row in result.rows  # type: ignore[attr-defined]
            if "protocol" in row}
    assert rows["tls13-resumed"]["resumed"] == 1.0
    assert rows["tls13"]["resumed"] == 0.0
    for protocol in rows:  # how they compare is `testbed regress`'s business, not a unit test's
        assert metrics[f"connect.server_cpu_us.{protocol}"] > 0
        assert metrics[f"connect.latency_ms.{protocol}"] > 0


def test_tcpcrypt_connections_are_encrypted_and_resumed_when_cached(result: object) -> None:
    rows = {row["protocol"]: row for row in result.rows  # type: ignore[attr-defined]
            if "protocol" in row}
    metrics = result.metrics  # type: ignore[attr-defined]
    assert rows["tcpcrypt-x25519"]["encrypted"] == 1.0
    assert rows["tcpcrypt-x25519"]["resumed"] == 0.0
    assert rows["tcpcrypt-x25519-resumed"]["encrypted"] == 1.0
    assert rows["tcpcrypt-x25519-resumed"]["resumed"] == 1.0
    assert metrics["connect.server_cpu_us.tcpcrypt-x25519"] > 0
    assert rows["tcpcryptd-x25519"]["encrypted"] == 1.0
    assert rows["tcpcryptd-x25519"]["daemon_cpu_us"] > 0
    assert rows["tcpcryptd-x25519"]["resumed"] == 0.0
    assert rows["tcpcryptd-x25519-resumed"]["encrypted"] == 1.0
    assert rows["tcpcryptd-x25519-resumed"]["resumed"] == 1.0  # B's kernel table: ss[i+1]'s ids
    assert rows["tls13-ecdsa"]["encrypted"] == 1.0
    assert result.environment["offloads"]  # type: ignore[attr-defined]


def test_the_kernel_program_ran_for_every_connection_and_more_for_tcpcrypt(
    result: object,
) -> None:
    rows = {row["protocol"]: row for row in result.rows  # type: ignore[attr-defined]
            if "protocol" in row}
    assert rows["tcp"]["bpf_runs"] > 0  # plain TCP in the cgroup: looked at, left alone
    assert rows["tcpcrypt-x25519"]["bpf_runs"] > rows["tcp"]["bpf_runs"]


def test_unknown_protocol_is_refused_before_the_network_starts(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="unknown protocols"):
        run_experiment("connect", quick=True, out_dir=tmp_path,  # type: ignore[arg-type]
                       overrides={"protocols": "tcp,quic"})


def test_the_papers_figures_stand_beside_the_measured_ones(result: object) -> None:
    rows = result.rows  # type: ignore[attr-defined]
    by_protocol = {row["protocol"]: row for row in rows if "protocol" in row}
    assert by_protocol["tcp"]["paper_2010_ms"] == 0.2
    assert by_protocol["tls12-rsa"]["paper_2010_ms"] == 11.6
    assert by_protocol["tcpcrypt-x25519-resumed"]["paper_2010_ms"] == 0.3
    assert by_protocol["tls13"]["paper_2010_ms"] is None  # the paper had no TLS 1.3
    ratios = {row["server CPU per connection"]: row for row in rows
              if "server CPU per connection" in row}
    ssl_over_tcp = ratios["SSL / TCP (tls12-rsa / tcp)"]
    assert ssl_over_tcp["paper_2010"] == 80.0
    metrics = result.metrics  # type: ignore[attr-defined]
    assert ssl_over_tcp["measured"] == metrics["connect.server_cpu_ratio.tls12-rsa/tcp"] == (
        metrics["connect.server_cpu_us.tls12-rsa"] / metrics["connect.server_cpu_us.tcp"])



def test_every_connections_latency_is_kept_for_the_reports_cdf(result: object) -> None:
    import json

    samples = result.samples  # type: ignore[attr-defined]
    rows = {row["protocol"]: row for row in result.rows  # type: ignore[attr-defined]
            if "protocol" in row}
    for protocol, row in rows.items():
        kept = samples[f"connect.first_byte_ms.{protocol}"]
        assert len(kept) == 15 and all(value > 0 for value in kept)
        assert sorted(kept)[len(kept) // 2] == row["latency_ms"]  # the row's median is theirs
        assert "first_byte_samples_ms" not in row  # kept apart from the table
    saved = json.loads(result.path.read_text())  # type: ignore[attr-defined]
    assert saved["samples"] == samples


def test_rounds_alternate_the_protocols_and_keep_every_connection(
        tmp_path: pytest.TempPathFactory) -> None:
    alternating = run_experiment(
        "connect", quick=True, out_dir=tmp_path,  # type: ignore[arg-type]
        overrides={"protocols": "tcp,tcpcrypt-x25519", "connections": "7", "rounds": "2"})
    rows = {row["protocol"]: row for row in alternating.rows if "protocol" in row}
    for protocol in ("tcp", "tcpcrypt-x25519"):
        assert rows[protocol]["rounds"] == 2
        assert len(alternating.samples[f"connect.first_byte_ms.{protocol}"]) == 7
        low, high = rows[protocol]["server_cpu_us_min"], rows[protocol]["server_cpu_us_max"]
        assert low <= rows[protocol]["server_cpu_us"] <= high
    assert rows["tcpcrypt-x25519"]["encrypted"] == 1.0
    assert alternating.environment["host_cpu"]["cpu_idle"].startswith("poll")
    # the key exchange alone, timed in the same rounds, and the overhead read against it
    kex = alternating.metrics["connect.kex_cpu_us.tcpcrypt-x25519"]
    assert kex > 0 and rows["tcpcrypt-x25519"]["kex_cpu_us"] == kex
    overhead = alternating.metrics["connect.overhead_per_kex.tcpcrypt-x25519"]
    assert rows["tcpcrypt-x25519"]["overhead_per_kex"] == overhead
    names = [outcome.name for outcome in alternating.expectations if outcome.checked]
    assert any("key exchange alone" in name for name in names)


def test_more_rounds_than_connections_is_refused_before_anything_starts(
        tmp_path: pytest.TempPathFactory) -> None:
    with pytest.raises((ConfigError, ValueError), match="rounds"):
        run_experiment("connect", quick=True, out_dir=tmp_path,  # type: ignore[arg-type]
                       overrides={"protocols": "tcp", "connections": "2", "rounds": "3"})
