"""The `auth` and `batch-signing` experiments in quick form.

`auth`: every method succeeds and detects the relay on every attempt (these are outcomes, not
timings). `batch-signing`: every point authenticates every connection, its own and the
unauthenticated ones interleaved with it, batches form when arrivals outpace the window, and
every metric the report quotes is there, the latency added per rate (paired, median and p90)
with its verdict included; the CPU ratio and the latency bound themselves are expectations of
the experiment, not asserted here (a shared machine's noise).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.runner import ConfigError, run_experiment


def run(name: str, tmp: Path, **overrides: str) -> dict[str, object]:
    run_experiment(name, quick=True, out_dir=tmp, overrides=overrides)
    document: dict[str, object] = json.loads((tmp / f"{name}.json").read_text())
    return document


def test_auth_experiment_succeeds_and_detects_the_mitm_every_time(tmp_path: Path) -> None:
    document = run("auth", tmp_path, attempts="4")
    metrics = document["metrics"]
    assert isinstance(metrics, dict)
    for method in ("cmac", "batch-sign", "pake"):
        assert metrics[f"auth.success_fraction.{method}"] == 1.0
        assert metrics[f"auth.mitm_detected_fraction.{method}"] == 1.0
        assert f"auth.added_ms.{method}" in metrics
    assert metrics["host.rsa2048_sign_us"] > 0 and metrics["host.x25519_us"] > 0


def test_batch_signing_experiment_batches_under_load_and_reports_every_metric(
        tmp_path: Path) -> None:
    document = run("batch-signing", tmp_path, rates="100,2000", connections="60")
    metrics = document["metrics"]
    rows = document["rows"]
    assert isinstance(metrics, dict) and isinstance(rows, list)
    points = [row for row in rows if row["method"] not in ("host", "added-latency")]
    # per rate: sign-each and batch-sign, each with its interleaved `none` arrivals, and tls
    assert len(points) == 10
    own = [row for row in points if row["method"] != "none"]
    assert all(row["failed"] == 0 and row["authenticated"] == 60 for row in own)
    baselines = [row for row in points if row["method"] == "none"]
    assert sorted(row["paired_with"] for row in baselines) == [
        "batch-sign", "batch-sign", "sign-each", "sign-each"]
    assert all(row["failed"] == 0 and row["authenticated"] == 20 for row in baselines)
    assert all(row["ids_per_signature"] == 1.0 for row in points if row["method"] == "sign-each")
    assert metrics["auth.ids_per_signature.batch-sign.r2000"] > 1.0  # arrivals shared signatures
    for method in ("sign-each", "batch-sign", "tls"):
        for name in ("server_cpu_us", "server_total_cpu_us", "connect_ms", "signatures_per_s"):
            assert metrics[f"auth.{name}.{method}"] > 0
    assert metrics["host.rsa2048_sign_us"] > 0 and metrics["host.x25519_us"] > 0
    added = {row["offered_rate"]: row for row in rows if row["method"] == "added-latency"}
    assert sorted(added) == [100.0, 2000.0]
    for rate, row in added.items():  # against the unauthenticated arrivals of the same stream
        assert row["batch_within_window"] in ("PASS", "FAIL")
        assert metrics[f"auth.added_ms.batch-sign.r{rate:g}"] == row["batch-sign_added_ms_median"]
        assert metrics[f"auth.added_ms_p90.batch-sign.r{rate:g}"] == row["batch-sign_added_ms_p90"]
        assert row["batch-sign_added_ms_median"] == (row["batch-sign_connect_ms_median"]
                                                     - row["batch-sign_none_connect_ms_median"])
    assert metrics["auth.batch_added_ms"] == max(
        row["batch-sign_added_ms_median"] for row in added.values())


def test_a_bad_rate_list_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        run_experiment("batch-signing", quick=True, out_dir=tmp_path,
                       overrides={"rates": "fast"})
