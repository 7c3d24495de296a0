"""A killed tcpcryptd's leftover rules never hand covered connections to someone else (issue 10).

After SIGKILL the daemon's redirect rules stay until `tcpcryptd --cleanup`. Two layers keep an
unprivileged local user from receiving those connections: the proxy ports are privileged (the
user cannot bind them), and even where that rule is lifted (ip_unprivileged_port_start lowered,
as container runtimes do) the guard rule delivers only to a transparent socket, which the user
cannot make; the leftover rules refuse covered connections instead (fail closed).
"""

from __future__ import annotations

import signal
import sys

from tests.emulation.netns_pair import ADDRESSES, NetnsPair, netns_pair

PORT = 8000
PROXY_PORTS = (1008, 1009)
SQUATTER = """
import select, socket, sys
listeners = []
for port in (1008, 1009):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("0.0.0.0", port))
    except PermissionError:
        print("cannot bind", port, flush=True)
        sys.exit()
    sock.listen()
    listeners.append(sock)
print("listening", flush=True)
ready, _, _ = select.select(listeners, [], [], float(sys.argv[1]))
for sock in ready:
    conn, peer = sock.accept()
    print("received", sock.getsockname()[1], peer, conn.recv(100), flush=True)
"""
CONNECT = """
import socket, sys
try:
    sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
    sock.sendall(b"secret request")
    print("connected", flush=True)
except OSError as error:
    print("refused", error, flush=True)
"""


def _kill_daemon_and_squat(pair: NetnsPair, lower_port_floor: bool) -> tuple[str, str, str]:
    """SIGKILL a's daemon; an unprivileged squatter on the proxy ports (any user may bind any
    port once `lower_port_floor`); both directions tried. Returns what the squatter saw and the
    two connection attempts' outcomes."""
    pair.python("b", f"import socket, time; s = socket.create_server(('', {PORT})); "
                "time.sleep(60)")
    daemon = pair.daemon("a", "--ports", str(PORT))
    daemon.send_signal(signal.SIGKILL)
    daemon.communicate(timeout=10)
    if lower_port_floor:
        pair.run("a", ["sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0"])
    squatter = pair.popen("a", ["setpriv", "--reuid=nobody", "--regid=nogroup",
                                "--clear-groups", sys.executable, "-c", SQUATTER, "8"])
    assert squatter.stdout is not None
    first = squatter.stdout.readline()
    outgoing = pair.run("a", [sys.executable, "-c", CONNECT, ADDRESSES["b"], str(PORT)]).stdout
    incoming = pair.run("b", [sys.executable, "-c", CONNECT, ADDRESSES["a"], str(PORT)]).stdout
    squatter.send_signal(signal.SIGTERM)
    rest, _ = squatter.communicate(timeout=10)
    return first + rest, outgoing, incoming


def test_unprivileged_user_cannot_bind_the_proxy_ports_and_leftover_rules_refuse() -> None:
    with netns_pair() as pair:
        squatter, outgoing, incoming = _kill_daemon_and_squat(pair, lower_port_floor=False)
        pair.run("a", [sys.executable, "-m", "tcpcrypt.daemon", "--cleanup"])
        after_cleanup = pair.run("a", [sys.executable, "-c", CONNECT, ADDRESSES["b"], str(PORT)])
    assert squatter.startswith(f"cannot bind {PROXY_PORTS[0]}"), squatter
    assert outgoing.startswith("refused"), outgoing  # the leftover rules fail closed
    assert incoming.startswith("refused"), incoming
    assert after_cleanup.stdout.startswith("connected"), after_cleanup.stdout


def test_squatter_on_lowered_privileged_ports_still_receives_nothing() -> None:
    with netns_pair() as pair:
        squatter, outgoing, incoming = _kill_daemon_and_squat(pair, lower_port_floor=True)
    assert squatter.startswith("listening"), squatter
    assert "received" not in squatter  # before the guard: b'secret request', in plaintext
    assert outgoing.startswith("refused"), outgoing
    assert incoming.startswith("refused"), incoming


def test_daemon_refuses_proxy_ports_any_user_may_bind() -> None:
    with netns_pair() as pair:
        pair.run("a", ["sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0"])
        started = pair.run("a", [sys.executable, "-m", "tcpcrypt.daemon", "--ports", str(PORT)],
                           check=False)
        rules = pair.run("a", ["iptables-save"]).stdout
    assert started.returncode == 2
    assert started.stderr.count("\n") == 1 and "must be privileged" in started.stderr
    assert "TCPCRYPTD" not in rules
