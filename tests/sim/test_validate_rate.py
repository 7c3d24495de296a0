"""The simulation of an emulated connection-rate point (`testbed validate`): the load
generators' CPU shares the server's machine or runs on cores of its own, other tenants take
their share, and the costs
calibrated right before the run replace the profile's."""

from __future__ import annotations

import os

import pytest

from testbed.emulation.tenants import autogroup, runnable_tasks, task_is_running
from testbed.scenario import ConnectionLoad, Topology
from testbed.sim.costs import CostProfile, load_profile
from testbed.sim.network import SimNetwork
from testbed.validate_rate import CalibratedCosts, RatePoint, rate_profile, simulated_rate


def _profile(server_us: float, client_us: float) -> CostProfile:
    """The measured profile with TCP costing `server_us` and `client_us` per connection."""
    base = load_profile("measured")
    costs = {**base.costs_us, "tcp.server": server_us, "tcp.client": client_us}
    return CostProfile("test", "test", costs, base.aead_ns_per_byte, {})


def _point(cores: int, clients: int, others: float = 0.0) -> RatePoint:
    return RatePoint("tcp", cores, clients, conn_per_s=0.0, server_cpu_us=0.0,
                     client_cpu_us=0.0, others_runnable=others)


def test_client_cpu_as_large_as_the_servers_on_one_core_halves_the_rate() -> None:
    profile = _profile(100.0, 100.0)
    point = _point(cores=1, clients=4)
    alone = simulated_rate(point, profile, machine_cores=1, connections=4000,
                           with_clients=False)
    shared = simulated_rate(point, profile, machine_cores=1, connections=4000)
    assert alone == pytest.approx(1 / 100e-6, rel=0.03)
    assert shared == pytest.approx(1 / 200e-6, rel=0.03)


def test_two_cores_shared_with_clients_serve_two_over_the_sum_of_both_sides() -> None:
    profile = _profile(100.0, 300.0)
    shared = simulated_rate(_point(cores=2, clients=8), profile, machine_cores=2,
                            connections=4000)
    assert shared == pytest.approx(2 / 400e-6, rel=0.03)


def test_a_server_on_one_core_of_two_is_held_by_its_core_not_by_the_clients() -> None:
    # clients cost little: the server's single process is the limit, at one core's speed
    profile = _profile(100.0, 20.0)
    rate = simulated_rate(_point(cores=1, clients=8), profile, machine_cores=2,
                          connections=4000)
    assert rate == pytest.approx(1 / 100e-6, rel=0.05)


def _apart(server_us: float, client_us: float, others: float = 0.0) -> float:
    """A one-core server on a two-core machine, its clients pinned to the other core."""
    topology = Topology(server_cores=1, machine_cores=2, background_cores=others,
                        clients_apart=True)
    network = SimNetwork(topology, _profile(server_us, client_us), seed=1)
    return network.run(ConnectionLoad("tcp", 4000, concurrency=8)).rate_per_s


def test_clients_apart_that_cost_more_than_the_server_are_the_limit() -> None:
    # the clients' core does 200 us per connection, the server's 100: the clients limit
    assert _apart(100.0, 200.0) == pytest.approx(1 / 200e-6, rel=0.03)
    assert _apart(100.0, 200.0) < _apart(100.0, 50.0)


def test_clients_apart_that_cost_less_leave_the_server_its_whole_core() -> None:
    assert _apart(100.0, 50.0) == pytest.approx(1 / 100e-6, rel=0.03)


def test_other_tenants_spread_over_both_cores_when_the_clients_are_apart() -> None:
    # two others on two cores: one on the server's core, which then runs at half speed
    assert _apart(100.0, 0.0, others=2.0) == pytest.approx(1 / 200e-6, rel=0.03)


def test_clients_apart_with_no_core_to_spare_share_the_servers() -> None:
    profile = _profile(100.0, 300.0)
    topology = Topology(server_cores=2, machine_cores=2, clients_apart=True)
    assert list(topology.client_cores()) == [0, 1]
    network = SimNetwork(topology, profile, seed=1)
    rate = network.run(ConnectionLoad("tcp", 4000, concurrency=8)).rate_per_s
    assert rate == pytest.approx(2 / 400e-6, rel=0.03)


def test_one_other_runnable_thread_halves_a_one_core_server_without_client_cpu() -> None:
    profile = _profile(100.0, 0.0)
    alone = simulated_rate(_point(cores=1, clients=4), profile, 1, 4000)
    shared = simulated_rate(_point(cores=1, clients=4, others=1.0), profile, 1, 4000)
    assert shared == pytest.approx(alone / 2, rel=0.03)


def test_calibrated_costs_replace_tcp_and_each_protocol_as_its_extra_over_tcp() -> None:
    base = load_profile("measured")
    profile = rate_profile(base, [CalibratedCosts("tcp", 80.0, 130.0),
                                  CalibratedCosts("tls13", 2000.0, 1900.0)], "now")
    assert profile.server_us("tcp") == 80.0 and profile.client_us("tcp") == 130.0
    assert profile.server_us("tls13") == pytest.approx(2000.0)
    assert profile.client_us("tls13") == pytest.approx(1900.0)
    assert profile.costs_us["tcpcrypt-x25519.server"] == base.costs_us["tcpcrypt-x25519.server"]
    assert profile.environment["rate_costs_calibrated"] == "now"


def test_rate_calibration_without_tcp_is_refused() -> None:
    with pytest.raises(ValueError, match="needs tcp"):
        rate_profile(load_profile("measured"), [CalibratedCosts("tls13", 1.0, 1.0)], "now")


def test_a_process_reading_its_own_state_is_runnable_and_a_gone_one_has_no_threads() -> None:
    assert runnable_tasks(os.getpid()) >= 1
    assert runnable_tasks(2**22 + 7) == 0  # above the kernel's largest pid
    assert autogroup(2**22 + 7) == ""


def test_a_tasks_state_is_read_after_its_command_name_even_one_with_parentheses() -> None:
    assert task_is_running("42 (python3) R 1 42 42")
    assert not task_is_running("42 (evil) R x) S 1 42 42")  # the name is "evil) R x"
    assert not task_is_running("")


def _tls13_on_a_blocking_or_not_server(blocking: bool,
                                       in_handshake_us: float | None = None,
                                       first_flight_us: float | None = None) -> float:
    """TLS 1.3: the server works 1 ms, the client's handshake 1 ms (all of it after the
    server's flight unless `in_handshake_us` says how much, of which `first_flight_us` before
    its first flight); one server core of four, the clients on the other three (never the
    limit)."""
    base = load_profile("measured")
    costs = {**base.costs_us, "tcp.server": 100.0, "tcp.client": 0.0,
             "tls13.server": 900.0, "tls13.client": 1000.0}
    if in_handshake_us is not None:
        costs["tls13.client_in_handshake"] = in_handshake_us
    if first_flight_us is not None:
        costs["tls13.client_first_flight"] = first_flight_us
    profile = CostProfile("test", "test", costs, base.aead_ns_per_byte, {})
    topology = Topology(server_cores=1, machine_cores=4, clients_apart=True,
                        server_blocking=blocking)
    network = SimNetwork(topology, profile, seed=1)
    return network.run(ConnectionLoad("tls13", 2000, concurrency=8)).rate_per_s


def test_a_blocking_server_waits_out_the_clients_handshake_work_between_its_flights() -> None:
    # held from ClientHello to the request: its 1 ms, the client's 1 ms and two flights
    wires_s = 2 * 0.05e-3
    assert _tls13_on_a_blocking_or_not_server(True) == pytest.approx(
        1 / (2e-3 + wires_s), rel=0.03)
    assert _tls13_on_a_blocking_or_not_server(False) == pytest.approx(1 / 1e-3, rel=0.03)


def test_a_blocking_server_without_a_shared_machine_is_refused() -> None:
    with pytest.raises(ValueError, match="shared machine only"):
        SimNetwork(Topology(server_blocking=True), load_profile("measured"), seed=1)


def test_a_blocking_server_waits_only_for_the_client_work_inside_the_handshake() -> None:
    # 400 us of the client's 1 ms inside the handshake: the server holds 1.4 ms and two flights
    wires_s = 2 * 0.05e-3
    assert _tls13_on_a_blocking_or_not_server(True, in_handshake_us=400.0) == pytest.approx(
        1 / (1.4e-3 + wires_s), rel=0.03)


def test_the_clients_work_outside_the_handshake_comes_before_its_first_flight() -> None:
    base = load_profile("measured")
    costs = {**base.costs_us, "tcp.client": 100.0, "tls13.client": 1000.0,
             "tls13.client_in_handshake": 400.0}
    network = SimNetwork(Topology(), CostProfile("t", "t", costs, base.aead_ns_per_byte, {}),
                         seed=1)
    before, per_flight = network.client_split("tls13")
    assert before == pytest.approx(700e-6) and per_flight == pytest.approx(400e-6)
    assert network.client_split("tcp") == pytest.approx((100e-6, 0.0))


def test_a_blocking_server_never_waits_for_the_clients_work_up_to_its_first_flight() -> None:
    # all 1 ms of the client's handshake inside the call, 400 us of it building the first
    # flight (before the deferred accept): the server holds 1 ms, 600 us and two flights
    wires_s = 2 * 0.05e-3
    assert _tls13_on_a_blocking_or_not_server(
        True, in_handshake_us=1000.0, first_flight_us=400.0) == pytest.approx(
        1 / (1.6e-3 + wires_s), rel=0.03)
    assert _tls13_on_a_blocking_or_not_server(
        True, in_handshake_us=1000.0, first_flight_us=0.0) == pytest.approx(
        1 / (2e-3 + wires_s), rel=0.03)


def test_the_clients_first_flight_work_moves_before_its_first_flight() -> None:
    base = load_profile("measured")
    costs = {**base.costs_us, "tcp.client": 100.0, "tls13.client": 1000.0,
             "tls13.client_in_handshake": 900.0, "tls13.client_first_flight": 250.0}
    network = SimNetwork(Topology(), CostProfile("t", "t", costs, base.aead_ns_per_byte, {}),
                         seed=1)
    before, per_flight = network.client_split("tls13")
    assert before == pytest.approx(100e-6 + 100e-6 + 250e-6)
    assert per_flight == pytest.approx(650e-6)
    # a first flight said to cost more than the whole handshake call is capped at it
    costs["tls13.client_first_flight"] = 5000.0
    network = SimNetwork(Topology(), CostProfile("t", "t", costs, base.aead_ns_per_byte, {}),
                         seed=1)
    assert network.client_split("tls13") == pytest.approx((1100e-6, 0.0))


def test_the_rate_profile_carries_the_clients_first_flight_cost() -> None:
    profile = rate_profile(load_profile("measured"), [
        CalibratedCosts("tcp", 80.0, 130.0),
        CalibratedCosts("tls13", 2000.0, 1900.0, client_handshake_us=900.0,
                        client_first_flight_us=200.0)], "now")
    assert profile.costs_us["tls13.client_in_handshake"] == 900.0
    assert profile.costs_us["tls13.client_first_flight"] == 200.0
