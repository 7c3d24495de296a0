"""The sans-IO path scheduler in memory: delays, model timers, injections and drops leave at
the time they are due, in order, with no clock and no socket."""

from __future__ import annotations

from middleboxes.base import Direction
from middleboxes.registry import parse_chain
from middleboxes.scheduling import PathScheduler
from packets.ipv4 import IPv4Header
from packets.tcp import ACK, PSH, build_packet, parse_packet

CLIENT, SERVER = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])


def segment(seq: int, payload: bytes = b"", flags: int = ACK, to_server: bool = True,
            ack: int = 5000) -> bytes:
    src, dst = (CLIENT, SERVER) if to_server else (SERVER, CLIENT)
    ports = (40000, 80) if to_server else (80, 40000)
    ip = IPv4Header(20, 0, 0, 1, 0x4000, 64, 6, 0, src, dst)
    return build_packet(ip, src_port=ports[0], dst_port=ports[1], seq=seq, ack=ack,
                        flags=flags, window=1000, payload=payload)


def test_a_delayed_packet_leaves_at_its_deadline_and_not_before() -> None:
    scheduler = PathScheduler(parse_chain("link(delay_ms=10)"))
    assert scheduler.feed(segment(1), Direction.TO_SERVER, now=1.0) == []
    assert scheduler.next_deadline() == 1.01
    assert scheduler.due(1.005) == []
    (release,) = scheduler.due(1.01)
    assert release.direction is Direction.TO_SERVER and release.at == 1.01
    assert parse_packet(release.packet).seq == 1
    assert scheduler.next_deadline() is None


def test_packets_with_equal_deadlines_leave_in_the_order_they_were_fed() -> None:
    scheduler = PathScheduler(parse_chain("link(delay_ms=5)"))
    for seq in (1, 2, 3):
        scheduler.feed(segment(seq), Direction.TO_SERVER, now=0.0)
    assert [parse_packet(r.packet).seq for r in scheduler.due(1.0)] == [1, 2, 3]


def test_a_pass_through_path_forwards_at_once() -> None:
    scheduler = PathScheduler(parse_chain("passthrough"))
    (release,) = scheduler.feed(segment(7), Direction.TO_CLIENT, now=2.0)
    assert release.direction is Direction.TO_CLIENT and release.at == 2.0
    assert scheduler.next_deadline() is None


def test_a_coalescing_model_releases_held_data_on_its_own_timer() -> None:
    scheduler = PathScheduler(parse_chain("resegment(mode=coalesce,max_bytes=1400,hold_ms=5)"))
    assert scheduler.feed(segment(100, b"a" * 10), Direction.TO_SERVER, now=0.0) == []
    assert scheduler.feed(segment(110, b"b" * 10), Direction.TO_SERVER, now=0.001) == []
    assert scheduler.next_deadline() == 0.005
    assert scheduler.due(0.004) == []
    (release,) = scheduler.due(0.005)
    combined = parse_packet(release.packet)
    assert (combined.seq, combined.payload) == (100, b"a" * 10 + b"b" * 10)


def test_timed_releases_then_cross_the_rest_of_the_chain() -> None:
    chain = "resegment(mode=coalesce,max_bytes=1400,hold_ms=5),link(delay_ms=10)"
    scheduler = PathScheduler(parse_chain(chain))
    scheduler.feed(segment(100, b"x" * 10), Direction.TO_SERVER, now=0.0)
    assert scheduler.due(0.005) == []  # released by the coalescer, now crossing the link
    assert scheduler.next_deadline() == 0.015
    (release,) = scheduler.due(0.015)
    assert parse_packet(release.packet).payload == b"x" * 10


def test_injected_packets_leave_in_their_own_direction() -> None:
    scheduler = PathScheduler(parse_chain("proxy-ack"))
    scheduler.feed(segment(1000, flags=0x02), Direction.TO_SERVER, now=0.0)  # SYN
    synack = segment(9000, flags=0x12, to_server=False, ack=1001)
    scheduler.feed(synack, Direction.TO_CLIENT, now=0.0)
    data = segment(1001, b"data", flags=ACK | PSH, ack=9001)
    out = scheduler.feed(data, Direction.TO_SERVER, now=0.1)
    directions = {release.direction for release in out}
    assert Direction.TO_CLIENT in directions  # the proxy's acknowledgement
    assert scheduler.counters["injected"] >= 1


def test_a_malformed_packet_is_dropped_and_counted() -> None:
    scheduler = PathScheduler(parse_chain("passthrough"))
    assert scheduler.feed(b"\x45\x00", Direction.TO_SERVER, now=0.0) == []
    assert sum(v for k, v in scheduler.counters.items() if k.startswith("dropped:")) == 1
