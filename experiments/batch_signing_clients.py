"""The load generator of the `batch-signing` experiment (not an experiment: no SPEC).

Several client processes (`client_main`), each with its share of the connections: it opens
them (handshakes) on a pool of threads before the clock starts; then ONE loop thread sends
each connection's go byte at its scheduled time (open loop: a late server does not slow the
arrivals; the processes take the arrivals in turn, so together they offer the rate) and, in
between, reads and checks the answers that have come (the proof verified against the server's
public key, or the `none` method's one byte). Each arrival carries its method (the go byte
names it), so one stream interleaves authenticated and unauthenticated connections, and
latencies and failures are kept per method. A connection's latency runs from its scheduled
arrival to its answer checked. A loop thread rather than a thread per arrival keeps the
generator's own CPU small, and more than one process keeps a batch's proofs, which arrive
together, from queueing behind each other's checks in one thread (real clients check theirs
in parallel). The client processes run unpinned: on a machine of two shared cores they
compete with the server for the same CPUs, so the generator keeps its own CPU per connection
small (profiled with cProfile, docs/auth.md): each process checks its proofs with one
`ProofChecker` per server key (every proof's session ID and Merkle path checked, a batch's
signature verified once per process and remembered, where it was verified per connection),
and the connections are closed after the last answer rather than in the measured phase
(closing a loopback TCP connection cost about as much as the rest of the client's work, and
is the same for every method).
"""

from __future__ import annotations

import selectors
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from cryptography.hazmat.primitives import serialization

from experiments.batch_signing_server import GO_BYTE, NO_AUTH, NO_AUTH_REPLY
from tcpcrypt.auth.batch_proof import ProofChecker, parse_proof
from tcpcrypt.auth.errors import NoSessionId
from tcpcrypt.auth.loopback import connect_inband
from tcpcrypt.auth.wire import MessageType, receive_message
from tcpcrypt.inband import InbandTcpcryptSocket

Address = tuple[str, int]
Arrival = tuple[float, str]  # (scheduled time.monotonic, method)


@dataclass
class Arrivals:
    """Per method: each answered connection's latency, each failure's one-line reason."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    elapsed_s: float = 0.0
    signature_checks: int = 0  # public-key verifications this process made

    def latency(self, method: str, seconds: float) -> None:
        self.latencies.setdefault(method, []).append(seconds)

    def failure(self, method: str, reason: str) -> None:
        self.failures.setdefault(method, []).append(reason)

    def merge(self, other: Arrivals) -> None:
        for method, values in other.latencies.items():
            self.latencies.setdefault(method, []).extend(values)
        for method, reasons in other.failures.items():
            self.failures.setdefault(method, []).extend(reasons)
        self.elapsed_s = max(self.elapsed_s, other.elapsed_s)
        self.signature_checks += other.signature_checks


def open_all(address: Address, count: int, threads: int) -> list[InbandTcpcryptSocket]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: connect_inband(address, timeout=30), range(count)))


def _answer(client: InbandTcpcryptSocket, method: str, checker: ProofChecker | None) -> None:
    """Check the server's answer (the connection is closed by the caller, later)."""
    if method == NO_AUTH:
        if client.recv(1) != NO_AUTH_REPLY:
            raise ConnectionError("the server did not answer")
        return
    if checker is None:
        raise ConnectionError(f"no server key for {method}")
    session_id = client.getsessid()
    if not session_id:
        raise NoSessionId("the connection is not encrypted with tcpcrypt")
    checker.check(parse_proof(receive_message(client, MessageType.BATCH_PROOF)), session_id)


def arrive(opened: list[InbandTcpcryptSocket], schedule: list[Arrival],
           credentials: dict[str, Any], give_up_s: float = 30.0) -> Arrivals:
    """Send each go byte at its time in `schedule` (time.monotonic), naming the arrival's
    method, and check every answer (with `credentials[method]`, the server's public key)."""
    result = Arrivals()
    checkers = {method: ProofChecker(key) for method, key in credentials.items()}
    selector = selectors.DefaultSelector()
    began = schedule[0][0] if schedule else time.monotonic()  # the first arrival's time
    sent = 0
    outstanding = 0
    last_due = schedule[-1][0] if schedule else began
    while sent < len(opened) or outstanding:
        now = time.monotonic()
        while sent < len(opened) and schedule[sent][0] <= now:
            client, (scheduled, method) = opened[sent], schedule[sent]
            sent += 1
            try:
                client.sendall(GO_BYTE[method])
            except OSError as error:
                result.failure(method, f"{type(error).__name__}: {error}")
                continue
            selector.register(client.fileno(), selectors.EVENT_READ, (client, scheduled, method))
            outstanding += 1
        if now > last_due + give_up_s:
            for key in list(selector.get_map().values()):
                result.failure(key.data[2], "no answer in time")
            break
        wait = schedule[sent][0] - now if sent < len(opened) else 0.5
        for key, _ in selector.select(max(0.0, wait)):
            client, scheduled, method = key.data
            selector.unregister(key.fd)
            outstanding -= 1
            try:
                _answer(client, method, checkers.get(method))
            except Exception as error:
                result.failure(method, f"{type(error).__name__}: {error}")
                continue
            result.latency(method, time.monotonic() - scheduled)
    result.elapsed_s = time.monotonic() - began
    result.signature_checks = sum(checker.verifications for checker in checkers.values())
    selector.close()
    return result


def client_main(pipe: Connection, address: Address, count: int, threads: int,
                public_pems: dict[str, bytes]) -> None:
    """A client process: open `count` connections, say "open", then on ("go", arrivals) send
    the go bytes at those times; answer with the arrivals and this process's CPU time.
    `public_pems`: the server's public key (PEM) per authenticated method."""
    credentials = {method: serialization.load_pem_public_key(pem)
                   for method, pem in public_pems.items()}
    opened = open_all(address, count, threads)
    pipe.send("open")
    word, schedule = pipe.recv()
    if word != "go":
        raise RuntimeError(f"the parent said {word!r}")
    cpu = time.process_time()
    try:
        result = arrive(opened, schedule, credentials)
        spent = time.process_time() - cpu
    finally:
        for client in opened:  # after the measured phase (see the module's docstring)
            client.close()
    pipe.send((result, spent))
