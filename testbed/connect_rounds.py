"""`connect`'s rounds: the protocols' connections interleaved, and each protocol's rounds
combined into one row.

A row measured in one block of connections takes whatever the shared machine did during that
block: a burst of other work in the minute of one protocol's block moves the ratio between two
rows. Split into rounds that alternate between the protocols, every protocol sees the same
minutes. Each round is a fresh server and load generator (`measure_connections`); the row's
per-connection costs are the median over the rounds (a burst in one round moves no figure),
its latencies come from every connection of every round, and its kernel shares from the
rounds' summed system time (one round alone may span too few clock ticks to count).

The implementation's own overhead is read against the key exchange measured in the same
rounds (`overhead_per_kex`): each round's server CPU above TCP's over that round's key
exchange, so a host whose speed drifts between minutes moves numerator and denominator
together.
"""

from __future__ import annotations

import statistics
from typing import Any

from testbed.measurements import kernel_us, percentile

# per-connection figures taken as the median over the rounds
MEDIAN_OF_ROUNDS = ("server_cpu_us", "daemon_cpu_us", "connect_ms", "ready_ms", "bpf_runs",
                    "bpf_us", "server_cores", "engine_cpu", "engine_busy")
# shares of the connections: weighted by each round's connections
SHARES = ("resumed", "encrypted", "authenticated")


def split_count(count: int, rounds: int) -> list[int]:
    """`count` connections over `rounds` rounds, as even as they go (the first rounds take
    the remainder); a bad pair is refused."""
    if count < 1 or rounds < 1:
        raise ValueError(f"connections ({count}) and rounds ({rounds}) must be at least 1")
    if rounds > count:
        raise ValueError(f"rounds ({rounds}) cannot exceed connections ({count})")
    base, extra = divmod(count, rounds)
    return [base + (1 if index < extra else 0) for index in range(rounds)]


def _median(values: list[Any]) -> float | None:
    present = [float(value) for value in values if value is not None]
    return statistics.median(present) if present else None


def combine_rounds(measured: list[tuple[dict[str, Any], dict[str, float]]]) -> dict[str, Any]:
    """One row from the rounds' (row, raw) pairs of `measure_connections`, in round order.
    The row keeps `first_byte_samples_ms` (every connection's) and adds `rounds` and the
    rounds' spread of server CPU (`server_cpu_us_min`, `server_cpu_us_max`)."""
    if not measured:
        raise ValueError("no round to combine")
    rows = [row for row, _ in measured]
    if len(rows) == 1:
        return {**rows[0], "rounds": 1}
    counts = [len(row["first_byte_samples_ms"]) for row in rows]
    samples = [value for row in rows for value in row["first_byte_samples_ms"]]
    combined: dict[str, Any] = dict(rows[0])
    combined["first_byte_samples_ms"] = samples
    combined["latency_ms"] = statistics.median(samples)
    combined["p90_ms"] = percentile(samples, 0.9)
    for key in MEDIAN_OF_ROUNDS:
        if any(key in row for row in rows):
            combined[key] = _median([row.get(key) for row in rows])
    total = sum(counts)
    for key in SHARES:
        if any(key in row for row in rows):
            combined[key] = sum(float(row.get(key) or 0.0) * count
                                for row, count in zip(rows, counts, strict=True)) / total
    if "auth_failures" in rows[0]:
        combined["auth_failures"] = sum(int(row.get("auth_failures") or 0) for row in rows)
        errors = [row["error"] for row in rows if row.get("error")]
        combined["error"] = errors[0] if errors else None
    handled = int(sum(raw["handled"] for _, raw in measured))
    combined["server_kernel_us"] = kernel_us(sum(raw["server_system_s"] for _, raw in measured),
                                             handled)
    combined["daemon_kernel_us"] = kernel_us(sum(raw["daemon_system_s"] for _, raw in measured),
                                             handled)
    cpu = [float(row["server_cpu_us"]) for row in rows]
    combined["rounds"] = len(rows)
    combined["server_cpu_us_min"], combined["server_cpu_us_max"] = min(cpu), max(cpu)
    return combined


def overhead_per_kex(measured: list[dict[str, Any]], base: list[dict[str, Any]],
                     kex_us: list[float]) -> float | None:
    """The median over rounds of (a row's server CPU - the base row's) / that round's key
    exchange alone, from per-round rows of `measure_connections` in round order; None when
    the three do not cover the same rounds (a protocol failed in one) or a round's key
    exchange read 0."""
    if not kex_us or not len(measured) == len(base) == len(kex_us) or min(kex_us) <= 0:
        return None
    return statistics.median(
        (float(row["server_cpu_us"]) - float(under["server_cpu_us"])) / kex
        for row, under, kex in zip(measured, base, kex_us, strict=True))
