"""The connection load generator: open, send a small request, read the response, close.

For each connection it records the time until connect() returns, until the application can
send protected data (the TLS handshake done; equal to connect for TCP) and until the first
response byte. With a transparent daemon connect() returns when the local daemon accepts, so
the comparable figure across protocols is time to first response byte, reported alongside.
A resumed protocol makes one unmeasured connection first, then resumes from it each time.
A `tcpcrypt-*+METHOD` protocol runs the authentication method over the session before the
request (ready = authenticated); a connection whose authentication fails is a sample holding
only `auth_error`, never a timed success.
Prints one JSON object. Run inside an emulated host:
python -m testbed.apps.loadgen --host IP --port P --protocol tls13-resumed --connections N
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testbed.apps.protocols import PROTOCOLS, client_context, library_context

REQUEST = b"GET / HTTP/1.0\r\n\r\n\n"


def one_connection(
    host: str, port: int, context: ssl.SSLContext | None, session: ssl.SSLSession | None
) -> tuple[dict[str, float], ssl.SSLSession | None]:
    start = time.perf_counter()
    raw = socket.create_connection((host, port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connected = time.perf_counter()
    handshake_cpu = first_flight_cpu = after_first_cpu = 0
    stream: socket.socket = raw
    if context is not None:
        tls = context.wrap_socket(raw, session=session, do_handshake_on_connect=False)
        handshake_cpu, first_flight_cpu, after_first_cpu = handshake_apart(tls, 10.0)
        stream = tls
    ready = time.perf_counter()
    stream.sendall(REQUEST)
    first = stream.recv(65536)
    first_byte = time.perf_counter()
    while stream.recv(65536):
        pass
    reused = bool(getattr(stream, "session_reused", False))
    new_session = stream.session if isinstance(stream, ssl.SSLSocket) else None
    stream.close()
    if not first:
        raise ConnectionError("no response")
    timings = {
        "connect_ms": (connected - start) * 1000,
        "ready_ms": (ready - start) * 1000,
        "first_byte_ms": (first_byte - start) * 1000,
        "resumed": float(reused),
        "done_s": time.time(),  # wall clock, comparable across generators: rates in steady state
        # the client's CPU inside the TLS handshake call, all of it (first flight to last)
        "handshake_cpu_us": handshake_cpu / 1000,
        # of which up to sending its first flight (the ClientHello and its key share): work a
        # server deferring accept() until that flight arrives never waits for; the rest
        # (after the server's flight: verify, key agreement, Finished) a blocking server does
        "handshake_first_flight_cpu_us": first_flight_cpu / 1000,
        "handshake_after_first_flight_cpu_us": after_first_cpu / 1000,
    }
    return timings, new_session


def handshake_apart(tls: ssl.SSLSocket, timeout_s: float) -> tuple[int, int, int]:
    """Complete `tls`'s client handshake; returns this thread's CPU (ns) over all of it, over
    its first step and over the rest, each read from the clock apart: non-blocking, the first
    `do_handshake()` builds and sends the ClientHello and stops for the server's answer
    (`SSLWantReadError`); the rest waits for the socket and finishes. The socket's timeout is
    restored after."""
    previous = tls.gettimeout()
    tls.setblocking(False)
    deadline = time.monotonic() + timeout_s
    cpu0 = time.thread_time_ns()
    first: int | None = None
    rest_from = cpu0
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                reading = True
            except ssl.SSLWantWriteError:
                reading = False
            if first is None:
                first = time.thread_time_ns() - cpu0
                rest_from = time.thread_time_ns()
            left = deadline - time.monotonic()
            ready = select.select([tls] if reading else [], [] if reading else [tls], [], left
                                  ) if left > 0 else ([], [], [])
            if not any(ready):
                raise TimeoutError("TLS handshake timed out")
        end = time.thread_time_ns()
    finally:
        tls.settimeout(previous)
    if first is None:  # done in one step (no server answer awaited): all of it is first
        return end - cpu0, end - cpu0, 0
    return end - cpu0, first, end - rest_from


def one_library_connection(host: str, port: int, context: Any,
                           authenticate: Callable[[Any], bytes] | None = None
                           ) -> dict[str, float | str]:
    """One connection through the in-process tcpcrypt library (TCP-ENO in the kernel):
    connect() returns once the key exchange is over; then `authenticate` (a
    `session_auth.ClientAuth`), if any, and ready is when it returned."""
    import tcpcrypt
    from tcpcrypt.auth import AuthError

    start = time.perf_counter()
    stream = tcpcrypt.create_connection((host, port), timeout=10, context=context)
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connected = time.perf_counter()
    authenticated: dict[str, float] = {}
    if authenticate is not None:
        try:
            session_id = authenticate(stream)
        except AuthError as error:  # the stream is closed; no request, no timings
            return {"auth_error": str(error)}
        authenticated["authenticated"] = float(session_id == stream.getsessid())
    ready = time.perf_counter()
    stream.sendall(REQUEST)
    first = stream.recv(65536)
    first_byte = time.perf_counter()
    while stream.recv(65536):
        pass
    stream.close()
    if not first:
        raise ConnectionError("no response")
    return {"connect_ms": (connected - start) * 1000, "ready_ms": (ready - start) * 1000,
            "first_byte_ms": (first_byte - start) * 1000, "resumed": float(stream.resumed),
            "encrypted": float(stream.encrypted), "done_s": time.time(), **authenticated}


def run(host: str, port: int, protocol: str, connections: int,
        trusted_key: Path | None = None,
        ready: Callable[[], None] | None = None) -> dict[str, object]:
    """`connections` connections one after another; `ready`, if given, is called once
    everything is imported and set up, before the first connection. The report's `cpu_s` is
    this process's CPU time (user and system, every thread) over the measured connections:
    the load generator's own cost per connection, what the simulation charges its clients."""
    spec = PROTOCOLS[protocol]
    if spec.library_suite:
        authenticate = None
        if spec.auth:
            from testbed.apps.session_auth import ClientAuth

            authenticate = ClientAuth(spec.auth, trusted_key)
        library = library_context(spec.library_suite, spec.resumed)
        import tcpcrypt  # noqa: F401 - imported before `ready`, not during the first connection

        if ready is not None:
            ready()
        if spec.resumed:  # one unmeasured connection leaves a session to resume
            one_library_connection(host, port, library, authenticate)
        cpu0 = time.process_time()
        encrypted = [one_library_connection(host, port, library, authenticate)
                     for _ in range(connections)]
        return {"protocol": protocol, "samples": encrypted,
                "cpu_s": time.process_time() - cpu0}
    context = client_context(spec.tls) if spec.tls else None
    if ready is not None:
        ready()
    session = None
    if spec.resumed:  # one unmeasured connection leaves a session to resume (TLS or tcpcrypt)
        _, session = one_connection(host, port, context, None)
    cpu0 = time.process_time()
    samples = []
    for _ in range(connections):
        timings, new_session = one_connection(host, port, context, session)
        samples.append(timings)
        if spec.resumed and new_session is not None:
            session = new_session
    return {"protocol": protocol, "samples": samples, "cpu_s": time.process_time() - cpu0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="tcp")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--trusted-key", type=Path,
                        help="a +batch-sign protocol: the server's public key (PEM)")
    parser.add_argument("--wait-for-go", action="store_true",
                        help='print "ready" once set up, then wait for a line on stdin')
    args = parser.parse_args(argv)
    if PROTOCOLS[args.protocol].auth == "batch-sign" and not args.trusted_key:
        parser.error(f"--protocol {args.protocol} needs --trusted-key")
    print(json.dumps(run(args.host, args.port, args.protocol, args.connections,
                         args.trusted_key, _wait_for_go if args.wait_for_go else None)))
    return 0


def _wait_for_go() -> None:
    """Say "ready" on standard output, then wait for a line on standard input: a caller
    starting several generators lets them all finish starting before any connects."""
    print("ready", flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    sys.exit(main())
