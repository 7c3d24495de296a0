"""The drafts' profile between two of this project's endpoints, through the kernel program:
kind-253 ENO on SYN and SYN-ACK, then the drafts' key exchange; and a drafts A against an
RFC-profile listener falls back (the listener looks for kind 69 only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from netns_pair import ADDRESSES, netns_pair  # noqa: E402

PORT = 7788
CLIENT = """
import sys
from tcpcrypt.drafts.endpoint import DraftFallback, connect
from tcpcrypt.kernel.api import KernelEno
with KernelEno() as kernel:
    try:
        with connect((sys.argv[1], int(sys.argv[2])), kernel, teps=(0x22, 0x21)) as session:
            session.sendall(b"ping over the drafts")
            print(session.session_id.hex(), session.recv_exactly(20).decode(), flush=True)
    except DraftFallback as error:
        print("fallback", error.reason, flush=True)
"""
RFC_LISTENER = """
import socket, sys
from tcpcrypt.kernel.api import KernelEno
with KernelEno() as kernel:
    listener = socket.socket()
    listener.bind(("0.0.0.0", int(sys.argv[1])))
    kernel.listen(listener, [0x21, 0x22])
    listener.listen()
    print("listening", flush=True)
    conn, _ = listener.accept()
    print(kernel.negotiation(conn).reason, flush=True)
    conn.close()
"""


def test_two_draft_endpoints_negotiate_kind_253_and_agree_on_a_session_id() -> None:
    with netns_pair() as pair:
        server = pair.popen("b", [sys.executable, "-m", "tcpcrypt.drafts", "serve", str(PORT),
                                  "--length", "20"], stdin=subprocess.DEVNULL)
        assert server.stdout is not None and "listening" in server.stdout.readline()
        client = pair.run("a", [sys.executable, "-c", CLIENT, ADDRESSES["b"], str(PORT)])
        session_id, reply = client.stdout.split()[0], " ".join(client.stdout.split()[1:])
        served = server.stdout.readline()
        assert reply == "ping over the drafts"[::-1]
        assert f'"session_id": "{session_id}"' in served
        assert session_id.startswith("21")  # B's preference (0x21) over A's order


def test_draft_a_against_an_rfc_listener_falls_back_at_both_ends() -> None:
    with netns_pair() as pair:
        server = pair.popen("b", [sys.executable, "-c", RFC_LISTENER, str(PORT)],
                            stdin=subprocess.DEVNULL)
        assert server.stdout is not None and "listening" in server.stdout.readline()
        client = pair.run("a", [sys.executable, "-c", CLIENT, ADDRESSES["b"], str(PORT)])
        assert client.stdout.strip() == "fallback no-eno-synack"
        assert server.stdout.readline().strip() == "no-eno-syn"
