"""Scenario: a server authenticating many new connections: batch signing vs one signature per
connection vs TLS, as the connection arrival rate grows.

Covers: for each arrival rate, `connections` authentications arrive on schedule (open loop)
over real loopback TCP. The tcpcrypt methods are served by `workers` server processes sharing
the port (SO_REUSEPORT, each pinned to a CPU; `batch_signing_worker`): `batch-sign` around ONE
shared signer process (`tcpcrypt.auth.shared_signer`, RSA-2048) that batches the IDs of every
worker, `sign-each` with every worker signing each of its own IDs. Each tcpcrypt point interleaves
unauthenticated connections (`none`, answered with one byte: the latency baseline) into the
authenticated method's arrival stream (`none_share` of it, each arrival's method a seeded
shuffle), so the latency a method adds is a paired comparison: the same seconds, workers,
client processes and disturbance; the authenticated method's own arrivals keep the offered
rate. Their connections (X25519, the in-band shim) are opened
by the client processes before the clock starts; then each client sends a go byte at its
scheduled time and checks the answer (`batch_signing_clients`), so the rate of
authentications is not capped by how fast Python clients finish key exchanges (that cost is
measured apart, `handshake_process_cpu_us`). `tls` is a whole TLS 1.3 handshake with an
RSA-2048 certificate arriving at the rate, served by one process.

Measured: signatures per second; the server's CPU per authenticated connection spent
producing the authentication (`auth.server_cpu_us`), counted over every server process: the
workers' work from the go byte to the proof written, counted per connection and so per
method (the write apart, `proof_write_us`: the same message either way, on loopback also
carrying the receiver's TCP processing) plus, for batch signing only, the shared signer's
whole process CPU; for TLS the whole handshake; every server process's CPU per connection over
both phases (`auth.server_total_cpu_us`: a method's counted work plus an equal share per
connection of what the point's processes spent beyond the counted work); the median and p90
time from the scheduled arrival to authenticated and what it adds to the paired `none`
arrivals, the time inside the server, and the CPUs the server and the clients kept busy.
The host's RSA-2048 sign and X25519 times are measured in the same run.
"""

from __future__ import annotations

import os
import statistics
from typing import Any

from experiments import batch_signing_server
from experiments.batch_signing_point import run_point
from testbed.calibration.primitives import host_costs_us
from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param, RunContext

NO_AUTH = batch_signing_server.NO_AUTH
METHODS = ("sign-each", "batch-sign", "tls")  # a point each; the tcpcrypt ones carry `none`
PAIRED = ("sign-each", "batch-sign")


def _rates(value: object) -> list[float]:
    rates = [float(part) for part in str(value).split(",") if part.strip()]
    if not rates or any(rate <= 0 or rate > 20_000 for rate in rates):
        raise ValueError("a comma-separated list of arrival rates in 1..20000 per second")
    return sorted(rates)


def _positive(value: object) -> None:
    if not isinstance(value, int | float) or value <= 0:
        raise ValueError("must be > 0")


SPEC = ExperimentSpec(
    name="batch-signing",
    description="server signatures/s and CPU per authenticated connection vs arrival rate: "
                "batch signing, one signature each, TLS",
    runtime="memory",
    params=(
        Param("rates", "250,1000,2000", quick="100,2000",
              help="arrival rates, authentications/s", validate=_rates),
        Param("connections", 1000, quick=160, help="connections per method and rate",
              validate=_positive, low=1, high=100_000),
        Param("none_share", 0.25, help="share of each tcpcrypt point's arrival stream that is "
              "unauthenticated (the paired latency baseline), on top of the method's own "
              "arrivals at the offered rate", low=0.05, high=0.5),
        Param("window_ms", 20.0, help="batching window (20 ms: on this 2-vCPU shared host "
              "the scheduling noise alone reaches 10 ms, see docs/auth.md)",
              validate=_positive, low=0.1, high=10_000),
        Param("max_batch", 64, help="most session IDs per signature", validate=_positive,
              low=1, high=65_536),
        Param("clients", 48, quick=32, help="client threads opening the tcpcrypt connections "
              "before the clock starts (the arrivals then run on one loop thread)",
              validate=_positive, low=1, high=1024),
        Param("client_processes", 0, help="load-generator processes, each a loop thread over "
              "its share of the connections (0: one per CPU this process may use; unpinned)",
              low=0, high=64),
        Param("pin_workers", 1, help="1: pin each worker to its own CPU (as connection-rate "
              "does); 0: leave them to the scheduler", low=0, high=1),
        Param("workers", 0, help="server worker processes sharing the port around the one "
              "signer (0: one per CPU this process may use, each pinned to its CPU)",
              low=0, high=64),
    ),
    expectations=(
        Expectation("batch signing: >= 5x less server CPU per authenticated connection than "
                    "signing each (highest rate)",
                    lhs="auth.server_cpu_us.sign-each", op=">=",
                    rhs="auth.server_cpu_us.batch-sign", factor=5.0,
                    source="issue #12; Bittau et al. 2010 (batch signing amortises the cost)"),
        Expectation("batch signing adds at most one batching window to connect latency "
                    "(median, against the unauthenticated connections interleaved in the "
                    "same arrival stream; the largest over the rates)",
                    lhs="auth.batch_added_ms", op="<=", rhs="auth.window_ms", factor=1.0,
                    source="issue #12"),
    ),
)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[int(share * (len(ordered) - 1))]


def _row(method: str, rate: float, point: dict[str, Any], paired_with: str = "") -> dict[str, Any]:
    done = max(1, int(point["connections"]))
    signatures = point.get("batches", done if method != NO_AUTH else 0)
    latencies = point["latencies"] or [0.0]
    everyone = max(1, int(point.get("point_connections", done)))
    own_s = point["auth_cpu_ns"] / 1e9
    shared_s = point.get("unattributed_process_cpu_s")
    # a method's server CPU in the authentication phase: its counted work plus an equal share
    # per connection of the point's uncounted work (TLS: its one process, all of it)
    process_s = point["process_cpu_s"] if shared_s is None else own_s + shared_s * done / everyone
    handshake_s = point["handshake_process_cpu_s"] * done / everyone
    return {
        "method": method, "paired_with": paired_with, "offered_rate": rate,
        "server_workers": point["workers"],
        "achieved_rate": len(point["latencies"]) / point["elapsed_s"],
        "authenticated": len(point["latencies"]), "failed": len(point["failures"]),
        "signatures_per_s": signatures / point["wall_s"],
        "ids_per_signature": done / signatures if signatures else 0.0,
        "auth_cpu_us": point["auth_cpu_ns"] / done / 1000,
        "sign_cpu_us": point.get("sign_cpu_ns", point["auth_cpu_ns"]) / done / 1000,
        "proof_write_us": point["send_cpu_ns"] / done / 1000,
        "auth_process_cpu_us": process_s * 1e6 / done,
        "handshake_process_cpu_us": handshake_s * 1e6 / done,
        "total_cpu_us": (process_s + handshake_s) * 1e6 / done,
        "connect_ms_median": statistics.median(latencies) * 1000,
        "connect_ms_p90": _percentile(latencies, 0.90) * 1000,
        "connect_ms_p95": _percentile(latencies, 0.95) * 1000,
        # inside the server: the go byte read to the answer written (no client, no network)
        "server_wait_ms_median": statistics.median(point.get("server_waits_s") or [0.0]) * 1000,
        "batcher_margin_ms": point.get("margin_ms", 0.0),
        "queued_batches": point.get("queued_batches", 0),
        "queued_ms_per_batch": point.get("queued_ns", 0) / 1e6 / max(1, signatures),
        # the shared signer's whole process CPU per connection (its signatures included) and
        # how often it woke (about once per batch: it reads lazily)
        "signer_process_cpu_us": point.get("signer_cpu_ns", 0) / done / 1000,
        "signer_wakes_per_batch": point.get("signer_wakes", 0) / max(1, signatures),
        # CPUs kept busy during the authentications (the whole point, both kinds of
        # arrival): every server process, and the load generator; against the machine's CPUs
        "server_cpus_busy": point["process_cpu_s"] / point["wall_s"],
        "client_cpus_busy": point.get("client_cpu_s", 0.0) / point["elapsed_s"],
        "client_cpu_us_per_connection": point.get("client_cpu_s", 0.0) * 1e6 / everyone,
        # public-key verifications the client processes made (each batch's signature once
        # per process; every proof's own ID and Merkle path are checked regardless)
        "client_signature_checks": point.get("client_signature_checks", 0),
        # the whole machine's CPUs busy over the phase, every tenant's (/proc/stat)
        "machine_cpus_busy": point.get("machine_busy", 0.0) * (os.cpu_count() or 1),
    }


def _added(rows: list[dict[str, Any]], rate: float, window_ms: float) -> dict[str, Any]:
    """What each authenticated method adds to the latency of the unauthenticated connections
    interleaved with it (paired: the same stream) at `rate`, and whether batch signing's
    median stays within one window."""
    at_rate = {(row["method"], row["paired_with"]): row for row in rows
               if row.get("offered_rate") == rate}
    summary: dict[str, Any] = {"method": "added-latency", "offered_rate": rate,
                               "window_ms": window_ms}
    for method in PAIRED:
        own, base = at_rate[(method, "")], at_rate[(NO_AUTH, method)]
        for stat in ("median", "p90", "p95"):
            summary[f"{method}_connect_ms_{stat}"] = own[f"connect_ms_{stat}"]
            summary[f"{method}_none_connect_ms_{stat}"] = base[f"connect_ms_{stat}"]
            summary[f"{method}_added_ms_{stat}"] = (own[f"connect_ms_{stat}"]
                                                    - base[f"connect_ms_{stat}"])
    summary["batch_within_window"] = (
        "PASS" if summary["batch-sign_added_ms_median"] <= window_ms else "FAIL")
    batch = at_rate[("batch-sign", "")]
    achieved = batch["achieved_rate"]
    summary["batch_achieved_rate"] = achieved
    # kept up: every connection answered within the arrivals' span plus one window, at 90 %
    # (the rate alone would count a short run's last window of latency as falling behind);
    # below it the latency is the server's backlog (CPU it did not get), not the window
    count = batch["authenticated"] + batch["failed"]
    ideal = count / ((count - 1) / rate + window_ms / 1000) if count > 1 else rate
    summary["batch_server_kept_up"] = achieved >= 0.9 * min(rate, ideal)
    server_busy = batch["server_cpus_busy"]
    client_busy = batch["client_cpus_busy"]
    summary["batch_server_cpus_busy"] = server_busy
    summary["batch_client_cpus_busy"] = client_busy
    machine_busy = batch["machine_cpus_busy"]
    summary["batch_machine_cpus_busy"] = machine_busy
    # which side ran out of CPU when the arrivals were not served in time: the machine, if its
    # CPUs were nearly all busy while ours used less than half of them (other tenants had
    # the rest); else the one of ours that kept more CPU busy
    cpus = os.cpu_count() or 1
    if summary["batch_server_kept_up"]:
        summary["saturated"] = "none"
    elif machine_busy >= 0.9 * cpus and server_busy + client_busy < 0.5 * machine_busy:
        summary["saturated"] = "machine (other tenants)"
    else:
        summary["saturated"] = "server" if server_busy >= client_busy else "clients"
    summary["cpu_saving"] = (at_rate[("sign-each", "")]["auth_cpu_us"]
                             / max(1e-9, batch["auth_cpu_us"]))
    summary["cpu_saving_5x"] = "PASS" if summary["cpu_saving"] >= 5.0 else "FAIL"
    return summary


def run(ctx: RunContext) -> ExperimentOutput:
    rates = _rates(ctx.params["rates"])
    metrics = host_costs_us()
    rows: list[dict[str, Any]] = []
    with ctx.progress(len(rates) * len(METHODS), "batch signing") as progress:
        for rate in rates:
            for method in METHODS:
                for name, point in run_point(method, rate, ctx.params).items():
                    paired = method if name != method else ""
                    row = _row(name, rate, point, paired)
                    rows.append(row)
                    if point["failures"]:
                        ctx.warn(f"{name} at {rate:g}/s (point {method}): "
                                 f"{len(point['failures'])} failed, "
                                 f"first: {point['failures'][0]}")
                    if paired and paired != "batch-sign":
                        continue  # `none`'s metrics: those paired with batch signing
                    suffix = f".r{rate:g}"
                    for metric, key in (("server_cpu_us", "auth_cpu_us"),
                                        ("ids_per_signature", "ids_per_signature"),
                                        ("server_total_cpu_us", "total_cpu_us"),
                                        ("connect_ms", "connect_ms_median"),
                                        ("signatures_per_s", "signatures_per_s")):
                        metrics[f"auth.{metric}.{name}{suffix}"] = float(row[key])
                        if rate == rates[-1]:
                            metrics[f"auth.{metric}.{name}"] = float(row[key])
                progress.advance()
    window_ms = float(ctx.params["window_ms"])
    metrics["auth.window_ms"] = window_ms
    added = [_added(rows, rate, window_ms) for rate in rates]
    for summary in added:
        rate = summary["offered_rate"]
        for method in PAIRED:
            for stat in ("median", "p90", "p95"):
                name = "added_ms" if stat == "median" else f"added_ms_{stat}"
                metrics[f"auth.{name}.{method}.r{rate:g}"] = summary[f"{method}_added_ms_{stat}"]
        if summary["batch_within_window"] == "FAIL":
            median, p90 = (summary["batch-sign_added_ms_median"],
                           summary["batch-sign_added_ms_p90"])
            behind = ("" if summary["batch_server_kept_up"] else
                      f"; the server fell behind (served {summary['batch_achieved_rate']:.0f}/s;"
                      f" saturated: {summary['saturated']})")
            ctx.warn(f"batch signing at {rate:g}/s adds {median:.2f} ms (median; p90 "
                     f"{p90:.2f}) to the unauthenticated connections of the same stream, more "
                     f"than the {window_ms:g} ms window{behind}")
    rows.extend(added)
    metrics["auth.batch_added_ms"] = max(summary["batch-sign_added_ms_median"]
                                         for summary in added)
    rows.append({"method": "host", "rsa2048_sign_us": metrics["host.rsa2048_sign_us"],
                 "x25519_us": metrics["host.x25519_us"],
                 "paper_2008_rsa_decrypt_ms": 10.42})
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        ctx.warn(f"load average {os.getloadavg()[0]:.1f} exceeds the core count: noisy figures")
    return ExperimentOutput(rows, metrics)
