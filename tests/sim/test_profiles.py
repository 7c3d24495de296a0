"""Cost profiles: the committed ones load complete, the derived ones follow their documented
rules, a bad profile is refused in one line, and calibration writes all three."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.calibration.derive import kernel_profile, xeon_2008_profile
from testbed.sim.costs import (
    PROFILE_NAMES,
    SIM_PROTOCOLS,
    CostProfile,
    ProfileError,
    load_profile,
    profile_from_json,
)


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_each_committed_profile_has_a_source_and_every_protocols_costs(name: str) -> None:
    profile = load_profile(name)
    assert profile.source and profile.environment
    for protocol in SIM_PROTOCOLS:
        assert profile.server_us(protocol) > 0 and profile.client_us(protocol) > 0


def test_kernel_tcpcrypt_costs_are_the_sum_of_their_primitives() -> None:
    measured = load_profile("measured")
    kernel = kernel_profile(measured)
    costs = measured.costs_us
    assert kernel.costs_us["tcpcrypt-rsa-exp3.server"] == pytest.approx(
        costs["rsa-exp3.encrypt"] + costs["tcpcrypt.key_schedule"])
    assert kernel.costs_us["tcpcrypt-x25519-resumed.server"] == costs["tcpcrypt.key_schedule"]
    assert kernel.costs_us["tls13.server"] == costs["tls13.server"]  # OpenSSL: as measured


def _synthetic(**changes: float) -> CostProfile:
    document = json.loads(json.dumps(load_profile("measured").to_json()))
    document["costs_us"].update(changes)
    return profile_from_json(document)


def test_xeon_2008_takes_the_papers_rsa_times_and_scales_the_rest_by_its_connect_table() -> (
        None):
    kernel = kernel_profile(_synthetic(**{"tls12-rsa.server": 1500.0, "tls12-rsa.client": 500.0,
                                          "rsa2048.private": 1020.0, "tcp.server": 100.0}))
    xeon = xeon_2008_profile(kernel)
    scale = (11.6 - 10.42 - 0.2) * 1000 / (1500 + 500 - 1020)  # = 1.0 here by construction
    assert xeon.environment["xeon_2008_scaling"]["scale"] == pytest.approx(scale)
    assert xeon.costs_us["tcp.server"] == pytest.approx(100.0 * scale)
    assert xeon.costs_us["tls12-rsa.server"] == pytest.approx(10420 + (1500 - 1020) * scale)
    assert xeon.costs_us["tcpcrypt-rsa-exp3.server"] == pytest.approx(
        260 + kernel.costs_us["tcpcrypt.key_schedule"] * scale)
    assert xeon.costs_us["tcpcrypt-rsa-exp3.client"] > 10420


def test_a_profile_missing_a_protocol_cost_is_refused_in_one_line() -> None:
    document = load_profile("measured").to_json()
    del document["costs_us"]["tls13.server"]
    with pytest.raises(ProfileError, match="has no cost for 'tls13.server'") as raised:
        profile_from_json(document)
    assert "\n" not in str(raised.value)


def test_calibration_writes_the_three_profiles_with_their_environment(tmp_path: Path) -> None:
    from testbed.calibration.run import calibrate

    written = calibrate(tmp_path, connections=10, rounds=1, say=lambda _line: None)
    assert sorted(path.name for path in written) == [
        "costs-kernel.json", "costs-measured.json", "costs-xeon-2008.json"]
    for name in PROFILE_NAMES:
        profile = load_profile(name, tmp_path)
        assert "load_average" in profile.environment or "derived_from" in profile.environment
        assert profile.cost_us("rsa2048.private") > 0


def test_editing_a_profiles_document_leaves_the_loaded_profile_whole() -> None:
    document = load_profile("measured").to_json()
    del document["costs_us"]["tls13.server"]
    document["environment"]["edited"] = True
    profile = load_profile("measured")  # the cached one
    assert profile.server_us("tls13") > 0
    assert "edited" not in profile.environment
