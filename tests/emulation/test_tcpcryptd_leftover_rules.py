"""A killed tcpcryptd's leftover rules never hand covered connections to someone else (issue 10).

After SIGKILL the daemon's redirect rules stay until `tcpcryptd --cleanup`. An unprivileged
local user who then listens on the proxy ports must receive nothing: the rules only deliver to
a socket carrying the daemon's listener mark (which only root can set), and refuse otherwise.
"""

from __future__ import annotations

import signal
import sys

from tests.emulation.netns_pair import ADDRESSES, netns_pair

PORT = 8000
SQUATTER = """
import select, socket, sys
listeners = []
for port in (7801, 7802):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
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


def test_unprivileged_user_on_proxy_ports_receives_nothing_after_sigkill() -> None:
    with netns_pair() as pair:
        pair.python("b", f"import socket; s=socket.create_server(('', {PORT})); "
                    "import time; time.sleep(60)")
        daemon = pair.daemon("a", "--ports", str(PORT))
        daemon.send_signal(signal.SIGKILL)
        daemon.communicate(timeout=10)
        squatter = pair.popen("a", ["setpriv", "--reuid=nobody", "--regid=nogroup",
                                    "--clear-groups", sys.executable, "-c", SQUATTER, "8"])
        assert squatter.stdout is not None
        assert squatter.stdout.readline().strip() == "listening", squatter.communicate()
        outgoing = pair.run("a", [sys.executable, "-c", CONNECT, ADDRESSES["b"], str(PORT)])
        incoming = pair.run("b", [sys.executable, "-c", CONNECT, ADDRESSES["a"], str(PORT)])
        squatter.send_signal(signal.SIGTERM)
        received, _ = squatter.communicate(timeout=10)
        pair.run("a", [sys.executable, "-m", "tcpcrypt.daemon", "--cleanup"])
        after_cleanup = pair.run("a", [sys.executable, "-c", CONNECT, ADDRESSES["b"], str(PORT)])
    assert "received" not in received
    assert outgoing.stdout.startswith("refused"), outgoing.stdout  # the leftover rules fail closed
    assert incoming.stdout.startswith("refused"), incoming.stdout
    assert after_cleanup.stdout.startswith("connected"), after_cleanup.stdout
