"""The simulated experiments in quick form, and a sweep through Dask merged into one file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.runner import ConfigError, run_experiment
from testbed.sweep import run_sweep, sweep_points


def _failed(result: object) -> list[str]:
    return [o.description for o in result.expectations if o.failed]  # type: ignore[attr-defined]


def test_connection_rate_on_the_papers_machine_gives_the_papers_ratios_to_tls12(
    tmp_path: Path,
) -> None:
    result = run_experiment("connection-rate", quick=True, runtime="sim", profile="xeon-2008",
                            out_dir=tmp_path, overrides={"cores": "1,8"})
    assert 25 <= result.metrics["rate.ratio_to_tls12-rsa.tcpcrypt-rsa-exp3.8"] <= 50
    assert 50 <= result.metrics["rate.ratio_to_tls12-rsa.tcp.8"] <= 120
    assert (tmp_path / "connection-rate.png").stat().st_size > 0
    assert {row["cores"] for row in result.rows} == {1, 8}


def test_latency_under_load_shows_a_knee(tmp_path: Path) -> None:
    result = run_experiment("latency-under-load", quick=True, runtime="sim", out_dir=tmp_path,
                            overrides={"protocols": "tcp,tls12-rsa", "connections": "1500"})
    assert _failed(result) == []
    assert (result.metrics["latency.p99_ms.tls12-rsa.1.05"]
            > result.metrics["latency.p99_ms.tls12-rsa.0.5"])


def test_deployability_counts_every_path_and_breaks_none(tmp_path: Path) -> None:
    result = run_experiment("deployability", quick=True, runtime="sim", out_dir=tmp_path)
    assert _failed(result) == []
    shares = [result.metrics[f"deploy.share.{o}.tcpcrypt-x25519"]
              for o in ("encrypted", "fallback", "plaintext", "broken")]
    assert sum(shares) == 1.0 and 0.5 < shares[0] < 1.0 and shares[1] > 0


def test_sweep_points_cross_every_seed_with_every_value() -> None:
    points = sweep_points([1, 2], {"paths": ["10", "20"]})
    assert [(p["seed"], p["overrides"]["paths"]) for p in points] == [
        (1, "10"), (1, "20"), (2, "10"), (2, "20")]


def test_a_sweep_runs_on_a_local_dask_cluster_and_merges_every_point(tmp_path: Path) -> None:
    path = run_sweep("deployability", seeds=[1, 2], values={"paths": ["500", "800"]},
                     out_dir=tmp_path, quick=True, runtime="sim")
    document = json.loads(path.read_text())
    assert document["experiment"] == "deployability-sweep"
    assert document["runtime"] == "simulation" and document["profile"] == "measured"
    points = document["points"]
    assert [(p["seed"], p["params"]["paths"]) for p in points] == [
        (1, 500), (1, 800), (2, 500), (2, 800)]
    assert all(p["metrics"]["deploy.paths"] == p["params"]["paths"] for p in points)
    assert all((tmp_path / p["result"]).exists() for p in points)


def test_connect_in_simulation_reports_the_emulated_schema_from_the_profile(
        tmp_path: Path) -> None:
    from testbed.sim.costs import load_profile

    result = run_experiment("connect", quick=True, runtime="sim", profile="kernel",
                            out_dir=tmp_path, overrides={
                                "protocols": "tcp,tls13,tcpcrypt-x25519,tcpcryptd-x25519"})
    profile = load_profile("kernel")
    for label in ("tcp", "tls13", "tcpcrypt-x25519"):
        assert result.metrics[f"connect.server_cpu_us.{label}"] == pytest.approx(
            profile.server_us(label))
        assert result.metrics[f"connect.latency_ms.{label}"] > 0
    assert "connect.server_cpu_us.tcpcryptd-x25519" not in result.metrics
    assert any("no exchange for tcpcryptd-x25519" in w for w in result.warnings)
    # a row the simulation cannot run is left out: its expectation is not checked, not failed
    daemon = next(o for o in result.expectations if "daemon" in o.name)
    assert not daemon.checked and "tcpcryptd-x25519 not in this run" in daemon.description
    kex = profile.cost_us("x25519.keypair") + profile.cost_us("x25519.exchange")
    assert result.metrics["connect.overhead_per_kex.tcpcrypt-x25519"] == pytest.approx(
        (profile.server_us("tcpcrypt-x25519") - profile.server_us("tcp")) / kex)
    document = json.loads((tmp_path / "connect.json").read_text())
    assert document["runtime"] == "simulation" and document["profile"] == "kernel"


def test_connect_in_simulation_over_an_option_stripping_path_falls_back_without_a_metric(
        tmp_path: Path) -> None:
    result = run_experiment("connect", quick=True, runtime="sim", out_dir=tmp_path, overrides={
        "protocols": "tcp,tcpcrypt-x25519", "path": "strip-options(on=syn)"})
    row = next(r for r in result.rows if r.get("protocol") == "tcpcrypt-x25519")
    assert row["outcome"] == "fallback" and row["encrypted"] == 0.0
    assert "connect.server_cpu_us.tcpcrypt-x25519" not in result.metrics
    assert "connect.server_cpu_us.tcp" in result.metrics


def test_connection_rate_refuses_clients_apart_without_a_shared_machine(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs machine_cores"):
        run_experiment("connection-rate", runtime="sim", out_dir=tmp_path,
                       overrides={"clients_apart": "1", "cores": "1", "connections": "10"})
    assert not (tmp_path / "connection-rate.json").exists()


def test_connection_rate_with_clients_apart_runs_them_on_the_spare_core(tmp_path: Path) -> None:
    # one server core of two, the clients on the other: a row like any other
    result = run_experiment("connection-rate", runtime="sim", out_dir=tmp_path,
                            overrides={"clients_apart": "1", "machine_cores": "2",
                                       "cores": "1", "protocols": "tcp",
                                       "connections": "500"})
    assert result.metrics["rate.conn_per_s.tcp.1"] > 0
