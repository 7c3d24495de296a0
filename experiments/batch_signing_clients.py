"""The load generator of the `batch-signing` experiment (not an experiment: no SPEC).

The tcpcrypt connections are opened (handshakes) on a pool of threads before the clock starts;
then ONE thread sends each connection's go byte at its scheduled time (open loop: a late
server does not slow the arrivals) and, in between, reads and checks the answers that have
come (the proof verified against the server's public key, or the `none` method's one byte).
A connection's latency runs from its scheduled arrival to its answer checked. One loop thread
rather than a thread per arrival keeps the generator's own CPU small: on a machine of two
shared cores it competes with the server for the same CPUs (it runs unpinned, the server
workers each pinned to one CPU).
"""

from __future__ import annotations

import selectors
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from experiments.batch_signing_server import GO, NO_AUTH_REPLY
from tcpcrypt.auth.batch_sign import verify_batch_signed
from tcpcrypt.auth.loopback import connect_inband
from tcpcrypt.inband import InbandTcpcryptSocket

Address = tuple[str, int]


@dataclass
class Arrivals:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def open_all(address: Address, count: int, threads: int) -> list[InbandTcpcryptSocket]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: connect_inband(address, timeout=30), range(count)))


def _answer(client: InbandTcpcryptSocket, credential: Any) -> None:
    try:
        if credential is None:
            if client.recv(1) != NO_AUTH_REPLY:
                raise ConnectionError("the server did not answer")
        else:
            verify_batch_signed(client, credential, timeout=30)
    finally:
        client.close()


def arrive(opened: list[InbandTcpcryptSocket], rate: float, credential: Any,
           give_up_s: float = 30.0) -> Arrivals:
    """Send the go bytes at `rate` per second and check every answer."""
    result = Arrivals()
    selector = selectors.DefaultSelector()
    began = time.perf_counter()
    sent = 0
    outstanding = 0
    last_due = began + (len(opened) - 1) / rate
    while sent < len(opened) or outstanding:
        now = time.perf_counter()
        while sent < len(opened) and began + sent / rate <= now:
            client, scheduled = opened[sent], began + sent / rate
            sent += 1
            try:
                client.sendall(GO)
            except OSError as error:
                result.failures.append(f"{type(error).__name__}: {error}")
                client.close()
                continue
            selector.register(client.fileno(), selectors.EVENT_READ, (client, scheduled))
            outstanding += 1
        if now > last_due + give_up_s:
            result.failures.extend(["no answer in time"] * outstanding)
            for key in list(selector.get_map().values()):
                key.data[0].close()
            break
        wait = began + sent / rate - now if sent < len(opened) else 0.5
        for key, _ in selector.select(max(0.0, wait)):
            client, scheduled = key.data
            selector.unregister(key.fd)
            outstanding -= 1
            try:
                _answer(client, credential)
            except Exception as error:
                result.failures.append(f"{type(error).__name__}: {error}")
                continue
            result.latencies.append(time.perf_counter() - scheduled)
    result.elapsed_s = time.perf_counter() - began
    selector.close()
    return result
