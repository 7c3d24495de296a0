"""The load generator times its client's TLS handshake CPU in two parts: up to sending its
first flight (the ClientHello), and the rest, after the server's flight."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

from testbed.apps.loadgen import run
from testbed.apps.protocols import server_context
from testbed.apps.rr_server import answer_one
from testbed.apps.tls_material import write_self_signed


def _serve_tls(listener: socket.socket, context: ssl.SSLContext, count: int) -> None:
    for _ in range(count):
        connection, _ = listener.accept()
        with context.wrap_socket(connection, server_side=True) as stream:
            answer_one(stream, b"x" * 10)


def test_each_tls_connection_reports_its_first_flight_cpu_within_its_handshake_cpu(
        tmp_path: Path) -> None:
    cert, key = write_self_signed(tmp_path)
    listener = socket.create_server(("127.0.0.1", 0))
    server = threading.Thread(target=_serve_tls,
                              args=(listener, server_context("tls13", cert, key), 3),
                              daemon=True)
    server.start()
    report = run("127.0.0.1", listener.getsockname()[1], "tls13", 3)
    server.join(timeout=10)
    listener.close()
    samples = report["samples"]
    assert isinstance(samples, list) and len(samples) == 3
    for sample in samples:
        total, first = sample["handshake_cpu_us"], sample["handshake_first_flight_cpu_us"]
        rest = sample["handshake_after_first_flight_cpu_us"]
        assert total > 0 and first >= 0 and rest >= 0
        assert first + rest <= total


def test_a_tcp_connection_has_no_handshake_cpu_in_either_part() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            answer_one(connection, b"x")

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    report = run("127.0.0.1", listener.getsockname()[1], "tcp", 1)
    server.join(timeout=10)
    listener.close()
    samples = report["samples"]
    assert isinstance(samples, list)
    assert samples[0]["handshake_cpu_us"] == 0
    assert samples[0]["handshake_first_flight_cpu_us"] == 0
    assert samples[0]["handshake_after_first_flight_cpu_us"] == 0
