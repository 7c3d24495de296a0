"""`testbed validate` in quick form: emulation and simulation side by side, every metric
compared, and the exit code says whether every one was within the bound."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest

from testbed.cli import main
from testbed.emulation.state import load_states
from testbed.sim.costs import load_profile
from testbed.validate import BOUND
from testbed.validate_connect import simulated_server_cpu_us


@pytest.mark.timeout(1800)  # three emulated runs, each may wait for the machine-wide lock
def test_validate_compares_every_metric_and_exits_by_the_bound(tmp_path: Path) -> None:
    code = main(["validate", "--quick", "--out", str(tmp_path)])
    document = json.loads((tmp_path / "validate.json").read_text())
    comparisons = {c["metric"]: c for c in document["comparisons"]}
    assert set(comparisons) == {
        "connect.server_cpu_us.tcp", "connect.server_cpu_us.tls13",
        "connect.server_cpu_us.tcpcrypt-x25519", "connect.server_cpu_us.tcpcrypt-rsa-exp3",
        "rate.conn_per_s.tcp.1", "rate.conn_per_s.tcp.2", "rate.conn_per_s.tls13.1",
        "rate.conn_per_s.tls13.2"}
    for comparison in comparisons.values():
        assert comparison["emulation"] > 0 and comparison["simulation"] > 0
        assert comparison["within"] == (abs(comparison["difference"]) <= BOUND)
    # each rate point says what its simulation modelled: the cores, the clients' measured cost
    points = {(p["protocol"], p["cores"]): p for p in document["rate_points"]}
    assert set(points) == {("tcp", 1), ("tcp", 2), ("tls13", 1), ("tls13", 2)}
    for (_, cores), point in points.items():
        modelled = point["modelled"]
        assert modelled["server_us"] > 0 and modelled["client_us"] > 0
        assert modelled["background_entities"] == point["others_runnable"] >= 0
        if cores < (os.cpu_count() or 1):  # a core to spare: the clients apart from the server
            assert min(modelled["client_cores"]) >= cores
        assert point["simulated_first_flight_waited"] > 0
    for (protocol, _), point in points.items():  # TLS: the first flight's part, apart
        if protocol == "tls13":
            modelled = point["modelled"]
            assert 0 < modelled["client_us_first_flight"] <= modelled["client_us_in_handshake"]
    for calibrated in document["rate_calibration"].values():
        for costs in calibrated:  # the clients' demand under load beside their cost alone
            assert costs["client_us"] > 0 and costs["client_alone_us"] > 0
            assert 0 <= costs["client_first_flight_us"] <= costs["client_handshake_us"]
    # the connect rows: simulated from the costs calibrated in this run, saved beside it, in
    # rounds apart from the compared ones; the saved profile gives the same simulation again
    profile = load_profile("validate", tmp_path)
    assert document["connect_profile"] == "costs-validate.json"
    for row in document["connect_points"]:
        assert len(row["calibration_rounds_us"]) == 2 and len(row["compared_rounds_us"]) == 1
        assert row["calibrated_us"] == pytest.approx(
            statistics.median(row["calibration_rounds_us"]))
        assert profile.server_us(row["protocol"]) == pytest.approx(row["calibrated_us"])
        metric = f"connect.server_cpu_us.{row['protocol']}"
        assert comparisons[metric]["emulation"] == row["emulated_us"]
        assert comparisons[metric]["simulation"] == pytest.approx(
            simulated_server_cpu_us(row["protocol"], profile, 200))
    assert document["host"]["host.rsa2048_sign_us"] > 0
    assert code == (0 if all(c["within"] for c in comparisons.values()) else 1)
    assert document["passed"] == (code == 0)
    assert [s for s in load_states() if s.owner_pid == os.getpid()] == []
