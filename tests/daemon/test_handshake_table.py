"""The daemon's handshake table without a kernel: the packets two hosts would queue, passed
between two tables as the kernel would, and what each table adds, reads and hands out."""

from __future__ import annotations

import itertools

from packets.ipv4 import IPv4Header
from packets.tcp import ACK, PSH, SYN, build_packet, parse_packet
from packets.tcp_options import TcpOption
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.constants import ENO_OPTION_KIND
from tcpcrypt.daemon.handshake import HandshakeTable
from tcpcrypt.daemon.nfqueue import HOOK_LOCAL_OUT, HOOK_PRE_ROUTING
from tcpcrypt.daemon.stats import Stats
from tcpcrypt.randomness import seeded_random

HOST_A, HOST_B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
A_ADDRESS, B_ADDRESS = ("10.0.0.1", 40000), ("10.0.0.2", 8000)
MSS = TcpOption(2, bytes([2, 4, 5, 0xB4]))
SEEDS = itertools.count(1)


def table() -> tuple[HandshakeTable, Stats]:
    stats = Stats()

    def new_connection(active: bool, peer: str) -> TcpcryptConnection:
        return TcpcryptConnection(active=active, random=seeded_random(next(SEEDS)), peer=peer,
                                  now=0.0)

    return HandshakeTable(new_connection, stats), stats


def segment(flags: int, *, from_a: bool, seq: int, payload: bytes = b"",
            options: tuple[TcpOption, ...] = ()) -> bytes:
    src, dst = (HOST_A, HOST_B) if from_a else (HOST_B, HOST_A)
    sport, dport = (A_ADDRESS[1], B_ADDRESS[1]) if from_a else (B_ADDRESS[1], A_ADDRESS[1])
    ip = IPv4Header(20, 0, 0, 1, 0x4000, 64, 6, 0, src, dst)
    return build_packet(ip, src_port=sport, dst_port=dport, seq=seq, ack=1, flags=flags,
                        window=1000, options=options, payload=payload)


def send(sender: HandshakeTable, receiver: HandshakeTable, raw: bytes) -> bytes:
    """Out of one host (its table may add an option), into the other (its table reads it)."""
    released = sender.on_packet(HOOK_LOCAL_OUT, raw, 0.0) or raw
    assert receiver.on_packet(HOOK_PRE_ROUTING, released, 0.0) is None  # only read there
    return released


def handshake(a: HandshakeTable, b: HandshakeTable) -> list[bytes]:
    return [
        send(a, b, segment(SYN, from_a=True, seq=100, options=(MSS,))),
        send(b, a, segment(SYN | ACK, from_a=False, seq=900, options=(MSS,))),
        send(a, b, segment(ACK, from_a=True, seq=101)),
    ]


def has_eno(raw: bytes) -> bool:
    return parse_packet(raw).option(ENO_OPTION_KIND) is not None


def test_both_tables_put_eno_on_the_handshake_and_agree_on_tcpcrypt() -> None:
    (a, _), (b, _) = table(), table()
    syn, synack, ack = handshake(a, b)
    assert has_eno(syn) and has_eno(synack) and has_eno(ack)
    flow_a, flow_b = a.claim_a(A_ADDRESS, B_ADDRESS), b.claim_b(A_ADDRESS)
    assert flow_a is not None and flow_b is not None
    assert flow_a.connection.state is ConnectionState.KEY_EXCHANGE
    assert flow_b.connection.state is ConnectionState.KEY_EXCHANGE


def test_a_flow_is_handed_to_the_proxy_once_only() -> None:
    (a, _), (b, _) = table(), table()
    handshake(a, b)
    assert b.claim_b(A_ADDRESS) is not None
    assert b.claim_b(A_ADDRESS) is None  # a later connection from the same port: not this one


def test_a_peer_without_eno_leads_both_sides_to_fall_back() -> None:
    (a, _), (b, _) = table(), table()
    syn = segment(SYN, from_a=True, seq=100, options=(MSS,))
    assert b.on_packet(HOOK_PRE_ROUTING, syn, 0.0) is None  # a peer that runs no daemon
    flow_b = b.claim_b(A_ADDRESS)
    assert flow_b is not None and flow_b.connection.state is ConnectionState.FALLBACK
    a.on_packet(HOOK_LOCAL_OUT, syn, 0.0)
    a.on_packet(HOOK_PRE_ROUTING, segment(SYN | ACK, from_a=False, seq=900), 0.0)
    flow_a = a.claim_a(A_ADDRESS, B_ADDRESS)
    assert flow_a is not None and flow_a.connection.state is ConnectionState.FALLBACK


def test_a_retransmitted_syn_carries_the_same_option_and_keeps_the_flow() -> None:
    (a, _), _ = table(), table()
    syn = segment(SYN, from_a=True, seq=100)
    first, again = a.on_packet(HOOK_LOCAL_OUT, syn, 0.0), a.on_packet(HOOK_LOCAL_OUT, syn, 0.0)
    assert first is not None and first == again
    assert len(a) == 1


def test_only_small_segments_of_host_a_get_the_option() -> None:
    (a, _), (b, _) = table(), table()
    handshake(a, b)
    small = segment(ACK | PSH, from_a=True, seq=101, payload=b"x" * 100)
    large = segment(ACK | PSH, from_a=True, seq=101, payload=b"x" * 1400)
    released = a.on_packet(HOOK_LOCAL_OUT, small, 0.0)
    assert released is not None and has_eno(released)
    assert a.on_packet(HOOK_LOCAL_OUT, large, 0.0) is None


def test_a_malformed_packet_is_released_unchanged_and_counted() -> None:
    (a, stats), _ = table(), table()
    raw = bytearray(segment(SYN, from_a=True, seq=100))
    raw[32] = 0xF0  # TCP data offset beyond the packet
    assert a.on_packet(HOOK_LOCAL_OUT, bytes(raw), 0.0) is None
    assert stats.total("malformed_packets") == 1
    assert len(a) == 0


def test_unclaimed_flows_expire_and_are_counted() -> None:
    (a, stats), (b, _) = table(), table()
    handshake(a, b)
    assert a.expire(5.0) == 0
    assert a.expire(11.0) == 1
    assert stats.total("handshakes_unclaimed") == 1
