"""Scenario: authentication over the tcpcrypt session ID, with and without a man in the middle.

Covers: for each method (`cmac`, `batch-sign`, `pake`), `attempts` connections over real
loopback TCP, each running a real tcpcrypt key exchange (the in-band shim, `tcpcrypt.inband`)
and then the method; then as many through a relay that terminates tcpcrypt on both sides and
forwards every authentication message (`tcpcrypt.auth.loopback.MitmRelay`). A direct attempt
succeeds when both ends return the same session ID; an attempt through the relay is detected
when the client gets an `AuthError` and never the server's data (for the mutual methods, CMAC
and PAKE, the server must also refuse). Also: the median time from connect() to
authenticated, beside a connection without authentication (loopback and a Python shim: not
the paper's LAN figures, and not the `connect` experiment's rows), what each method adds to
it (`auth.added_ms.<method>`; the connections are sequential, so every batch of the batch
signer holds one session ID and waits its whole window, `auth.window_ms`), and the host's
RSA-2048 sign and X25519 times measured in the same run.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from tcpcrypt.auth import (
    AuthError,
    Batcher,
    Role,
    SigningKey,
    authenticate_cmac,
    pake_client,
    pake_server,
    serve_batch_signed,
    verify_batch_signed,
)
from tcpcrypt.auth.errors import AuthTimeout
from tcpcrypt.auth.loopback import LoopbackServer, MitmRelay, connect_inband
from tcpcrypt.inband import InbandTcpcryptSocket
from testbed.calibration.primitives import host_costs_us
from testbed.experiment import Expectation, ExperimentOutput, ExperimentSpec, Param, RunContext

METHODS = ("cmac", "batch-sign", "pake")
SERVER_DATA = b"only for the authenticated peer"
Side = Callable[[InbandTcpcryptSocket], bytes]


def _positive(value: object) -> None:
    if not isinstance(value, int | float) or value <= 0:
        raise ValueError("must be > 0")


SPEC = ExperimentSpec(
    name="auth",
    description="CMAC, batch signing, PAKE over the session ID: success, and MITM detection",
    runtime="memory",
    params=(
        Param("attempts", 30, quick=8, help="connections per method, direct and via the MITM",
              validate=_positive, low=1, high=10_000),
        Param("window_ms", 5.0, quick=5.0, help="batching window of the batch signer",
              validate=_positive, low=0.1, high=10_000),
    ),
    expectations=tuple(
        Expectation(f"{method}: {what} on every attempt", lhs=f"auth.{metric}.{method}",
                    op=">=", rhs="", offset=1.0, source="issue #12")
        for method in METHODS
        for what, metric in (("success", "success_fraction"),
                             ("MITM detected", "mitm_detected_fraction"))
    ),
)


@dataclass
class MethodSides:
    server: Side
    client: Side
    mutual: bool


def _sides(method: str, batcher: Batcher, key: SigningKey) -> MethodSides:
    psk, password = os.urandom(16), "a password for the experiment"
    if method == "cmac":
        return MethodSides(lambda s: authenticate_cmac(s, psk, Role.SERVER),
                           lambda s: authenticate_cmac(s, psk, Role.CLIENT), True)
    if method == "batch-sign":
        return MethodSides(lambda s: serve_batch_signed(s, batcher),
                           lambda s: verify_batch_signed(s, key.public_key()), False)
    return MethodSides(lambda s: pake_server(s, password), lambda s: pake_client(s, password),
                       True)


def _serving(side: Side) -> Side:
    def handler(sock: InbandTcpcryptSocket) -> bytes:
        sid = side(sock)
        sock.sendall(SERVER_DATA)
        return sid
    return handler


def _direct(server: LoopbackServer, sides: MethodSides) -> tuple[bool, float]:
    started = time.perf_counter()
    client = connect_inband(server.address)
    try:
        sid = sides.client(client)
        elapsed = time.perf_counter() - started
        data = b""
        while len(data) < len(SERVER_DATA) and (chunk := client.recv(100)):
            data += chunk
    except (AuthError, OSError):
        return False, 0.0
    finally:
        client.close()
    return server.results.get(timeout=30) == sid and data == SERVER_DATA, elapsed


def _through_relay(server: LoopbackServer, relay: MitmRelay, sides: MethodSides) -> bool:
    client = connect_inband(relay.address)
    try:
        sides.client(client)
    except AuthTimeout:
        refused = False  # no answer is not a detection: the relay or the server stalled
    except AuthError:
        refused = client.fileno() == -1  # closed: nothing can be read
    else:
        client.close()
        refused = False
    outcome = server.results.get(timeout=30)
    return refused and (not sides.mutual or isinstance(outcome, AuthError))


def _plain_connect_ms(attempts: int) -> float:
    with LoopbackServer(lambda sock: sock.getsessid()) as server:
        times = []
        for _ in range(attempts):
            started = time.perf_counter()
            client = connect_inband(server.address)
            times.append(time.perf_counter() - started)
            client.close()
            server.results.get(timeout=30)
    return statistics.median(times) * 1000


def run(ctx: RunContext) -> ExperimentOutput:
    attempts = int(ctx.params["attempts"])
    window_s = float(ctx.params["window_ms"]) / 1000
    key = SigningKey.generate("rsa-2048")
    rows: list[dict[str, object]] = []
    metrics: dict[str, float] = host_costs_us()  # this run's RSA-2048 sign and X25519 times
    baseline_ms = _plain_connect_ms(attempts)
    rows.append({"method": "none (tcpcrypt only)", "attempts": attempts,
                 "connect_to_auth_ms": baseline_ms})
    with Batcher(key, max_batch=64, window_s=window_s) as batcher, \
            ctx.progress(len(METHODS) * attempts * 2, "auth") as progress:
        for method in METHODS:
            sides = _sides(method, batcher, key)
            with LoopbackServer(_serving(sides.server)) as server:
                direct = []
                for _ in range(attempts):
                    direct.append(_direct(server, sides))
                    progress.advance()
                with MitmRelay(server.address) as relay:
                    detected = []
                    for _ in range(attempts):
                        detected.append(_through_relay(server, relay, sides))
                        progress.advance()
            success = sum(ok for ok, _ in direct) / attempts
            mitm = sum(detected) / attempts
            latency = statistics.median([t for ok, t in direct if ok] or [0.0]) * 1000
            metrics[f"auth.success_fraction.{method}"] = success
            metrics[f"auth.mitm_detected_fraction.{method}"] = mitm
            metrics[f"auth.connect_ms.{method}"] = latency
            metrics[f"auth.added_ms.{method}"] = latency - baseline_ms
            rows.append({"method": method, "attempts": attempts, "success": success,
                         "mitm_detected": mitm, "connect_to_auth_ms": latency,
                         "added_ms": latency - baseline_ms})
    metrics["auth.connect_ms.none"] = baseline_ms
    metrics["auth.window_ms"] = window_s * 1000
    rows.append({"method": "host", "rsa2048_sign_us": metrics["host.rsa2048_sign_us"],
                 "x25519_us": metrics["host.x25519_us"]})
    ctx.add_environment("auth_transport", "loopback TCP, tcpcrypt x25519 via the in-band shim")
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        ctx.warn(f"load average {os.getloadavg()[0]:.1f} exceeds the core count: noisy times")
    return ExperimentOutput(rows, metrics)
