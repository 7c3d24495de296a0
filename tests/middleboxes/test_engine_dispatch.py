"""The engine's handling of super-packets, no root: the virtio-net header, splitting into wire
segments, partial checksums, and what each model sees (its Scope)."""

from __future__ import annotations

import pytest

from middleboxes.base import Direction, Scope
from middleboxes.engines.dispatch import Dispatcher, Outgoing
from middleboxes.engines.vnet import (
    GSO_NONE,
    GSO_TCPV4,
    NEEDS_CSUM,
    PLAIN,
    VnetHeader,
    completed,
    outgoing,
    split_super_packet,
)
from middleboxes.registry import parse_chain
from packets.tcp import ACK, FIN, PSH, SYN, checksums_ok, parse_packet
from tests.middleboxes.test_models import TIMESTAMPS, packet

MSS = 1448
SUPER = VnetHeader(NEEDS_CSUM, GSO_TCPV4, 66, MSS, 34, 16).to_bytes()
TO_SERVER, TO_CLIENT = Direction.TO_SERVER, Direction.TO_CLIENT


def super_packet(segments: int = 45, seq: int = 1001, flags: int = ACK | PSH) -> bytes:
    payload = bytes(i % 251 for i in range(MSS * segments - 100))  # a short last segment
    return packet(flags, options=(TIMESTAMPS,), payload=payload, seq=seq)


def wire(out: Outgoing) -> list[bytes]:
    """The wire segments the kernel makes of an outgoing packet, checksums completed."""
    header = VnetHeader.parse(out.header)
    pieces = (split_super_packet(out.packet, header.gso_size) if header.is_super_packet
              else [out.packet])
    if header.is_super_packet:
        header = VnetHeader(NEEDS_CSUM, GSO_NONE, 0, 0, header.csum_start, header.csum_offset)
    return [completed(header, piece) for piece in pieces]


def test_header_round_trips() -> None:
    header = VnetHeader.parse(SUPER)
    assert header.is_super_packet and header.gso_size == MSS
    assert header.to_bytes() == SUPER
    assert not VnetHeader.parse(PLAIN).is_super_packet


def test_split_cuts_like_tcp_segmentation() -> None:
    big = super_packet(flags=ACK | PSH | FIN)
    pieces = split_super_packet(big, MSS)
    parsed = [parse_packet(completed(VnetHeader(NEEDS_CSUM, 0, 0, 0, 34, 16), p))
              for p in pieces]
    assert len(pieces) == 45
    assert b"".join(p.payload for p in parsed) == parse_packet(big).payload
    assert [p.seq for p in parsed] == [1001 + i * MSS for i in range(45)]
    assert [p.ip.identification for p in parsed] == [1 + i for i in range(45)]
    assert all(p.flags == ACK for p in parsed[:-1]) and parsed[-1].flags == ACK | PSH | FIN
    assert all(len(p.payload) == MSS for p in parsed[:-1])
    assert all(checksums_ok(p.raw) for p in parsed)
    assert all(p.options_raw == parse_packet(big).options_raw for p in parsed)


def test_outgoing_makes_long_packets_super_packets_with_a_partial_checksum() -> None:
    big = super_packet()
    header, fixed = outgoing(big, 1500, MSS)
    parsed = VnetHeader.parse(header)
    assert (parsed.flags, parsed.gso_type, parsed.gso_size) == (NEEDS_CSUM, GSO_TCPV4, MSS)
    assert (parsed.csum_start, parsed.csum_offset, parsed.hdr_len) == (34, 16, 14 + 20 + 32)
    assert not checksums_ok(fixed)  # partial until the kernel completes it
    assert checksums_ok(completed(parsed, fixed))
    small_header, small = outgoing(packet(SYN), 1500, MSS)
    assert VnetHeader.parse(small_header).gso_type == GSO_NONE
    assert checksums_ok(completed(VnetHeader.parse(small_header), small))


@pytest.mark.parametrize(("path", "scope"), [
    ("none", Scope.NOTHING), ("passthrough", Scope.NOTHING),
    ("strip-options(on=syn)", Scope.CONTROL), ("strip-options(on=all)", Scope.PACKETS),
    ("nat", Scope.PACKETS), ("seq-rewrite", Scope.PACKETS), ("link(delay_ms=5)", Scope.PACKETS),
    ("link(loss=0.01)", Scope.SEGMENTS), ("link(delay_ms=5,rate_mbps=10)", Scope.SEGMENTS),
    ("proxy-ack", Scope.SEGMENTS), ("resegment(max_bytes=500)", Scope.SEGMENTS),
    ("strip-options(on=syn),proxy-ack", Scope.SEGMENTS),
])
def test_each_model_declares_what_it_must_see(path: str, scope: Scope) -> None:
    assert parse_chain(path).needs() is scope


def test_a_handshake_model_leaves_data_unparsed_and_unchanged() -> None:
    dispatcher = Dispatcher(parse_chain("strip-options(on=syn)"))
    big = super_packet()
    (out,) = dispatcher.tcp(SUPER, big, TO_SERVER, 0.0)
    assert (out.header, out.packet) == (SUPER, big)
    assert dispatcher.model.stats["seen"] == 0
    syn = packet(SYN, options=(TIMESTAMPS,))
    (edited,) = dispatcher.tcp(PLAIN, syn, TO_SERVER, 0.0)
    assert dispatcher.model.stats["seen"] == 1
    assert checksums_ok(completed(VnetHeader.parse(edited.header), edited.packet))


def test_loss_drops_one_percent_of_wire_segments_not_of_super_packets() -> None:
    dispatcher = Dispatcher(parse_chain("link(loss=0.01,seed=11)"))
    sent = 0
    for index in range(200):
        for out in dispatcher.tcp(SUPER, super_packet(seq=1001 + index * 45 * MSS),
                                  TO_SERVER, 0.0):
            sent += len(wire(out))
    segments = 200 * 45
    assert dispatcher.counters["segments-from-splits"] == segments
    assert 0.005 <= (segments - sent) / segments <= 0.016
    # super-packets that lost no segment left whole (the kernel segments them)
    assert 0 < dispatcher.counters["super-packets-kept"] < 200


HANDSHAKE_FIRST = ["nat", "seq-rewrite(seed=3)", "strip-options(on=all)", "passthrough",
                   "strip-options(on=syn)", "link(delay_ms=5)", "proxy-ack",
                   "resegment(max_bytes=500)",
                   "resegment(max_bytes=500),resegment(mode=coalesce,max_bytes=1200)",
                   "link(delay_ms=1,jitter_ms=0.5,duplicate=0.05,seed=2)"]


def _carried(path: str, as_super_packets: bool) -> tuple[bytes, list[bytes]]:
    """The data the server side receives (in sequence order, duplicates removed) and every
    wire segment sent, for a handshake then 3 super-packets' worth of data."""
    dispatcher = Dispatcher(parse_chain(path))
    outs = dispatcher.tcp(PLAIN, packet(SYN, options=(TIMESTAMPS,), seq=1000), TO_SERVER, 0.0)
    outs += dispatcher.tcp(PLAIN, packet(SYN | ACK, to_server=False, seq=4999, ack=1001,
                                         options=(TIMESTAMPS,)), TO_CLIENT, 0.0)
    for index in range(3):
        big = super_packet(segments=10, seq=1001 + index * 10 * MSS - index * 100)
        if as_super_packets:
            outs += dispatcher.tcp(SUPER, big, TO_SERVER, 0.1)
        else:
            for piece in split_super_packet(big, MSS):
                header = VnetHeader(NEEDS_CSUM, GSO_NONE, 66, 0, 34, 16).to_bytes()
                outs += dispatcher.tcp(header, piece, TO_SERVER, 0.1)
    outs += dispatcher.released(10.0)
    segments = [segment for out in outs if out.direction is TO_SERVER for segment in wire(out)]
    data: dict[int, bytes] = {}
    for segment in segments:
        parsed = parse_packet(segment)
        if parsed.payload:
            data.setdefault(parsed.seq, parsed.payload)
    return b"".join(data[seq] for seq in sorted(data)), segments


@pytest.mark.parametrize("path", HANDSHAKE_FIRST)
def test_every_model_carries_the_same_data_from_super_packets_and_wire_segments(
        path: str) -> None:
    from_super, super_segments = _carried(path, as_super_packets=True)
    from_wire, wire_segments = _carried(path, as_super_packets=False)
    assert from_super == from_wire
    assert len(from_super) == 3 * (10 * MSS - 100)
    assert all(checksums_ok(segment) for segment in super_segments + wire_segments)
    assert all(len(segment) <= 1500 for segment in super_segments + wire_segments)


def test_proxy_ack_acknowledges_each_wire_segment_while_the_super_packet_leaves_whole() -> None:
    dispatcher = Dispatcher(parse_chain("proxy-ack"))
    dispatcher.tcp(PLAIN, packet(SYN, options=(TIMESTAMPS,), seq=1000), TO_SERVER, 0.0)
    dispatcher.tcp(PLAIN, packet(SYN | ACK, to_server=False, seq=4999, ack=1001,
                                 options=(TIMESTAMPS,)), TO_CLIENT, 0.0)
    big = super_packet(segments=10)
    outs = dispatcher.tcp(SUPER, big, TO_SERVER, 0.0)
    to_server = [out for out in outs if out.direction is TO_SERVER]
    acks = [parse_packet(completed(VnetHeader.parse(out.header), out.packet))
            for out in outs if out.direction is TO_CLIENT]
    assert [(out.header, out.packet) for out in to_server] == [(SUPER, big)]
    assert [ack.ack for ack in acks] == [min(1001 + (i + 1) * MSS, 1001 + 10 * MSS - 100)
                                         for i in range(10)]
    assert all(checksums_ok(ack.raw) for ack in acks)
    assert dispatcher.counters["super-packets-kept"] == 1


def test_a_segment_the_chain_drops_splits_its_super_packet_and_the_rest_still_leave() -> None:
    dispatcher = Dispatcher(parse_chain("link(loss=0.3,seed=1)"))
    big = super_packet(segments=10)
    outs = dispatcher.tcp(SUPER, big, TO_SERVER, 0.0)
    kept = [parse_packet(segment) for out in outs for segment in wire(out)]
    assert 0 < len(kept) < 10  # some of the ten lost, the others sent one by one
    assert all(len(p.payload) <= MSS and checksums_ok(p.raw) for p in kept)
    assert [p.seq for p in kept] == sorted(p.seq for p in kept)
