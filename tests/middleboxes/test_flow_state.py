"""The models that remember flows keep bounded state: a long run of many short connections
(and some abandoned after their SYN) leaves as many entries as the timeouts allow, not one per
connection ever seen; nat reuses the ports of closed and idle mappings; resegment's coalescer
never builds an IPv4 packet over 65,535 bytes. Counted entries, simulated time: no timing."""

from __future__ import annotations

import pytest

from middleboxes.base import Delay, Direction, Drop, Forward, Middlebox
from middleboxes.flow_table import FlowTable
from middleboxes.nat import Nat
from middleboxes.proxy_ack import ProxyAck
from middleboxes.resegment import Resegment
from middleboxes.seq_rewrite import SeqRewrite
from packets.ipv4 import IPv4Header
from packets.tcp import ACK, FIN, PSH, RST, SYN, build_packet, parse_packet
from packets.tcp_options import KIND_TIMESTAMPS, TcpOption

TO_SERVER, TO_CLIENT = Direction.TO_SERVER, Direction.TO_CLIENT
SERVER = bytes([10, 0, 0, 2])


def segment(src: bytes, sport: int, dst: bytes, dport: int, flags: int, seq: int = 1,
            ack: int = 1, payload: bytes = b"", ip_options: bytes = b"",
            options: tuple[TcpOption, ...] = ()) -> bytes:
    ip = IPv4Header(20 + len(ip_options), 0, 0, 1, 0x4000, 64, 6, 0, src, dst, ip_options)
    return build_packet(ip, src_port=sport, dst_port=dport, seq=seq, ack=ack, flags=flags,
                        window=1000, options=options, payload=payload)


def leaving(actions: list[object]) -> list[bytes]:
    return [a.packet for a in actions if isinstance(a, (Forward, Delay))]


def short_flow(model: Middlebox, index: int, now: float, *, abandoned: bool) -> None:
    """One connection through `model`: handshake, a request, FIN both ways, the last ACK
    (or only a SYN nobody answers). Every packet must get through."""
    client, port = bytes([10, 1, index // 50000 % 256, 1 + index // 250 % 200]), 1024 + index % 250
    (out,) = leaving(model.handle(segment(client, port, SERVER, 80, SYN, seq=100), TO_SERVER,
                                  now))
    if abandoned:
        return
    seen = parse_packet(out)  # the reply goes to whatever address and port the model made
    back = seen.ip.src, seen.src_port

    def to_client(flags: int, seq: int, ack: int) -> None:
        assert leaving(model.handle(segment(SERVER, 80, *back, flags, seq, ack), TO_CLIENT, now))

    def to_server(flags: int, seq: int, ack: int, payload: bytes = b"") -> None:
        assert leaving(model.handle(segment(client, port, SERVER, 80, flags, seq, ack, payload),
                                    TO_SERVER, now))

    to_client(SYN | ACK, 500, seen.seq + 1)
    to_server(ACK | PSH, 101, 501, b"GET /")
    to_server(FIN | ACK, 106, 501)
    to_client(FIN | ACK, 501, seen.seq + 7)
    to_server(ACK, 107, 502)


def held(model: Middlebox) -> int:
    if isinstance(model, Nat):
        return model.mappings()
    assert isinstance(model, (SeqRewrite, ProxyAck))
    return model.flows()


@pytest.mark.parametrize("make", [SeqRewrite, ProxyAck, Nat], ids=lambda m: m.name)
def test_state_stays_bounded_over_a_long_run_of_short_flows(make: type[Middlebox]) -> None:
    """6,000 connections 0.5 s apart (50 minutes of simulated time, five idle timeouts), one
    in ten abandoned after its SYN: with the default timeouts (closed 10 s, idle 600 s) at
    most 20 closed and 120 abandoned flows can be held at any moment, whatever the run's
    length."""
    model = make()
    most = 0
    for index in range(6_000):
        short_flow(model, index, index * 0.5, abandoned=index % 10 == 0)
        most = max(most, held(model))
    assert most <= 10 / 0.5 + 600 / 0.5 / 10 + 2
    assert held(model) <= most
    assert model.stats["dropped:model-error"] == 0


def test_nat_reuses_ports_of_closed_flows_instead_of_refusing_new_ones() -> None:
    nat = Nat(first_port=65000)  # 536 ports
    for index in range(2_000):
        short_flow(nat, index, index * 1.0, abandoned=False)
    assert nat.stats["dropped:nat-ports-exhausted"] == 0
    assert nat.mappings() <= 536


def test_nat_with_every_port_live_refuses_then_accepts_once_a_mapping_idles_out() -> None:
    nat = Nat(first_port=65534, idle_s=30)  # 2 ports
    for index in range(2):
        short_flow(nat, index, 0.0, abandoned=True)
    assert isinstance(nat.handle(segment(bytes([10, 9, 9, 9]), 5000, SERVER, 80, SYN),
                                 TO_SERVER, 1.0)[0], Drop)
    (out,) = leaving(nat.handle(segment(bytes([10, 9, 9, 9]), 5000, SERVER, 80, SYN),
                                TO_SERVER, 31.0))
    assert parse_packet(out).src_port == 65534  # the port idle longest, reused
    assert nat.mappings() == 1


def test_a_live_flow_keeps_its_state_while_packets_flow() -> None:
    model = SeqRewrite(idle_s=5)
    first = parse_packet(leaving(model.handle(segment(bytes([10, 0, 0, 1]), 4000, SERVER, 80,
                                                      ACK, seq=1000), TO_SERVER, 0.0))[0]).seq
    for second in range(1, 60, 4):  # never 5 s idle
        later = leaving(model.handle(segment(bytes([10, 0, 0, 1]), 4000, SERVER, 80, ACK,
                                             seq=1000), TO_SERVER, float(second)))
        assert parse_packet(later[0]).seq == first


def test_the_flow_table_caps_entries_and_drops_the_least_recently_used() -> None:
    dropped: list[tuple[int, str]] = []
    table: FlowTable[int, str] = FlowTable(idle_s=100, closed_s=1, max_flows=3,
                                           on_drop=lambda k, v, why: dropped.append((k, why)))
    for key in range(3):
        table.put(key, str(key), 0.0)
    assert table.get(0, 1.0) == "0"  # 0 is now the most recently used
    table.put(3, "3", 2.0)
    assert dropped == [(1, "evicted")] and len(table) == 3
    table.observe(2, RST, TO_SERVER, 3.0)
    assert table.is_closed(2) and table.get(2, 3.5) == "2"
    table.sweep(4.0)
    assert dropped[-1] == (2, "closed") and 2 not in table


def test_coalescing_never_builds_a_packet_over_65535_bytes() -> None:
    """Two segments whose payloads just fit max_bytes, but the first has 40 bytes of IP
    options and the second the longest TCP options: joined they would be 65,555 bytes."""
    model = Resegment(mode="coalesce", max_bytes=65455, hold_ms=10)
    client = bytes([10, 0, 0, 1])
    options = (TcpOption(KIND_TIMESTAMPS, bytes([8, 10]) + bytes(8)),
               TcpOption(253, bytes([253, 30]) + bytes(28)))
    first = segment(client, 4000, SERVER, 80, ACK, seq=1000, payload=b"a" * 30000,
                    ip_options=bytes([1]) * 40)
    second = segment(client, 4000, SERVER, 80, ACK | PSH, seq=31000, payload=b"b" * 35455,
                     options=options)
    out = leaving(model.handle(first, TO_SERVER, 0.0) + model.handle(second, TO_SERVER, 0.0))
    assert all(len(raw) <= 65535 for raw in out)
    assert b"".join(parse_packet(raw).payload for raw in out) == b"a" * 30000 + b"b" * 35455
    assert model.stats["dropped:model-error"] == 0
