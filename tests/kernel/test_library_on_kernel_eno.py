"""The library over the kernel's TCP-ENO, end to end between two network namespaces."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kernel_lab import Pair, capture, finish

from tcpcrypt.constants import TEP_TCPCRYPT_ECDHE_CURVE25519, TEP_TCPCRYPT_ECDHE_P256

PORT = 7100
ENO = 69
X25519 = TEP_TCPCRYPT_ECDHE_CURVE25519
P256 = TEP_TCPCRYPT_ECDHE_P256


def test_library_pair_agrees_on_the_session_and_the_capture_shows_eno_and_no_plaintext(
    pair: Pair, tmp_path: Path
) -> None:
    cap = capture(pair, pair.b, pair.b_if, tmp_path / "wire.pcap")
    server = pair.start_server(pair.b, "lib-server", str(PORT), "3")
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "3")
    servers = finish(server)
    packets = cap.stop()
    assert [c["encrypted"] for c in clients] == [True, True, True]
    assert [c["sessid"] for c in clients] == [s["sessid"] for s in servers]
    assert [c["answer"] for c in clients] == [f"echo:secret-line-{i}\n" for i in range(3)]
    assert [c["resumed"] for c in clients] == [s["resumed"] for s in servers] == [
        False, True, True]
    assert {c["kernel"]["state"] for c in clients} == {"negotiated"}
    assert {s["kernel"]["state"] for s in servers} == {"negotiated"}
    syns = [p for p in packets if p.is_syn()]
    synacks = [p for p in packets if p.is_synack()]
    assert len(syns) == len(synacks) == 3
    assert all(p.option(ENO) is not None for p in syns + synacks)
    assert synacks[0].option(ENO) == bytes([ENO, 4, 0x01, X25519])  # b=1, then the TEP
    wire = b"".join(p.payload for p in packets)
    assert b"secret-line" not in wire and b"echo:" not in wire


def test_plain_client_against_a_library_server_falls_back(pair: Pair) -> None:
    server = pair.start_server(pair.b, "lib-server", str(PORT), "1")
    clients = pair.peer(pair.a, "plain-client", pair.b_ip, str(PORT), "1")
    servers = finish(server)
    assert clients[0]["answer"] == "echo:secret-line-0\n"
    assert clients[0]["kernel"] is None  # never opted in: untouched
    assert servers[0]["encrypted"] is False and servers[0]["reason"] == "no-eno-syn"


def test_library_client_against_a_plain_server_falls_back_and_the_server_is_untouched(
    pair: Pair, tmp_path: Path
) -> None:
    cap = capture(pair, pair.b, pair.b_if, tmp_path / "wire.pcap")
    server = pair.start_server(pair.b, "plain-server", str(PORT), "1")
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "1")
    servers = finish(server)
    packets = cap.stop()
    assert clients[0]["encrypted"] is False and clients[0]["reason"] == "no-eno-synack"
    assert clients[0]["answer"] == "echo:secret-line-0\n"
    assert servers[0]["kernel"] is None
    assert [p.option(ENO) is not None for p in packets if p.is_synack()] == [False]


def test_option_stripped_from_the_syn_gives_a_clean_fallback(pair: Pair) -> None:
    pair.run(pair.b, "iptables", "-t", "mangle", "-A", "PREROUTING", "-p", "tcp", "--syn",
             "-j", "TCPOPTSTRIP", "--strip-options", str(ENO))
    server = pair.start_server(pair.b, "lib-server", str(PORT), "1")
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "1")
    servers = finish(server)
    assert clients[0]["reason"] == "no-eno-synack" and servers[0]["reason"] == "no-eno-syn"
    assert clients[0]["answer"] == "echo:secret-line-0\n"


def test_option_stripped_from_the_synack_gives_a_clean_fallback(pair: Pair) -> None:
    pair.run(pair.a, "iptables", "-t", "mangle", "-A", "PREROUTING", "-p", "tcp",
             "--tcp-flags", "SYN,ACK", "SYN,ACK", "-j", "TCPOPTSTRIP", "--strip-options",
             str(ENO))
    server = pair.start_server(pair.b, "lib-server", str(PORT), "1")
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "1")
    servers = finish(server)
    assert clients[0]["reason"] == "no-eno-synack" and servers[0]["reason"] == "no-eno-ack"
    assert clients[0]["answer"] == "echo:secret-line-0\n"


def test_option_stripped_from_a_s_ack_only_fails_closed(pair: Pair, tmp_path: Path) -> None:
    """B falls back while A believes ENO succeeded: A resets, never sends its data in clear."""
    pair.run(pair.b, "iptables", "-t", "mangle", "-A", "PREROUTING", "-p", "tcp", "!", "--syn",
             "-j", "TCPOPTSTRIP", "--strip-options", str(ENO))
    cap = capture(pair, pair.a, pair.a_if, tmp_path / "wire.pcap")
    server = pair.start_server(pair.b, "lib-server", str(PORT), "1", timeout=2)
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "1", timeout=2)
    servers = finish(server)
    packets = cap.stop()
    # Init2 never comes (B runs plain TCP): A gives up the key exchange and resets. When A's
    # random Init1 holds a newline, B's plain echo arrives instead of Init2: A refuses its magic.
    assert clients[0]["error"] in ("socket-error-TimeoutError", "eof-during-key-exchange",
                                   "bad-init-magic")
    assert servers[0]["reason"] == "no-eno-ack"
    assert b"secret-line" not in b"".join(p.payload for p in packets)
    assert any(p.flags & 0x04 for p in packets if p.src_port != PORT)  # A's reset


def test_garbage_instead_of_init1_resets_with_its_reason(pair: Pair) -> None:
    server = pair.start_server(pair.b, "lib-server", str(PORT), "1")
    clients = pair.peer(pair.a, "raw-bad-client", pair.b_ip, str(PORT))
    servers = finish(server)
    assert clients[0]["kernel"]["state"] == "negotiated"
    assert clients[0].get("reset") is True
    assert servers[0]["error"] == "bad-init-magic"


def test_syncookies_send_no_eno_and_both_ends_fall_back(pair: Pair) -> None:
    pair.run(pair.b, "sysctl", "-qw", "net.ipv4.tcp_syncookies=2")
    server = pair.start_server(pair.b, "lib-server", str(PORT), "1")
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "1")
    servers = finish(server)
    assert clients[0]["reason"] == "no-eno-synack" and servers[0]["reason"] == "syncookie"
    assert clients[0]["answer"] == "echo:secret-line-0\n"


def test_a_lost_synack_and_a_lost_first_ack_still_negotiate(pair: Pair) -> None:
    pair.run(pair.a, "iptables", "-A", "INPUT", "-p", "tcp", "--tcp-flags", "SYN,ACK",
             "SYN,ACK", "-m", "statistic", "--mode", "nth", "--every", "1000", "--packet", "0",
             "-j", "DROP")
    pair.run(pair.b, "iptables", "-A", "INPUT", "-p", "tcp", "--tcp-flags", "SYN,ACK,PSH",
             "ACK", "-m", "length", "--length", "0:80", "-m", "statistic", "--mode", "nth",
             "--every", "1000", "--packet", "0", "-j", "DROP")
    server = pair.start_server(pair.b, "lib-server", str(PORT), "1")
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "1")
    servers = finish(server)
    dropped = pair.run(pair.a, "iptables", "-nvxL", "INPUT") + pair.run(
        pair.b, "iptables", "-nvxL", "INPUT")
    counts = [int(line.split()[0]) for line in dropped.splitlines() if "DROP" in line]
    assert counts == [1, 1]
    assert clients[0]["encrypted"] is True and servers[0]["encrypted"] is True
    assert clients[0]["sessid"] == servers[0]["sessid"]


def test_eno_switched_off_in_one_namespace_falls_back(pair: Pair) -> None:
    script = ("from tcpcrypt.kernel import KernelEno\n"
              "with KernelEno() as k: k.set_netns_enabled(False)\n")
    import sys

    pair.run(pair.b, sys.executable, "-c", script)
    server = pair.start_server(pair.b, "lib-server", str(PORT), "1")
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "1")
    servers = finish(server)
    assert clients[0]["reason"] == "no-eno-synack" and servers[0]["reason"] == "netns-disabled"


def test_simultaneous_open_is_refused_explicitly(pair: Pair) -> None:
    """A's SYNs are dropped before B, so B's SYN finds A in SYN-SENT: A answers it with a
    SYN-ACK (a simultaneous open), which the program refuses to put ENO on."""
    pair.run(pair.b, "iptables", "-A", "INPUT", "-p", "tcp", "--syn", "--sport", "7201",
             "-j", "DROP")
    first = pair.start(pair.a, "simultaneous", "7201", pair.b_ip, "7202")
    time.sleep(0.7)  # A is in SYN-SENT (its SYN dropped) when B's SYN arrives
    second = pair.start(pair.b, "simultaneous", "7202", pair.a_ip, "7201")
    results = finish(first) + finish(second)
    assert [r["answer"] for r in results] == ["hello\n", "hello\n"]
    assert [r["kernel"]["state"] for r in results] == ["fallback", "fallback"]
    assert [r["kernel"]["reason"] for r in results] == ["simultaneous-open", "no-eno-synack"]


def test_a_flood_of_spoofed_segments_changes_no_other_connection(pair: Pair) -> None:
    """Spoofed ENO SYNs from other addresses and spoofed ACK/RST segments with ENO from the
    client's own address arrive while real connections negotiate (fewer SYNs than the request
    queue holds): each real connection still gets its own answer (same session IDs,
    resumption as usual)."""
    pair.run(pair.b, "sysctl", "-qw", "net.ipv4.tcp_max_syn_backlog=8192")
    server = pair.start_server(pair.b, "lib-server", str(PORT), "5")
    flood = pair.start(pair.a, "flood", pair.b_ip, str(PORT), "3", pair.a_ip, "4000")
    time.sleep(0.3)
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "5")
    servers = finish(server)
    assert finish(flood)[0]["sent"] > 1000
    assert [c["encrypted"] for c in clients] == [True] * 5, (clients, servers)
    assert [c["sessid"] for c in clients] == [s["sessid"] for s in servers]
    assert [c["resumed"] for c in clients] == [s["resumed"] for s in servers] == [
        False, True, True, True, True]


def test_a_flood_beyond_the_request_queue_falls_back_consistently(pair: Pair) -> None:
    """Past the request queue the kernel answers with syncookies: no ENO (no state to keep),
    so a connection then falls back at both ends (the application sees encrypted False);
    never one end encrypted and the other plain."""
    server = pair.start_server(pair.b, "lib-server", str(PORT), "4")
    flood = pair.start(pair.a, "flood", pair.b_ip, str(PORT), "3", pair.a_ip, "1000000")
    time.sleep(0.5)
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "4")
    servers = finish(server)
    finish(flood)
    assert [c["answer"] for c in clients] == [f"echo:secret-line-{i}\n" for i in range(4)]
    for client, served in zip(clients, servers, strict=True):
        assert client["encrypted"] == served["encrypted"]
        if client["encrypted"]:
            assert client["sessid"] == served["sessid"]
        else:
            assert (client["reason"], served["reason"]) == ("no-eno-synack", "syncookie")


def test_asyncio_streams_against_the_blocking_library_share_sessions(pair: Pair) -> None:
    server = pair.start_server(pair.b, "aio-server", str(PORT), "2")
    blocking = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "2")
    servers = finish(server)
    assert [c["sessid"] for c in blocking] == [s["sessid"] for s in servers]
    assert [s["resumed"] for s in servers] == [False, True]
    assert all(c["encrypted"] for c in blocking)
    server = pair.start_server(pair.b, "lib-server", str(PORT), "2")
    streams = pair.peer(pair.a, "aio-client", pair.b_ip, str(PORT), "2")
    servers = finish(server)
    assert [c["sessid"] for c in streams] == [s["sessid"] for s in servers]
    assert [c["answer"] for c in streams] == ["echo:secret-line-0\n", "echo:secret-line-1\n"]
    assert [c["resumed"] for c in streams] == [False, True]


def test_key_logs_of_both_ends_name_the_same_session(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TCPCRYPT_KEYLOG", str(tmp_path / "server.keys"))
    server = pair.start_server(pair.b, "lib-server", str(PORT), "1")
    monkeypatch.setenv("TCPCRYPT_KEYLOG", str(tmp_path / "client.keys"))
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "1")
    finish(server)
    server_lines = (tmp_path / "server.keys").read_text().splitlines()
    assert server_lines == (tmp_path / "client.keys").read_text().splitlines()
    label, session_id, master_key, _ = server_lines[0].split()
    # mk[0], not ss (docs/protocol.md, "The key log"; tests/daemon/test_keylog.py)
    assert label == "TCPCRYPT_MK0" and session_id == clients[0]["sessid"]
    assert len(bytes.fromhex(master_key)) == 32


def test_a_resumption_identifier_is_answered_once_by_the_kernel(pair: Pair) -> None:
    a_id, b_id = "11" * 9, "22" * 9
    resuming_syn = bytes([ENO, 12, 0x80 | X25519]) + bytes.fromhex(a_id)
    server = pair.start_server(pair.b, "raw-listen", str(PORT), "2", f"{X25519:x}", a_id, b_id)
    first = pair.peer(pair.a, "raw-offer", pair.b_ip, str(PORT), resuming_syn.hex())
    second = pair.peer(pair.a, "raw-offer", pair.b_ip, str(PORT), resuming_syn.hex())
    servers = finish(server)
    resumed_answer = bytes([ENO, 13, 0x01, 0x80 | X25519]) + bytes.fromhex(b_id)
    assert first[0]["kernel"]["synack"] == resumed_answer.hex()
    assert second[0]["kernel"]["synack"] == bytes([ENO, 4, 0x01, X25519]).hex()  # used up
    assert [s["kernel"]["resumed"] for s in servers] == [True, False]
    assert {s["kernel"]["state"] for s in servers} == {"negotiated"}


def test_a_tfo_socket_skips_eno(pair: Pair) -> None:
    for ns in (pair.a, pair.b):
        pair.run(ns, "sysctl", "-qw", "net.ipv4.tcp_fastopen=3")
    server = pair.start_server(pair.b, "lib-server", str(PORT), "1", timeout=2)
    clients = pair.peer(pair.a, "raw-offer", pair.b_ip, str(PORT),
                        bytes([ENO, 3, X25519]).hex(), "fastopen")
    servers = finish(server)
    assert clients[0]["kernel"]["reason"] == "tfo"
    assert servers[0]["kernel"]["reason"] == "tfo"  # B answers no ENO to a TFO SYN


def test_a_library_client_offering_two_suites_resumes_behind_a_length_byte(
    pair: Pair, tmp_path: Path
) -> None:
    """The resuming SYN names X25519 with A's 9-byte identifier ahead of P-256: a length byte
    0x88 (nnnnn+1 = 9 data bytes after the TEP byte), which B's kernel must read as 9 bytes."""
    cap = capture(pair, pair.b, pair.b_if, tmp_path / "wire.pcap")
    server = pair.start_server(pair.b, "lib-server", str(PORT), "2", "x25519,p256")
    clients = pair.peer(pair.a, "lib-client", pair.b_ip, str(PORT), "2", "x25519,p256")
    servers = finish(server)
    packets = cap.stop()
    assert [c["resumed"] for c in clients] == [s["resumed"] for s in servers] == [False, True]
    assert [c["sessid"] for c in clients] == [s["sessid"] for s in servers]
    syn = [p.option(ENO) for p in packets if p.is_syn()][1]
    assert syn is not None and len(syn) == 14
    assert syn[:4] == bytes([ENO, 14, 0x88, 0x80 | X25519]) and syn[13] == P256
    synack = [p.option(ENO) for p in packets if p.is_synack()][1]
    assert synack is not None and synack[:4] == bytes([ENO, 13, 0x01, 0x80 | X25519])


def test_a_resumption_identifier_behind_a_length_byte_is_answered_by_the_kernel(
    pair: Pair,
) -> None:
    a_id, b_id = "33" * 9, "44" * 9
    resuming_syn = bytes([ENO, 14, 0x88, 0x80 | X25519]) + bytes.fromhex(a_id) + bytes([P256])
    server = pair.start_server(pair.b, "raw-listen", str(PORT), "1", f"{X25519:x}", a_id, b_id)
    clients = pair.peer(pair.a, "raw-offer", pair.b_ip, str(PORT), resuming_syn.hex())
    servers = finish(server)
    resumed_answer = bytes([ENO, 13, 0x01, 0x80 | X25519]) + bytes.fromhex(b_id)
    assert clients[0]["kernel"]["state"] == "negotiated"
    assert clients[0]["kernel"]["synack"] == resumed_answer.hex()
    assert servers[0]["kernel"]["resumed"] is True


@pytest.mark.parametrize(
    ("syn", "client", "server"),
    [
        # After the TEPs, where the reference implementation puts it; b=0.
        (bytes([ENO, 5, P256, X25519, 0x00]), ("negotiated", None), ("negotiated", None)),
        # Between the TEPs, application-aware bits set, a second global byte ignored.
        (bytes([ENO, 6, P256, 0x02, X25519, 0x01]), ("negotiated", None),
         ("negotiated", None)),
        # b=1 after the TEPs is read: equal b bits, B answers no ENO.
        (bytes([ENO, 5, P256, X25519, 0x01]), ("fallback", "no-eno-synack"),
         ("fallback", "role-conflict")),
    ],
)
def test_a_syn_with_the_global_suboption_after_the_teps_is_read(
    pair: Pair, syn: bytes, client: tuple[str, str | None], server: tuple[str, str | None]
) -> None:
    listener = pair.start_server(pair.b, "raw-listen", str(PORT), "1", f"{X25519:x}",
                                 "55" * 9, "66" * 9)
    clients = pair.peer(pair.a, "raw-offer", pair.b_ip, str(PORT), syn.hex())
    servers = finish(listener)
    seen_a, seen_b = clients[0]["kernel"], servers[0]["kernel"]
    assert (seen_a["state"], seen_a["reason"]) == client
    assert (seen_b["state"], seen_b["reason"]) == server
    if client[0] == "negotiated":
        assert seen_a["synack"] == bytes([ENO, 4, 0x01, X25519]).hex()
        assert seen_b["syn"] == syn.hex()
