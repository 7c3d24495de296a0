"""connect's rounds: connections split evenly, rows combined with per-connection costs as
the median over the rounds, latencies over every connection, kernel shares from summed
system time."""

from __future__ import annotations

import os
from typing import Any

import pytest

from testbed.connect_rounds import combine_rounds, overhead_per_kex, split_count


def _round(cpu_us: float, first_bytes: list[float], *, encrypted: float = 1.0,
           system_s: float = 0.0) -> tuple[dict[str, Any], dict[str, float]]:
    row = {"protocol": "tcpcrypt-x25519", "latency_ms": sorted(first_bytes)[0],
           "p90_ms": max(first_bytes), "connect_ms": cpu_us / 1000, "ready_ms": cpu_us / 1000,
           "server_cpu_us": cpu_us, "daemon_cpu_us": 0.0, "daemon_kernel_us": None,
           "server_kernel_us": None, "bpf_runs": 19.0, "bpf_us": 10.0, "resumed": 0.0,
           "encrypted": encrypted, "server_cores": 0.3, "first_byte_samples_ms": first_bytes}
    raw = {"server_system_s": system_s, "daemon_system_s": 0.0,
           "handled": float(len(first_bytes))}
    return row, raw


def test_connections_split_evenly_with_the_remainder_first() -> None:
    assert split_count(500, 5) == [100] * 5
    assert split_count(7, 3) == [3, 2, 2]
    assert split_count(1, 1) == [1]


@pytest.mark.parametrize(("count", "rounds"), [(3, 4), (0, 1), (5, 0)])
def test_impossible_splits_are_refused(count: int, rounds: int) -> None:
    with pytest.raises(ValueError, match="rounds"):
        split_count(count, rounds)


def test_a_burst_in_one_round_does_not_move_the_server_cost() -> None:
    combined = combine_rounds([_round(400, [1.0, 1.1]), _round(2000, [1.2, 5.0]),
                               _round(420, [1.0, 1.3])])
    assert combined["server_cpu_us"] == 420
    assert (combined["server_cpu_us_min"], combined["server_cpu_us_max"]) == (400, 2000)
    assert combined["rounds"] == 3


def test_latency_comes_from_every_connection_of_every_round() -> None:
    combined = combine_rounds([_round(400, [1.0, 2.0]), _round(400, [3.0, 4.0, 5.0])])
    assert combined["first_byte_samples_ms"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert combined["latency_ms"] == 3.0
    assert combined["p90_ms"] == 5.0


def test_shares_are_weighted_by_each_rounds_connections() -> None:
    combined = combine_rounds([_round(400, [1.0], encrypted=0.0),
                               _round(400, [1.0, 1.0, 1.0], encrypted=1.0)])
    assert combined["encrypted"] == pytest.approx(0.75)


def test_kernel_share_counts_the_rounds_system_time_together() -> None:
    tick = 1 / os.sysconf("SC_CLK_TCK")  # one round alone spans 12 ticks: too few to report
    rounds = [_round(400, [1.0] * 100, system_s=12 * tick) for _ in range(2)]
    assert combine_rounds(rounds[:1])["server_kernel_us"] is None
    combined = combine_rounds(rounds)
    assert combined["server_kernel_us"] == pytest.approx(24 * tick / 200 * 1e6)


def test_one_round_is_the_measured_row_itself() -> None:
    row, raw = _round(400, [1.0, 2.0])
    assert combine_rounds([(row, raw)]) == {**row, "rounds": 1}


def test_no_round_is_an_error() -> None:
    with pytest.raises(ValueError, match="no round"):
        combine_rounds([])


def test_overhead_per_kex_is_the_median_of_each_rounds_excess_over_its_own_key_exchange() -> None:
    measured = [{"server_cpu_us": 360.0}, {"server_cpu_us": 700.0}, {"server_cpu_us": 330.0}]
    base = [{"server_cpu_us": 60.0}, {"server_cpu_us": 100.0}, {"server_cpu_us": 70.0}]
    # a slow minute in round 2 doubles both the excess and the key exchange: its ratio holds
    kex = [100.0, 200.0, 100.0]
    assert overhead_per_kex(measured, base, kex) == pytest.approx(3.0)


def test_overhead_per_kex_needs_the_same_rounds_everywhere() -> None:
    rows = [{"server_cpu_us": 300.0}, {"server_cpu_us": 300.0}]
    assert overhead_per_kex(rows, rows[:1], [100.0, 100.0]) is None
    assert overhead_per_kex(rows, rows, []) is None
    assert overhead_per_kex(rows, rows, [100.0, 0.0]) is None
