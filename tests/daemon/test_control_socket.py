"""The control socket refuses what a local user or a squatter could abuse (issue 10).

The server runs in this process on a name of its own (abstract names belong to the network
namespace; a unique name keeps other runs apart); unprivileged clients and squatters are
separate processes running as `nobody`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tcpcrypt.control import DaemonUnavailable, control_address, request
from tcpcrypt.daemon.control_server import MAX_CLIENTS, MAX_REQUEST, ControlServer
from tcpcrypt.daemon.sessions import SessionTable
from tcpcrypt.daemon.stats import Stats

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs clients as another user")
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
RAW_REQUEST = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect("\\0" + sys.argv[1])
sock.sendall(sys.argv[2].encode() + b"\\n")
print(sock.makefile().readline(), end="")
"""


class Running:
    """A ControlServer on its own event loop thread; what its loop reported as unhandled."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sessions = SessionTable()
        self.server = ControlServer(self.sessions, Stats(), {"pid": os.getpid()})
        self.unhandled: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda _loop, context: self.unhandled.append(context))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Running:
        self.server.bind(self.name)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def running() -> Iterator[Running]:
    with Running(f"tcpcryptd-test-{os.getpid()}-{threading.get_ident()}") as server:
        yield server


def raw(name: str, line: bytes) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(control_address(name))
        sock.sendall(line + b"\n")
        answer: dict[str, Any] = json.loads(sock.makefile("rb").readline())
        return answer


def as_nobody(name: str, message: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run([*NOBODY, sys.executable, "-c", RAW_REQUEST, name,
                             json.dumps(message)], capture_output=True, text=True, timeout=30,
                            check=True)
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_deeply_nested_request_gets_an_error_and_nothing_escapes(running: Running) -> None:
    for _ in range(100):  # before: an uncaught RecursionError (and a traceback) per request
        answer = raw(running.name, b"[" * 3000)
        assert answer["ok"] is False and "JSON" in answer["error"]
    assert request({"op": "stats"}, running.name)["ok"]
    assert running.unhandled == []


def test_overlong_line_gets_an_error_naming_the_limit(running: Running) -> None:
    answer = raw(running.name, b'{"op": "stats", "x": "' + b"a" * (2 * MAX_REQUEST) + b'"}')
    assert answer["ok"] is False and str(MAX_REQUEST) in answer["error"]
    assert running.unhandled == []


def test_clients_beyond_the_bound_are_turned_away_and_service_resumes(running: Running) -> None:
    idle = []
    for _ in range(MAX_CLIENTS):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(control_address(running.name))
        idle.append(sock)
    extra = socket.socket(socket.AF_UNIX)
    extra.settimeout(10)
    extra.connect(control_address(running.name))
    turned_away = extra.makefile("rb").read()  # answered and closed at once: the bound holds
    extra.close()
    for sock in idle:
        sock.close()
    assert json.loads(turned_away)["error"] == "too many control clients"
    for _ in range(100):  # the server notices the closed clients as its loop gets to them
        try:
            assert request({"op": "stats"}, running.name)["ok"]
            break
        except ValueError:
            time.sleep(0.05)
    else:
        raise AssertionError("the control socket did not serve again")


def test_unprivileged_user_cannot_list_sessions_or_stats(running: Running) -> None:
    running.sessions.open("A", ("10.0.0.1", 40000), ("10.0.0.2", 80),
                          ("10.0.0.1", 40000), ("10.0.0.2", 80))
    for op in ("sessions", "stats"):
        answer = as_nobody(running.name, {"op": op})
        assert answer["ok"] is False and "root" in answer["error"]
    assert len(request({"op": "sessions"}, running.name)["sessions"]) == 1  # root may


def test_unprivileged_user_may_look_up_only_its_own_sockets(running: Running) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    root_client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    local, remote = root_client.getsockname(), root_client.getpeername()
    running.sessions.open("A", local, remote, local, remote)
    others = as_nobody(running.name, {"op": "lookup", "local": f"{local[0]}:{local[1]}",
                                      "remote": f"{remote[0]}:{remote[1]}"})
    own = subprocess.run([*NOBODY, sys.executable, "-c", OWN_LOOKUP, running.name, str(port)],
                         capture_output=True, text=True, timeout=30, check=True)
    for sock in (root_client, accepted, listener):
        sock.close()
    assert others["ok"] is False and "uid" in others["error"]
    assert json.loads(own.stdout)["ok"] is True


OWN_LOOKUP = """
import json, socket, sys
conn = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
local, remote = conn.getsockname(), conn.getpeername()
sock = socket.socket(socket.AF_UNIX)
sock.connect("\\0" + sys.argv[1])
message = {"op": "lookup", "local": "%s:%d" % local, "remote": "%s:%d" % remote}
sock.sendall(json.dumps(message).encode() + b"\\n")
print(sock.makefile().readline(), end="")
"""
SQUATTER = """
import socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.bind("\\0" + sys.argv[1])
sock.listen()
print("bound", flush=True)
while True:
    conn, _ = sock.accept()
    try:
        conn.recv(1000)
        conn.sendall(b'{"ok": true, "session": {"encrypted": true, "session_id": "2100"}}\\n')
    except OSError:
        pass
    conn.close()
"""


def test_clients_and_the_daemon_refuse_a_squatted_name() -> None:
    name = f"tcpcryptd-squat-{os.getpid()}"
    squatter = subprocess.Popen([*NOBODY, sys.executable, "-c", SQUATTER, name],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert squatter.stdout is not None and squatter.stdout.readline() == "bound\n"
        with pytest.raises(DaemonUnavailable, match="uid"):
            request({"op": "stats"}, name)
        server = ControlServer(SessionTable(), Stats(), {})
        with pytest.raises(OSError, match=f"@{name} is taken by pid {squatter.pid}"):
            server.bind(name)
    finally:
        squatter.kill()
        squatter.wait()
