"""The simulated network: rates follow cores and costs, latency follows the exchange, loss
costs retransmissions, a middlebox path changes what runs."""

from __future__ import annotations

import pytest

from testbed.scenario import ConnectionLoad, Topology
from testbed.sim.costs import load_profile
from testbed.sim.network import SimNetwork


def _rate(profile: str, protocol: str, cores: int, clients: int = 400) -> float:
    network = SimNetwork(Topology(server_cores=cores), load_profile(profile), seed=1)
    return network.run(ConnectionLoad(protocol, 4000, concurrency=clients)).rate_per_s


def test_the_saturated_rate_is_cores_over_the_server_cost() -> None:
    profile = load_profile("xeon-2008")
    for cores in (1, 8):
        expected = cores / (profile.server_us("tcpcrypt-rsa-exp3") / 1e6)
        assert _rate("xeon-2008", "tcpcrypt-rsa-exp3", cores, 4000) == pytest.approx(
            expected, rel=0.03)


def test_rate_ratios_between_protocols_follow_the_cost_ratios() -> None:
    profile = load_profile("measured")
    measured = _rate("measured", "tcp", 8) / _rate("measured", "tls13", 8)
    assert measured == pytest.approx(
        profile.server_us("tls13") / profile.server_us("tcp"), rel=0.05)


def test_an_unloaded_connection_takes_its_flights_and_its_work() -> None:
    topology = Topology(server_cores=1, delay_ms=1.0)
    network = SimNetwork(topology, load_profile("measured"), seed=1)
    report = network.run(ConnectionLoad("tcp", 1))
    profile = network.profile
    expected = 4 * 1.0 + (profile.server_us("tcp") + profile.client_us("tcp")) / 1000
    assert report.latencies_ms == [pytest.approx(expected)]


def test_a_lost_flight_is_sent_again_after_the_timeout() -> None:
    lossy = SimNetwork(Topology(loss=0.3), load_profile("measured"), seed=3)
    report = lossy.run(ConnectionLoad("tcp", 200))
    assert max(report.latencies_ms) >= 200  # at least one retransmission timeout
    assert report.completed == 200


def test_a_path_that_strips_the_syn_option_makes_tcpcrypt_run_as_tcp() -> None:
    profile = load_profile("measured")
    stripped = SimNetwork(Topology(path="strip-options(on=syn)"), profile, seed=1)
    clean = SimNetwork(Topology(path="passthrough"), profile, seed=1)
    load = ConnectionLoad("tcpcrypt-x25519", 10)
    assert stripped.run(load).server_cpu_us == pytest.approx(profile.server_us("tcp"))
    assert clean.run(load).server_cpu_us == pytest.approx(profile.server_us("tcpcrypt-x25519"))


def _shared_rate(background: float, protocol: str = "tls13") -> float:
    topology = Topology(server_cores=1, machine_cores=2, background_cores=background)
    network = SimNetwork(topology, load_profile("measured"), seed=1)
    return network.run(ConnectionLoad(protocol, 1000, concurrency=4)).rate_per_s


def test_clients_on_the_servers_machine_take_cores_from_it() -> None:
    alone = SimNetwork(Topology(server_cores=1), load_profile("measured"), seed=1)
    apart = alone.run(ConnectionLoad("tls13", 1000, concurrency=4)).rate_per_s
    assert _shared_rate(0.0) <= apart * 1.001


def test_other_tenants_of_the_machine_slow_it_down_and_the_run_still_ends() -> None:
    assert _shared_rate(1.5) < _shared_rate(1.0) < _shared_rate(0.0)


def test_a_server_larger_than_its_machine_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit a machine of 2"):
        SimNetwork(Topology(server_cores=4, machine_cores=2), load_profile("measured"), seed=1)
