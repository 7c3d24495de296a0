"""Per-connection CPU of real TCP and TLS (OpenSSL via Python's ssl) over loopback.

A server thread accepts, reads one request line, answers, closes (the `rr_server` loop); the
client thread connects, sends, reads to the end, closes. Each thread reads its own CPU clock
(`time.thread_time_ns`) and its own kernel time (`getrusage(RUSAGE_THREAD).ru_stime`), so the
figures split by side. Kernel TCP work done in softirq context is charged to whichever thread
was running; over loopback that is one of the two, so the pair's total is complete.
"""

from __future__ import annotations

import resource
import socket
import ssl
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from testbed.apps.protocols import PROTOCOLS, client_context, server_context
from testbed.apps.rr_server import answer_one

REQUEST = b"GET / HTTP/1.0\r\n\r\n\n"


@dataclass(frozen=True)
class SideCost:
    cpu_us: float  # thread CPU per connection
    kernel_us: float  # of which in the kernel (clock-tick resolution, averaged)


def _thread_clocks() -> tuple[int, float]:
    return time.thread_time_ns(), resource.getrusage(resource.RUSAGE_THREAD).ru_stime


def _serve(listener: socket.socket, context: ssl.SSLContext | None, count: int, skip: int,
           out: list[SideCost]) -> None:
    """Serve `skip` + `count` connections; the clocks cover the last `count`."""
    answer = b"x" * 100
    cpu0, sys0 = _thread_clocks()
    for index in range(skip + count):
        if index == skip:
            cpu0, sys0 = _thread_clocks()
        connection, _ = listener.accept()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = context.wrap_socket(connection, server_side=True) if context else connection
        with stream:
            answer_one(stream, answer)
    cpu1, sys1 = _thread_clocks()
    out.append(SideCost((cpu1 - cpu0) / count / 1000, (sys1 - sys0) / count * 1e6))


def connection_costs(protocol: str, count: int, cert: Path, key: Path) -> tuple[SideCost,
                                                                                SideCost]:
    """(server, client) CPU per connection of `protocol` (tcp or a TLS label) over loopback."""
    spec = PROTOCOLS[protocol]
    server_ctx = server_context(spec.tls, cert, key) if spec.tls else None
    client_ctx = client_context(spec.tls) if spec.tls else None
    if server_ctx is not None and not spec.resumed:
        server_ctx.options |= ssl.OP_NO_TICKET  # full handshakes: nothing to resume from
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    port = listener.getsockname()[1]
    warmup = 1 if spec.resumed else 0
    served: list[SideCost] = []
    thread = threading.Thread(target=_serve, args=(listener, server_ctx, count, warmup, served))
    thread.start()
    session = None
    resumed = 0
    cpu0, sys0 = _thread_clocks()
    try:
        for index in range(count + warmup):
            if index == warmup and warmup:
                cpu0, sys0 = _thread_clocks()  # the warm-up connection is not counted
            raw = socket.create_connection(("127.0.0.1", port))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stream = client_ctx.wrap_socket(raw, session=session) if client_ctx else raw
            with stream:
                stream.sendall(REQUEST)
                while stream.recv(65536):
                    pass
                if isinstance(stream, ssl.SSLSocket):
                    resumed += int(index >= warmup and bool(stream.session_reused))
                    if spec.resumed:
                        session = stream.session
        cpu1, sys1 = _thread_clocks()
    finally:
        thread.join(timeout=30)
        listener.close()
    if spec.resumed and resumed < count:
        raise RuntimeError(f"{protocol}: only {resumed} of {count} connections resumed")
    client = SideCost((cpu1 - cpu0) / count / 1000, (sys1 - sys0) / count * 1e6)
    return served[0], client


def median_costs(protocol: str, count: int, rounds: int, cert: Path,
                 key: Path) -> tuple[SideCost, SideCost]:
    """The median over `rounds` of `connection_costs` (the machine is shared: noise)."""
    measured = [connection_costs(protocol, count, cert, key) for _ in range(rounds)]

    def median(side: int) -> SideCost:
        return SideCost(statistics.median(m[side].cpu_us for m in measured),
                        statistics.median(m[side].kernel_us for m in measured))
    return median(0), median(1)
