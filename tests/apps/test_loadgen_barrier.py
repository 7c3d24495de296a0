"""The load generator's start barrier: set up first, then told to go; every connection stamps
its end on the wall clock (rates in steady state, comparable across generators)."""

from __future__ import annotations

import socket
import threading
import time

from testbed.apps.loadgen import run
from testbed.apps.rr_server import answer_one


def _serve(listener: socket.socket, count: int, accepted_at: list[float]) -> None:
    for _ in range(count):
        connection, _ = listener.accept()
        accepted_at.append(time.time())
        with connection:
            answer_one(connection, b"x" * 10)


def test_a_generator_is_ready_once_before_its_first_connection_and_stamps_each_end() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted_at: list[float] = []
    server = threading.Thread(target=_serve, args=(listener, 3, accepted_at), daemon=True)
    server.start()
    ready_at: list[float] = []
    report = run("127.0.0.1", listener.getsockname()[1], "tcp", 3,
                 ready=lambda: ready_at.append(time.time()))
    server.join(timeout=10)
    listener.close()
    samples = report["samples"]
    assert isinstance(samples, list) and len(samples) == 3
    ends = [sample["done_s"] for sample in samples]
    assert len(ready_at) == 1 and ready_at[0] <= accepted_at[0]
    assert ends == sorted(ends) and ends[0] >= accepted_at[0]
