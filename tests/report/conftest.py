"""Synthetic result files (schema 1, as the runner writes them) for the report's tests: the
figures are made up for the tests and never shown as measurements."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CONNECT_US = {"tcp": 90.0, "tls12-rsa": 1200.0, "tls13": 1700.0, "tcpcrypt-rsa-exp3": 300.0,
              "tcpcrypt-x25519": 250.0, "tcpcryptd-x25519": 2000.0,
              "tcpcryptd-rsa-exp3": 2600.0}
LATENCY_MS = {"tcp": 0.2, "tcpcrypt-x25519-resumed": 0.25, "tcpcryptd-x25519-resumed": 4.0,
              "tls12-rsa-resumed": 1.3}


def result(experiment: str, metrics: dict[str, float], rows: list[dict[str, Any]] | None = None,
           **extra: Any) -> dict[str, Any]:
    return {"schema": 1, "experiment": experiment, "runtime": "emulation", "profile": None,
            "started": "2026-12-01T00:00:00+00:00", "duration_s": 1.0, "environment": {},
            "config": {}, "rows": rows or [], "metrics": metrics, "expectations": [],
            "warnings": [], "figures": [], **extra}


def connect() -> dict[str, Any]:
    metrics = {f"connect.server_cpu_us.{k}": v for k, v in CONNECT_US.items()}
    metrics.update({f"connect.latency_ms.{k}": v for k, v in LATENCY_MS.items()})
    rows = [{"protocol": k, "latency_ms": LATENCY_MS.get(k, 1.0), "p90_ms": 2.0,
             "server_cpu_us": v, "daemon_cpu_us": 1500.0 if "tcpcryptd" in k else 0.0}
            for k, v in CONNECT_US.items()]
    samples = {f"connect.first_byte_ms.{k}": [v * f for f in (0.8, 1.0, 1.5)]
               for k, v in LATENCY_MS.items()}
    return result("connect", metrics, rows, samples=samples)


def throughput() -> dict[str, Any]:
    return result("throughput", {"throughput.mbps.tcp": 9000.0, "throughput.mbps.tls13": 3000.0,
                                 "throughput.mbps.tcpcryptd-x25519": 800.0})


def web_server() -> dict[str, Any]:
    metrics: dict[str, float] = {}
    for label, cost in (("tcp", 100.0), ("tls12-rsa", 1100.0), ("tcpcryptd-x25519", 900.0)):
        for mode, share in (("close", 1.0), ("keepalive", 0.3)):
            metrics[f"web.server_cpu_us.{label}.{mode}"] = cost * share
            metrics[f"web.rps.{label}.{mode}"] = 1e6 / (cost * share)
    return result("web-server", metrics)


MATRIX_CONDITIONS = ("none", "strip-options(on=syn)",
                     "resegment(max_bytes=500),resegment(mode=coalesce,max_bytes=1200)")


def matrix() -> dict[str, Any]:
    rows = []
    for condition in MATRIX_CONDITIONS:
        for protocol in ("tcp", "tls13", "tcpcryptd-x25519"):
            outcome = ("plaintext" if protocol == "tcp" else "fallback"
                       if "strip" in condition and "tcpcrypt" in protocol else "encrypted")
            rows.append({"middlebox": condition, "protocol": protocol, "outcome": outcome,
                         "expected": outcome, "integrity_ok": True})
    rows[-1]["outcome"] = "broken"  # one unexpected cell
    return result("middlebox-matrix", {"matrix.cells": 9.0, "matrix.broken_cells": 1.0,
                                       "matrix.unexpected_cells": 1.0,
                                       "matrix.silent_corruption_cells": 0.0}, rows)


def connection_rate(profile: str = "xeon-2008") -> dict[str, Any]:
    rates = {"tcp": 80000.0, "tls12-rsa": 1000.0, "tcpcrypt-rsa-exp3": 36000.0}
    rows = [{"protocol": k, "cores": c, "conn_per_s": v * c / 8} for k, v in rates.items()
            for c in (1, 8)]
    metrics = {f"rate.conn_per_s.{k}.{c}": v * c / 8 for k, v in rates.items() for c in (1, 8)}
    return result("connection-rate", metrics, rows, runtime="simulation", profile=profile)


ALL = {"connect": connect, "throughput": throughput, "web-server": web_server,
       "middlebox-matrix": matrix, "connection-rate": connection_rate}


def write(directory: Path, *names: str) -> Path:
    """The named experiments' synthetic results in `directory` (every one when none named)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names or tuple(ALL):
        (directory / f"{name}.json").write_text(json.dumps(ALL[name]()))
    return directory


@pytest.fixture
def write_results() -> Callable[..., Path]:
    """`write(directory, *names)`: synthetic results of the named experiments (all if none)."""
    return write
