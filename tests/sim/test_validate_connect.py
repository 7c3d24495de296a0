"""The server-CPU half of `testbed validate`: the costs calibrated in the run become the
profile the simulation charges, and the simulation composes them into a connection's cost."""

from __future__ import annotations

import pytest

from testbed.sim.costs import load_profile, profile_from_json
from testbed.validate_connect import (
    QUICK_ROUNDS,
    ROUNDS,
    ConnectPoint,
    connect_profile,
    simulated_server_cpu_us,
)


def _points() -> list[ConnectPoint]:
    return [ConnectPoint("tcp", [90.0, 70.0, 300.0], [80.0]),
            ConnectPoint("tls13", [1800.0, 2000.0, 1900.0], [2100.0, 1700.0]),
            ConnectPoint("tcpcrypt-x25519", [500.0, 520.0, 480.0], [510.0])]


def test_calibration_rounds_median_sets_each_server_cost_as_its_extra_over_tcp() -> None:
    base = load_profile("measured")
    profile = connect_profile(base, _points(), "now")
    assert profile.costs_us["tcp.server"] == 90.0  # the median, not the 300 us outlier
    assert profile.costs_us["tls13.server"] == pytest.approx(1900.0 - 90.0)
    assert profile.server_us("tcpcrypt-x25519") == pytest.approx(500.0)
    # costs not calibrated stay the base profile's; the file records the rounds
    assert profile.costs_us["tls12-rsa.server"] == base.costs_us["tls12-rsa.server"]
    assert profile.environment["server_calibration_us"]["tcp"] == [90.0, 70.0, 300.0]
    assert profile_from_json(profile.to_json()) == profile


def test_compared_rounds_give_the_emulated_figure_apart_from_the_calibration() -> None:
    tls = _points()[1]
    assert tls.emulated_us == 1900.0 and tls.calibrated_us == 1900.0
    assert ConnectPoint("tcp", [1.0, 2.0, 3.0], [10.0, 30.0]).emulated_us == 20.0


def test_simulation_composes_the_calibrated_costs_into_each_connection() -> None:
    profile = connect_profile(load_profile("measured"), _points(), "now")
    for point in _points():
        assert simulated_server_cpu_us(point.protocol, profile, 50) == pytest.approx(
            point.calibrated_us, rel=0.01)


def test_connect_calibration_without_tcp_is_refused() -> None:
    with pytest.raises(ValueError, match="needs tcp"):
        connect_profile(load_profile("measured"), _points()[1:], "now")


def test_rounds_alternate_and_calibration_surrounds_every_compared_round() -> None:
    for rounds in (ROUNDS, QUICK_ROUNDS):
        assert rounds[0] == rounds[-1] == "calibrate"
        assert all(a != b for a, b in zip(rounds, rounds[1:], strict=False))
