"""tcpcryptd against local users and careless supervisors (issue 10): a squatted control
socket name stops the daemon cleanly before any rule exists, and a standard error pipe that
nobody reads never stalls it."""

from __future__ import annotations

import json
import sys

from tests.emulation.netns_pair import ADDRESSES, PING_CLIENTS, netns_pair

PORT = 8000
ECHO_SERVER = f"""
import socket
server = socket.create_server(("", {PORT}), backlog=128)
while True:
    conn, _ = server.accept()
    conn.sendall(conn.recv(100))
    conn.close()
"""
SQUATTER = """
import socket
sock = socket.socket(socket.AF_UNIX)
sock.bind("\\0tcpcryptd")
sock.listen()
print("bound", flush=True)
while True:
    sock.accept()[0].close()
"""


def test_daemon_with_an_unread_stderr_pipe_keeps_serving() -> None:
    connections = 500  # about 100 KB of verbose lines: far past a pipe's 64 KiB
    with netns_pair() as pair:
        pair.python("b", ECHO_SERVER)
        pair.daemon("b", "--ports", str(PORT))
        client_daemon = pair.daemon("a", "--ports", str(PORT), "-v")  # stderr: a pipe, unread
        for _ in range(80):  # each was an uncaught RecursionError and a traceback before
            pair.run("a", [sys.executable, "-c", "import socket; s = socket.socket("
                           "socket.AF_UNIX); s.connect('\\0tcpcryptd'); s.sendall(b'[' * 3000 "
                           "+ b'\\n'); s.recv(100)"])
        result = pair.run("a", [sys.executable, "-c", PING_CLIENTS, ADDRESSES["b"],
                                str(connections), str(PORT)],
                          timeout=300)
        stats = json.loads(pair.run("a", [sys.executable, "-m", "tcpcrypt.cli", "--json",
                                          "stats"]).stdout)
        assert client_daemon.poll() is None
    assert result.stdout.split() == ["ok", str(connections)], result.stdout
    assert stats["established"] == connections


def test_squatted_control_name_stops_the_daemon_before_any_rule() -> None:
    with netns_pair() as pair:
        squatter = pair.popen("a", ["setpriv", "--reuid=nobody", "--regid=nogroup",
                                    "--clear-groups", sys.executable, "-c", SQUATTER])
        assert squatter.stdout is not None and squatter.stdout.readline() == "bound\n"
        started = pair.run("a", [sys.executable, "-m", "tcpcrypt.daemon", "--ports", str(PORT)],
                           check=False)
        rules = pair.run("a", ["iptables-save"]).stdout
        sessions = pair.run("a", [sys.executable, "-m", "tcpcrypt.cli", "sessions"], check=False)
    assert started.returncode == 2
    assert started.stderr.count("\n") == 1, started.stderr
    assert f"@tcpcryptd is taken by pid {squatter.pid} (uid 65534, not root)" in started.stderr
    assert "TCPCRYPTD" not in rules
    assert sessions.returncode != 0 and "not trusting it" in sessions.stderr
