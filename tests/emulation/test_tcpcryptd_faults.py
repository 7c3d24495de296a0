"""tcpcryptd under bad input and faults, in Mininet (issue #3).

The server runs tcpcryptd covering ports 8000 and 8001, each with `python3 -m http.server`
behind it; the client runs tcpcryptd covering 8000 only. Fault traffic goes to 8001 from the
client without the client's daemon in the way: either plain sockets, raw sockets, or a "fake
host A" (this module run as a helper inside the client host) that puts hand-made TCP-ENO
options on a kernel connection's SYN and first ACK through its own NFQUEUE, and then speaks
tcpcrypt over the plain socket through the project's sans-IO core (`TcpcryptConnection`), or
sends what a broken peer would: garbage instead of Init1, a truncated or oversized Init1, a
forged frame.

Each case checks three things: the affected connection resets (or falls back to plain TCP),
the server daemon's `tcpcrypt stats` counters say why, and the daemon keeps serving: a normal
curl to 8000 through both daemons afterwards works and is encrypted. Loss and reordering on
the path (iptables `statistic` match: random drops, and random packets held back in a queue)
leave a 100 MB transfer whole and encrypted.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import itertools
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testbed.apps.hosts import wait_until_listening
from testbed.apps.tcpcryptd_host import start_tcpcryptd, stop_tcpcryptd, tcpcrypt_cli
from testbed.emulation.network import emulated_network
from topologies.line import LineTopo

GOOD_PORT = 8000  # covered by both daemons
FAULT_PORT = 8001  # covered by the server's daemon only
FAKE_A_QUEUE = 7000
HOLD_QUEUE = 7001
FLIP_QUEUE = 7002
READ_WAIT_S = 20.0  # how long the fake client waits for the daemon's answer
THIS_FILE = Path(__file__).resolve()
ROOT = THIS_FILE.parents[2]
LOSSY_FILE_SIZE = 100 * 1024 * 1024


@dataclass
class Lab:
    net: Any
    client: Any
    server: Any
    www: Path
    tmp: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("faults")
    www = tmp / "www"
    www.mkdir()
    (www / "index.html").write_text("served\n")
    with emulated_network(LineTopo()) as net:
        client, server = net.get("client"), net.get("server")
        for port in (GOOD_PORT, FAULT_PORT):
            server.cmd(f"cd {www} && python3 -m http.server {port} >/dev/null 2>&1 &")
            wait_until_listening(server, port)
        daemons = [start_tcpcryptd(server, ports=[GOOD_PORT, FAULT_PORT]),
                   start_tcpcryptd(client, ports=[GOOD_PORT])]
        try:
            yield Lab(net, client, server, www, tmp)
        finally:
            for daemon in daemons:
                stop_tcpcryptd(daemon)


def counter(stats: dict[str, Any], name: str, reason: str | None = None) -> int:
    if reason is None:
        return int(stats.get(name, 0))
    return int(stats.get("by_reason", {}).get(name, {}).get(reason, 0))


def server_stats(lab: Lab) -> dict[str, Any]:
    stats: dict[str, Any] = tcpcrypt_cli(lab.server, "stats")
    return stats


def assert_still_serving_encrypted(lab: Lab) -> None:
    """A normal curl through both daemons works, and the server's record of it is encrypted."""
    before = server_stats(lab)
    status = lab.client.cmd(
        f"curl -s -m 10 -o /dev/null -w '%{{http_code}}' http://{lab.server.IP()}:{GOOD_PORT}/"
    ).strip()
    assert status == "200"
    after = server_stats(lab)
    assert counter(after, "established") == counter(before, "established") + 1
    last = tcpcrypt_cli(lab.server, "sessions")[-1]
    assert last["wire_local"].endswith(f":{GOOD_PORT}") and last["encrypted"]


FAKE_A_PORTS = itertools.count(random.randrange(20000, 29000))
"""Each fake host A connection gets its own source port: no two in one run share a 4-tuple
(and the conntrack and TIME_WAIT state an earlier one left). They sit below the kernel's
ephemeral range (32768-60999), where a connection of the host's own once took one first."""


def fake_a(lab: Lab, syn_option: str, action: str, timeout: float = 30) -> dict[str, Any]:
    """Run this module's fake host A in the client host; its JSON report."""
    process: subprocess.Popen[str] = lab.client.popen(
        [sys.executable, str(THIS_FILE), "fake-a", "--server", lab.server.IP(),
         "--port", str(FAULT_PORT), "--syn-option", syn_option, "--action", action,
         "--sport", str(next(FAKE_A_PORTS))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
    )
    try:
        out, error = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, error[-2000:]
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return report


# --- (a) garbage at a covered port -----------------------------------------------------------
def test_plain_garbage_at_a_covered_port_is_relayed_as_plain_tcp_and_the_daemon_keeps_serving(
    lab: Lab,
) -> None:
    before = server_stats(lab)
    report = fake_a(lab, "none", "garbage")
    after = server_stats(lab)
    assert report["connected"]
    # no ENO option on the SYN: plain TCP; http.server answers the garbage itself (400) or
    # closes, the daemon only relays
    assert report["outcome"] in ("eof", "data")
    assert counter(after, "fallbacks", "no-eno-syn") == counter(before, "fallbacks",
                                                                 "no-eno-syn") + 1
    assert counter(after, "resets") == counter(before, "resets")
    assert_still_serving_encrypted(lab)


def test_garbage_instead_of_init1_resets_the_connection_with_bad_init_magic(lab: Lab) -> None:
    before = server_stats(lab)
    report = fake_a(lab, "eno", "garbage")
    after = server_stats(lab)
    assert report["connected"] and report["negotiated"]
    assert report["outcome"] == "reset"
    assert counter(after, "resets", "bad-init-magic") == \
        counter(before, "resets", "bad-init-magic") + 1
    assert_still_serving_encrypted(lab)


# --- (b) malformed ENO options in the SYN ------------------------------------------------------
@pytest.mark.parametrize(("option", "counted", "reason"), [
    # well-framed TCP options whose ENO content is broken: the daemon falls back
    pytest.param("450385", "fallbacks", "malformed-option", id="eno-suboption-runs-past"),
    pytest.param("45048023", "fallbacks", "malformed-option", id="eno-length-byte-without-tep"),
    # kind 253 with another ExID is not ENO at all to the kernel program (it reads kind 69)
    pytest.param("fd042323", "fallbacks", "no-eno-syn", id="experimental-wrong-exid"),
    pytest.param("4502", "fallbacks", "no-common-tep", id="eno-without-teps"),
    pytest.param("45037f", "fallbacks", "no-common-tep", id="eno-unknown-tep"),
    # broken TCP option framing: the kernel still accepts the SYN, its program finds the ENO
    # option malformed, and the connection is plain TCP
    pytest.param("4501", "fallbacks", "malformed-option", id="option-length-1"),
    pytest.param("452823", "fallbacks", "malformed-option", id="option-runs-past-header"),
])
def test_a_syn_with_a_malformed_eno_option_falls_back_to_plain_tcp_and_is_counted(
    lab: Lab, option: str, counted: str, reason: str,
) -> None:
    before = server_stats(lab)
    report = fake_a(lab, option, "http")
    after = server_stats(lab)
    assert report["connected"] and not report["negotiated"]
    assert report["first_line"].startswith("HTTP/1.0 200"), report
    assert counter(after, counted, reason) == counter(before, counted, reason) + 1
    assert counter(after, "resets") == counter(before, "resets")
    assert_still_serving_encrypted(lab)


def kernel_counters(host: Any) -> dict[str, int]:
    """The kernel program's counters (`tcpcrypt kernel status`), as seen from `host`."""
    status: dict[str, Any] = tcpcrypt_cli(host, "kernel", "status")
    counters: dict[str, int] = status["counters"]
    return counters


def test_raw_syns_with_broken_option_framing_never_get_eno(lab: Lab) -> None:
    """The daemon no longer parses packets (the kernel program does, under the verifier): SYNs
    whose option framing is broken are answered without ENO, and the daemon keeps serving."""
    before = kernel_counters(lab.server)
    out = lab.client.cmd(
        f"{sys.executable} {THIS_FILE} raw-syns --server {lab.server.IP()} --port {FAULT_PORT}"
    )
    assert "sent 3" in out, out
    time.sleep(1)  # the SYN-ACKs went out (their retransmissions carry the same answer)
    after = kernel_counters(lab.server)
    assert after["b_synack_eno"] == before["b_synack_eno"]
    assert_still_serving_encrypted(lab)


# --- (c) truncated and oversized Init1 -------------------------------------------------------
@pytest.mark.parametrize(("action", "reason"), [
    ("init1-oversized", "init-too-long"),
    ("init1-length-too-small", "init-too-short"),
    ("init1-truncated-then-close", "closed-during-key-exchange"),
])
def test_a_bad_init1_resets_the_connection_and_is_counted(
    lab: Lab, action: str, reason: str,
) -> None:
    before = server_stats(lab)
    report = fake_a(lab, "eno", action)
    after = server_stats(lab)
    assert report["connected"] and report["negotiated"]
    assert report["outcome"] in ("reset", "eof")
    assert report["received"] == 0  # nothing of the server's answer, no Init2
    assert counter(after, "resets", reason) == counter(before, "resets", reason) + 1
    assert_still_serving_encrypted(lab)


def test_a_truncated_init1_held_open_resets_at_the_key_exchange_deadline(lab: Lab) -> None:
    before = server_stats(lab)
    report = fake_a(lab, "eno", "init1-truncated-then-wait")
    after = server_stats(lab)
    assert report["outcome"] in ("reset", "eof")
    # the daemon's 10 s key-exchange deadline: never before it; how long after it a busy
    # machine answers is bounded only by how long the fake client waits
    assert 9.0 <= report["elapsed"] < READ_WAIT_S
    assert counter(after, "resets", "key-exchange-timeout") == \
        counter(before, "resets", "key-exchange-timeout") + 1
    assert_still_serving_encrypted(lab)


# --- (d) a forged frame after a valid key exchange -------------------------------------------
def test_a_client_speaking_tcpcrypt_through_the_sans_io_core_gets_an_answer(lab: Lab) -> None:
    """The fake host A is a real tcpcrypt peer: without forgery the server answers it."""
    before = server_stats(lab)
    report = fake_a(lab, "eno", "valid-request")
    after = server_stats(lab)
    assert report["established"], (report, after, tcpcrypt_cli(lab.server, "sessions")[-3:])
    assert report["first_line"].startswith("HTTP/1.0 200"), report
    assert counter(after, "established") == counter(before, "established") + 1
    record = next(s for s in reversed(tcpcrypt_cli(lab.server, "sessions"))
                  if s["wire_remote"] == report["local"])
    assert record["session_id"] == report["session_id"]


def test_a_forged_frame_resets_the_connection_with_bad_tag(lab: Lab) -> None:
    before = server_stats(lab)
    report = fake_a(lab, "eno", "forged-request")
    after = server_stats(lab)
    assert report["established"]
    assert report["outcome"] == "reset"
    assert report["received"] == 0
    assert counter(after, "resets", "bad-tag") == counter(before, "resets", "bad-tag") + 1
    assert_still_serving_encrypted(lab)


def test_a_frame_altered_on_the_path_resets_the_receiving_daemons_connection(
    lab: Lab,
) -> None:
    """One bit of the server's first frame flipped between the two daemons (checksums fixed,
    so TCP delivers it): the client's daemon refuses it and resets, the next curl works."""
    (lab.www / "flip.bin").write_bytes(os.urandom(1 << 20))
    rule = (f"INPUT -p tcp --sport {GOOD_PORT} -m length --length 200:65535 "
            f"-j NFQUEUE --queue-num {FLIP_QUEUE} --queue-bypass")
    flipper = lab.client.popen(
        [sys.executable, str(THIS_FILE), "flip", "--queue", str(FLIP_QUEUE)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
    )
    assert flipper.stdout is not None
    assert flipper.stdout.readline().strip() == "flipping"
    client_before = tcpcrypt_cli(lab.client, "stats")
    lab.client.cmd(f"iptables -w -A {rule}")
    try:
        status = lab.client.cmd(
            f"curl -s -m 10 -o /dev/null -w '%{{http_code}}' "
            f"http://{lab.server.IP()}:{GOOD_PORT}/flip.bin"
        ).strip()
    finally:
        lab.client.cmd(f"iptables -w -D {rule}")
        flipper.send_signal(signal.SIGTERM)
        flip_out, flip_err = flipper.communicate(timeout=10)
    client_after = tcpcrypt_cli(lab.client, "stats")
    assert json.loads(flip_out.strip().splitlines()[-1])["flipped"] == 1, flip_err
    assert status != "200"
    assert counter(client_after, "resets", "bad-tag") == \
        counter(client_before, "resets", "bad-tag") + 1
    record = tcpcrypt_cli(lab.client, "sessions")[-1]
    assert record["state"] == "reset" and record["reason"] == "bad-tag"
    # the server's daemon saw its wire connection reset: the record says it ended so
    (server_record,) = [s for s in tcpcrypt_cli(lab.server, "sessions")
                        if s["wire_remote"] == record["wire_local"]]
    assert server_record["state"] == "aborted" and not server_record["live"]
    assert server_record["reason"] == "ConnectionResetError"
    assert_still_serving_encrypted(lab)


# --- (e) loss and reordering ------------------------------------------------------------------
def test_a_100_mb_transfer_survives_random_loss_and_reordering_encrypted(lab: Lab) -> None:
    big = lab.www / "lossy.bin"
    data = os.urandom(LOSSY_FILE_SIZE)
    big.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    del data
    match = f"-p tcp --sport {GOOD_PORT}"
    rules = [
        # drops both ways, and reordering: a random 3% of the server's segments are held
        # back in a queue for a few milliseconds while the ones behind them go ahead
        f"INPUT {match} -m statistic --mode random --probability 0.03 -j DROP",
        f"OUTPUT -p tcp --dport {GOOD_PORT} -m statistic --mode random --probability 0.03 "
        "-j DROP",
        f"INPUT {match} -m statistic --mode random --probability 0.03 "
        f"-j NFQUEUE --queue-num {HOLD_QUEUE} --queue-bypass",
    ]
    holder = lab.client.popen(
        [sys.executable, str(THIS_FILE), "hold", "--queue", str(HOLD_QUEUE), "--delay-ms", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    target = lab.tmp / "lossy-fetched.bin"
    before = server_stats(lab)
    for rule in rules:
        lab.client.cmd(f"iptables -w -A {rule}")
    try:
        started = time.monotonic()
        status = lab.client.cmd(
            f"curl -s -m 240 -o {target} -w '%{{http_code}}' "
            f"http://{lab.server.IP()}:{GOOD_PORT}/lossy.bin"
        ).strip()
        elapsed = time.monotonic() - started
        counters = lab.client.cmd("iptables -w -L -v -n -x")
    finally:
        for rule in rules:
            lab.client.cmd(f"iptables -w -D {rule}")
        holder.send_signal(signal.SIGTERM)
        held_out, held_err = holder.communicate(timeout=10)
    after = server_stats(lab)
    held = json.loads(held_out.strip().splitlines()[-1])["held"]
    print(f"100 MB over loss and reordering: {elapsed:.1f} s, {held} segments held back")
    print(counters)
    assert status == "200"
    digest_got = hashlib.sha256(target.read_bytes()).hexdigest()
    assert digest_got == digest
    assert held > 0
    drops = [int(line.split()[0]) for line in counters.splitlines()
             if "DROP" in line and "statistic" in line]
    assert len(drops) == 2 and all(count > 0 for count in drops)
    assert counter(after, "established") == counter(before, "established") + 1
    last = tcpcrypt_cli(lab.server, "sessions")[-1]
    assert last["encrypted"] and last["bytes_sent"] >= LOSSY_FILE_SIZE
    assert counter(after, "resets") == counter(before, "resets")


# --- helpers run inside the client host --------------------------------------------------------
def _read_outcome(sock: socket.socket, timeout: float) -> tuple[str, bytes]:
    """Read until end of stream, reset or timeout: (outcome, bytes read)."""
    sock.settimeout(timeout)
    received = bytearray()
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return ("data" if received else "eof"), bytes(received)
            received += chunk
    except ConnectionResetError:
        return "reset", bytes(received)
    except TimeoutError:
        return "timeout", bytes(received)


def _fake_a(args: argparse.Namespace) -> dict[str, Any]:
    from packets.nfqueue import HOOK_LOCAL_OUT, NfQueue
    from packets.tcp import parse_packet, set_tcp_option
    from packets.tcp_options import TcpOption
    from tcpcrypt.connection import ConnectionState, TcpcryptConnection
    from tcpcrypt.events import DataReceived, Established
    from tcpcrypt.randomness import system_random

    connection = TcpcryptConnection(active=True, random=system_random)
    option: bytes | None
    if args.syn_option == "eno":
        option = connection.syn_option()
    elif args.syn_option == "none":
        option = None
    else:
        option = bytes.fromhex(args.syn_option)
    speaks_eno = args.syn_option == "eno"
    sport = args.sport
    rules = [
        f"-t mangle -A OUTPUT -p tcp --sport {sport} --dport {args.port} "
        f"-j NFQUEUE --queue-num {FAKE_A_QUEUE}",
        f"-t mangle -A PREROUTING -p tcp --sport {args.port} --dport {sport} "
        f"--tcp-flags SYN,ACK SYN,ACK -j NFQUEUE --queue-num {FAKE_A_QUEUE}",
    ]
    queue = NfQueue(FAKE_A_QUEUE)
    stop = threading.Event()

    def serve_queue() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([queue.fileno()], [], [], 0.05)
            if not ready:
                continue
            for queued in queue.receive():
                packet = parse_packet(queued.payload)
                replacement = None
                if queued.hook == HOOK_LOCAL_OUT:
                    if packet.is_syn() and option is not None:
                        replacement = set_tcp_option(packet, TcpOption(option[0], option))
                    elif speaks_eno and len(packet.payload) <= 512:
                        ack = connection.ack_option()  # None unless ENO was negotiated
                        if ack is not None:
                            replacement = set_tcp_option(packet, TcpOption(ack[0], ack))
                elif packet.is_synack() and speaks_eno:
                    connection.on_synack(packet.option(69))
                queue.verdict(queued.packet_id, True, replacement)

    for rule in rules:
        subprocess.run(["iptables", "-w", *rule.split()], check=True)
    worker = threading.Thread(target=serve_queue, daemon=True)
    worker.start()
    report: dict[str, Any] = {"connected": False, "negotiated": False, "established": False}
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", sport))
        sock.settimeout(5)
        sock.connect((args.server, args.port))
        report["connected"] = True
        report["local"] = "{}:{}".format(*sock.getsockname())
        report["negotiated"] = connection.state is ConnectionState.KEY_EXCHANGE
        init1 = connection.data_to_send() if speaks_eno else b""
        started = time.monotonic()
        action = args.action
        if action == "http":
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        elif action == "garbage":
            sock.sendall(os.urandom(3000))
        elif action == "init1-oversized":
            # a well-formed Init1 whose length field (and size) exceeds what a peer may send
            body = init1[8:] + os.urandom(4000)
            sock.sendall(init1[:4] + (8 + len(body)).to_bytes(4, "big") + body)
        elif action == "init1-length-too-small":
            sock.sendall(init1[:4] + (20).to_bytes(4, "big") + init1[8:])
        elif action == "init1-truncated-then-close":
            sock.sendall(init1[: len(init1) // 2])
            sock.shutdown(socket.SHUT_WR)
        elif action == "init1-truncated-then-wait":
            sock.sendall(init1[: len(init1) // 2])
        elif action in ("valid-request", "forged-request"):
            sock.sendall(init1)
            buffer = b""
            while connection.state is ConnectionState.KEY_EXCHANGE:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                connection.receive(chunk)
            while (event := connection.next_event()) is not None:
                if isinstance(event, Established):
                    report["established"] = True
                    report["session_id"] = event.session_id.hex()
            connection.send(b"GET / HTTP/1.0\r\n\r\n")
            frames = bytearray(connection.data_to_send())
            if action == "forged-request":
                frames[len(frames) // 2] ^= 0x01  # one bit of the ciphertext
            sock.sendall(bytes(frames))
            if action == "valid-request":
                outcome, raw = _read_outcome(sock, 10)
                connection.receive(raw)
                while (event := connection.next_event()) is not None:
                    if isinstance(event, DataReceived):
                        buffer += event.data
                report["outcome"] = outcome
                report["first_line"] = buffer.split(b"\r\n")[0].decode(errors="replace")
                return report
        else:
            raise SystemExit(f"unknown action {action!r}")
        outcome, received = _read_outcome(sock, READ_WAIT_S)
        report["outcome"] = outcome
        report["received"] = len(received)
        report["elapsed"] = time.monotonic() - started
        report["first_line"] = received.split(b"\r\n")[0].decode(errors="replace")
        return report
    finally:
        sock.close()
        stop.set()
        worker.join(timeout=2)
        for rule in rules:
            subprocess.run(["iptables", "-w", *rule.replace(" -A ", " -D ").split()],
                           check=False)
        queue.close()


def _raw_syns(args: argparse.Namespace) -> str:
    """SYNs whose TCP options are broken, from a raw socket (no connection behind them)."""
    from packets.ipv4 import PROTOCOL_TCP, IPv4Header
    from packets.tcp import SYN, build_packet
    from packets.tcp_options import TcpOption

    source = socket.inet_aton(subprocess.run(
        ["ip", "-4", "-o", "route", "get", args.server], capture_output=True, text=True,
        check=True,
    ).stdout.split(" src ")[1].split()[0])
    destination = socket.inet_aton(args.server)
    broken = [
        TcpOption(69, b"\x45\x01"),  # length 1
        TcpOption(69, b"\x45\x28\x23"),  # length 40: runs past the header
        TcpOption(1, b"\x01\x01\x01\x45"),  # a kind without its length byte, at the end
    ]
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent = 0
    for option in broken:
        header = IPv4Header(20, 0, 0, random.randrange(65536), 0x4000, 64, PROTOCOL_TCP, 0,
                            source, destination, b"")
        packet = build_packet(header, src_port=random.randrange(50000, 60000),
                              dst_port=args.port, seq=random.randrange(1 << 32), ack=0,
                              flags=SYN, window=65535, options=[option])
        sock.sendto(packet, (args.server, 0))
        sent += 1
    sock.close()
    return f"sent {sent}"


def _hold(args: argparse.Namespace) -> None:
    """Hold each queued packet for --delay-ms, then release it: the ones behind overtake it."""
    from packets.nfqueue import NfQueue

    queue = NfQueue(args.queue)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    waiting: list[tuple[float, int]] = []
    held = 0
    print("holding", flush=True)
    while not stopped.is_set():
        now = time.monotonic()
        while waiting and waiting[0][0] <= now:
            queue.verdict(heapq.heappop(waiting)[1], True)
        timeout = min(0.05, max(0.0, waiting[0][0] - now)) if waiting else 0.05
        try:
            ready, _, _ = select.select([queue.fileno()], [], [], timeout)
        except InterruptedError:
            continue
        if ready:
            for queued in queue.receive():
                held += 1
                heapq.heappush(waiting, (time.monotonic() + args.delay_ms / 1000,
                                         queued.packet_id))
    for _, packet_id in waiting:
        queue.verdict(packet_id, True)
    queue.close()
    print(json.dumps({"held": held}), flush=True)


def _flip(args: argparse.Namespace) -> None:
    """Flip one bit in the payload of the first queued packet (checksums fixed); pass the rest."""
    from packets.nfqueue import NfQueue
    from packets.tcp import fix_checksums, parse_packet

    queue = NfQueue(args.queue)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    flipped = 0
    print("flipping", flush=True)
    while not stopped.is_set():
        try:
            ready, _, _ = select.select([queue.fileno()], [], [], 0.05)
        except InterruptedError:
            continue
        if not ready:
            continue
        for queued in queue.receive():
            replacement = None
            packet = parse_packet(queued.payload)
            if not flipped and packet.payload:
                altered = bytearray(packet.raw)
                altered[len(packet.raw) - len(packet.payload) // 2] ^= 0x10
                replacement = fix_checksums(altered)
                flipped += 1
            queue.verdict(queued.packet_id, True, replacement)
    queue.close()
    print(json.dumps({"flipped": flipped}), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="helpers run inside emulated hosts")
    commands = parser.add_subparsers(dest="command", required=True)
    fake = commands.add_parser("fake-a")
    fake.add_argument("--server", required=True)
    fake.add_argument("--port", type=int, required=True)
    fake.add_argument("--syn-option", required=True, help="eno, none, or option bytes in hex")
    fake.add_argument("--action", required=True)
    fake.add_argument("--sport", type=int, required=True)
    raw = commands.add_parser("raw-syns")
    raw.add_argument("--server", required=True)
    raw.add_argument("--port", type=int, required=True)
    hold = commands.add_parser("hold")
    hold.add_argument("--queue", type=int, required=True)
    hold.add_argument("--delay-ms", type=float, required=True)
    flip = commands.add_parser("flip")
    flip.add_argument("--queue", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "fake-a":
        print(json.dumps(_fake_a(args)), flush=True)
    elif args.command == "raw-syns":
        print(_raw_syns(args), flush=True)
    elif args.command == "flip":
        _flip(args)
    else:
        _hold(args)


if __name__ == "__main__":
    main()
