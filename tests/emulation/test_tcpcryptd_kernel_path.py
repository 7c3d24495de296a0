"""tcpcryptd on the kernel's TCP-ENO (issue 8, sections 3 and 4), in network namespaces.

A library endpoint and a daemon endpoint interoperate in both roles with the same session ID
at both ends. The review's fail-open findings against the NFQUEUE daemon cannot happen: two
connections from one source port to two covered ports are both encrypted; a daemon that
stalls for longer than the old 10 s expiry still completes tcpcrypt; a SYN flood never turns a
negotiated connection into plain relay; spoofed segments during the handshake do not change
it. "Agree" below means: either both ends encrypted with the same session ID, or both fell
back; never one end encrypted and the other relaying plain bytes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from tcpcrypt.kernel import loader
from tests.emulation.netns_pair import ADDRESSES, NetnsPair, netns_pair

PORTS = (8000, 8001)
DAEMON_ECHO = """
import json, socket, sys, threading
from tcpcrypt.control import getsessid
def serve(port):
    server = socket.create_server(("", port), backlog=128)
    while True:
        conn, _ = server.accept()
        data = conn.recv(100)
        conn.sendall(data)
        conn.recv(100)  # until the client closes: the daemon's record is live till then
        conn.close()
for port in map(int, sys.argv[1:]):
    threading.Thread(target=serve, args=(port,), daemon=True).start()
print("serving", flush=True)
threading.Event().wait()
"""
LIBRARY_CLIENT = """
import json, socket, sys, tcpcrypt
host, sport, ports = sys.argv[1], int(sys.argv[2]), [int(p) for p in sys.argv[3:]]
conns, report = [], []
for port in ports:  # all open at once, from one source port when sport is given
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sport:
        sock.bind(("", sport))
    sock.settimeout(30)
    conn = tcpcrypt.wrap_socket(sock)
    conn.connect((host, port))
    conns.append((conn, "%s:%d" % sock.getsockname()))
for (conn, local), port in zip(conns, ports):
    conn.sendall(b"ping %d" % port)
    echo = conn.recv(100)
    sid = conn.getsessid()
    report.append({"port": port, "echo": echo.decode(), "local": local,
                   "sid": sid.hex() if sid else None})
print(json.dumps(report), flush=True)
"""


def sessions(pair: NetnsPair, host: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(pair.run(
        host, [sys.executable, "-m", "tcpcrypt.cli", "--json", "sessions"]).stdout)
    return found


def library_client(pair: NetnsPair, *ports: int, sport: int = 0) -> list[dict[str, Any]]:
    done = pair.run("a", [sys.executable, "-c", LIBRARY_CLIENT, ADDRESSES["b"], str(sport),
                          *map(str, ports)], timeout=120)
    report: list[dict[str, Any]] = json.loads(done.stdout)
    return report


def test_library_client_and_daemon_server_share_the_session_id() -> None:
    with netns_pair() as pair:
        pair.daemon("b", "--ports", str(PORTS[0]))
        server = pair.popen("b", [sys.executable, "-c", DAEMON_ECHO, str(PORTS[0])])
        assert server.stdout is not None and server.stdout.readline() == "serving\n"
        report = library_client(pair, PORTS[0])
        records = sessions(pair, "b")
    assert report[0]["echo"] == f"ping {PORTS[0]}"
    assert report[0]["sid"] and records[-1]["encrypted"]
    assert records[-1]["session_id"] == report[0]["sid"]


LIBRARY_SERVER = """
import json, socket, sys, tcpcrypt
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("", int(sys.argv[1])))
server = tcpcrypt.wrap_socket(listener, server_side=True)
server.listen()
print("listening", flush=True)
conn, _ = server.accept()
conn.sendall(conn.recv(100))
sid = conn.getsessid()
print(json.dumps({"sid": sid.hex() if sid else None}), flush=True)
"""
DAEMON_CLIENT = """
import socket, sys
from tcpcrypt.control import getsessid
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
sock.sendall(b"ping")
assert sock.recv(100) == b"ping"
sid = getsessid(sock)
print(sid.hex() if sid else None, flush=True)
"""


def test_daemon_client_and_library_server_share_the_session_id() -> None:
    with netns_pair() as pair:
        pair.daemon("a", "--ports", str(PORTS[0]))
        server = pair.popen("b", [sys.executable, "-c", LIBRARY_SERVER, str(PORTS[0])])
        assert server.stdout is not None and server.stdout.readline() == "listening\n"
        client_sid = pair.run("a", [sys.executable, "-c", DAEMON_CLIENT, ADDRESSES["b"],
                                    str(PORTS[0])]).stdout.strip()
        server_sid = json.loads(server.communicate(timeout=10)[0])["sid"]
    assert client_sid not in ("", "None")
    assert client_sid == server_sid


def test_two_connections_from_one_source_port_to_two_covered_ports_are_both_encrypted() -> None:
    """The NFQUEUE daemon keyed B's state by the peer's address and port: one of these two
    was relayed in the clear."""
    with netns_pair() as pair:
        pair.daemon("b", "--ports", ",".join(map(str, PORTS)))
        server = pair.popen("b", [sys.executable, "-c", DAEMON_ECHO, *map(str, PORTS)])
        assert server.stdout is not None and server.stdout.readline() == "serving\n"
        report = library_client(pair, *PORTS, sport=41234)
        records = sessions(pair, "b")
    assert [entry["echo"] for entry in report] == [f"ping {port}" for port in PORTS]
    by_port = {int(r["wire_local"].rsplit(":", 1)[1]): r for r in records}
    for entry in report:
        record = by_port[entry["port"]]
        assert record["wire_remote"] == f"{ADDRESSES['a']}:41234"
        assert entry["sid"] and record["encrypted"] and record["session_id"] == entry["sid"]
    assert report[0]["sid"] != report[1]["sid"]


def test_a_daemon_stalled_past_the_old_expiry_still_completes_tcpcrypt() -> None:
    """The NFQUEUE daemon forgot handshake state after 10 s, claimed or not: a lagging event
    loop turned a negotiated connection into a plain relay. The kernel keeps the negotiation
    with the socket for as long as the socket lives."""
    with netns_pair() as pair:
        daemon = pair.daemon("b", "--ports", str(PORTS[0]))
        server = pair.popen("b", [sys.executable, "-c", DAEMON_ECHO, str(PORTS[0])])
        assert server.stdout is not None and server.stdout.readline() == "serving\n"
        daemon.send_signal(signal.SIGSTOP)
        client = pair.popen("a", [sys.executable, "-c", LIBRARY_CLIENT, ADDRESSES["b"], "0",
                                  str(PORTS[0])])
        time.sleep(11)  # the kernel completed the TCP handshake with ENO; the daemon sleeps
        daemon.send_signal(signal.SIGCONT)
        out, error = client.communicate(timeout=60)
        records = sessions(pair, "b")
    report = json.loads(out) if out else error
    assert report[0]["echo"] == f"ping {PORTS[0]}", report
    assert report[0]["sid"] and records[-1]["encrypted"]
    assert records[-1]["session_id"] == report[0]["sid"]


SYN_FLOOD = """
import os, random, socket, struct, sys, time
from packets.ipv4 import PROTOCOL_TCP, IPv4Header
from packets.tcp import SYN, build_packet
destination, port, seconds = socket.inet_aton(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sent, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    source = bytes((10, 231, 0, random.randrange(10, 250)))
    header = IPv4Header(20, 0, 0, random.randrange(65536), 0x4000, 64, PROTOCOL_TCP, 0,
                        source, destination, b"")
    packet = build_packet(header, src_port=random.randrange(1024, 65535), dst_port=port,
                          seq=random.randrange(1 << 32), ack=0, flags=SYN, window=65535,
                          options=[])
    sock.sendto(packet, (sys.argv[1], 0))
    sent += 1
print("sent", sent, flush=True)
"""


def test_a_syn_flood_never_turns_a_negotiated_connection_into_plain_relay() -> None:
    """The NFQUEUE daemon's queue failed open under a flood: handshake packets passed without
    their option. Here flooded SYNs get syncookies (no ENO, both ends fall back) or a full
    negotiation: the two ends agree on every connection."""
    with netns_pair() as pair:
        pair.run("b", ["sysctl", "-qw", "net.ipv4.tcp_max_syn_backlog=128"])
        pair.daemon("b", "--ports", str(PORTS[0]))
        server = pair.popen("b", [sys.executable, "-c", DAEMON_ECHO, str(PORTS[0])])
        assert server.stdout is not None and server.stdout.readline() == "serving\n"
        flood = pair.popen("a", [sys.executable, "-c", SYN_FLOOD, ADDRESSES["b"],
                                 str(PORTS[0]), "6"])
        time.sleep(0.5)
        reports = [library_client(pair, PORTS[0])[0] for _ in range(10)]
        flooded = flood.communicate(timeout=30)[0]
        records = {r["wire_remote"]: r for r in sessions(pair, "b")}
    assert int(flooded.split()[1]) > 1000, flooded
    for report in reports:
        record = records[report["local"]]
        assert report["echo"] == f"ping {PORTS[0]}"
        if report["sid"]:
            assert record["encrypted"] and record["session_id"] == report["sid"]
        else:
            assert record["state"] == "fallback" and not record["encrypted"], record


SLOW_CLIENT = """
import json, socket, sys
from tcpcrypt.library.context import TcpcryptContext
from tcpcrypt.library.sockets import TcpcryptSocket
host, port, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
context = TcpcryptContext()
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("", sport))
sock.settimeout(30)
connection = context.prepare_active(sock, (host, port))
sock.connect((host, port))
context.after_connect(sock, connection)
print("connected", flush=True)
sys.stdin.readline()  # Init1 only now: the handshake is open at B until then
conn = TcpcryptSocket(context, sock, server_side=False, connection=connection)
conn._handshake()
conn.sendall(b"ping")
echo = conn.recv(100)
sid = conn.getsessid()
print(json.dumps({"echo": echo.decode(), "sid": sid.hex() if sid else None}), flush=True)
"""
SPOOFER = """
import random, socket, sys
from packets.ipv4 import PROTOCOL_TCP, IPv4Header
from packets.tcp import ACK, PSH, SYN, build_packet
source, sport, destination, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, 0x5)  # not held back like A's own ACK
for flags, payload in ((ACK, b""), (ACK | PSH, b"plain request"), (SYN, b""), (ACK, b"")):
    header = IPv4Header(20, 0, 0, random.randrange(65536), 0x4000, 64, PROTOCOL_TCP, 0,
                        socket.inet_aton(source), socket.inet_aton(destination), b"")
    packet = build_packet(header, src_port=sport, dst_port=dport, seq=random.randrange(1 << 32),
                          ack=random.randrange(1 << 32) if flags & ACK else 0, flags=flags,
                          window=65535, options=[], payload=payload)
    sock.sendto(packet, (destination, 0))
print("spoofed 4", flush=True)
"""


def test_spoofed_segments_during_the_handshake_do_not_change_the_negotiation() -> None:
    """The NFQUEUE daemon took any non-SYN segment from the peer's address and port (or a
    spoofed SYN) as the handshake's next step: an off-path attacker could make B fall back
    after A saw ENO succeed. Here A's completing ACK is held back while spoofed segments
    without ENO (wrong sequence numbers) arrive at B; the connection still ends encrypted."""
    sport = 42345
    hold_ack = (f"OUTPUT -p tcp --sport {sport} --dport {PORTS[0]} "
                "--tcp-flags SYN,ACK,FIN,RST,PSH ACK -m length --length 0:120 "
                "-m mark ! --mark 0x5 -j DROP")
    with netns_pair() as pair:
        pair.daemon("b", "--ports", str(PORTS[0]))
        server = pair.popen("b", [sys.executable, "-c", DAEMON_ECHO, str(PORTS[0])])
        assert server.stdout is not None and server.stdout.readline() == "serving\n"
        pair.run("a", ["iptables", "-w", "-A", *hold_ack.split()])
        client = pair.popen("a", [sys.executable, "-c", SLOW_CLIENT, ADDRESSES["b"],
                                  str(PORTS[0]), str(sport)], stdin=subprocess.PIPE)
        assert client.stdout is not None and client.stdout.readline() == "connected\n"
        spoofed = pair.run("a", [sys.executable, "-c", SPOOFER, ADDRESSES["a"], str(sport),
                                 ADDRESSES["b"], str(PORTS[0])]).stdout
        time.sleep(0.5)
        pair.run("a", ["iptables", "-w", "-D", *hold_ack.split()])
        out, error = client.communicate("go\n", timeout=60)
        records = sessions(pair, "b")
        stats = json.loads(pair.run("b", [sys.executable, "-m", "tcpcrypt.cli", "--json",
                                          "stats"]).stdout)
    assert spoofed.strip() == "spoofed 4"
    assert out, (error, records, stats)
    report = json.loads(out)
    assert report["echo"] == "ping", report
    mine = [r for r in records if r["wire_remote"] == f"{ADDRESSES['a']}:{sport}"]
    assert len(mine) == 1 and mine[0]["encrypted"], records
    assert report["sid"] and mine[0]["session_id"] == report["sid"]
    assert stats.get("fallbacks", 0) == 0


def test_daemon_loads_the_kernel_program_when_it_is_not_loaded_and_says_so() -> None:
    # its own tag (the namespace pairs use test-<this pid>), named after a process that lives
    # as long as the test, so that `testbed clean` removes the program if the test is killed
    owner = subprocess.Popen(["sleep", "600"])
    tag = f"test-{owner.pid}"
    pins, cgroup = loader.BPFFS / f"tcpcrypt-{tag}", loader.cgroup2_root() / f"tcpcrypt-{tag}"
    environment = {**os.environ, "TCPCRYPT_BPF_DIR": str(pins),
                   "TCPCRYPT_BPF_CGROUP": str(cgroup)}
    try:
        cgroup.mkdir(exist_ok=True)
        with netns_pair(kernel_program=False) as pair:
            assert not loader.is_loaded(pins)
            daemon = pair.daemon("a", "--ports", str(PORTS[0]), env=environment)
            loaded_while_running = loader.is_loaded(pins)
            daemon.send_signal(signal.SIGTERM)
            _, said = daemon.communicate(timeout=10)
        loaded_after_exit = loader.is_loaded(pins)
    finally:
        loader.remove_private(tag)
        owner.kill()
        owner.wait()
    assert said.splitlines()[0].startswith("tcpcryptd: loaded the TCP-ENO kernel program:")
    assert len([line for line in said.splitlines() if "loaded" in line]) == 1
    assert loaded_while_running and loaded_after_exit  # stays for other daemons and the library
    assert not pins.exists() and not cgroup.exists()
