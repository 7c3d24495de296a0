"""tcpcrypt-mitm in memory: two real tcpcrypt endpoints connected through the model by real
packets establish two sessions with different session IDs, and data crosses both ways intact
even when frames span segments; retransmissions get the same bytes, gaps are dropped, flows
without ENO pass untouched."""

from __future__ import annotations

import os

from middleboxes.base import Direction, Drop, Forward
from middleboxes.tcpcrypt_mitm import TcpcryptMitm
from packets.ipv4 import IPv4Header
from packets.tcp import ACK, PSH, SYN, build_packet, checksums_ok, parse_packet
from packets.tcp_options import TcpOption
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.events import DataReceived
from tcpcrypt.randomness import seeded_random

CLIENT, SERVER = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
CLIENT_ISN, SERVER_ISN = 1000, 0xFFFFFF00  # the server's wraps around 2**32
SEGMENT = 100


def raw(flags: int, *, to_server: bool, seq: int, option: bytes | None = None,
        payload: bytes = b"") -> bytes:
    src, dst = (CLIENT, SERVER) if to_server else (SERVER, CLIENT)
    ports = (40000, 80) if to_server else (80, 40000)
    ip = IPv4Header(20, 0, 0, 1, 0x4000, 64, 6, 0, src, dst)
    options = [TcpOption(option[0], option)] if option else []
    return build_packet(ip, src_port=ports[0], dst_port=ports[1], seq=seq, ack=0,
                        flags=flags, window=1000, options=options, payload=payload)


def through(model: TcpcryptMitm, packet: bytes, to_server: bool) -> bytes:
    direction = Direction.TO_SERVER if to_server else Direction.TO_CLIENT
    (action,) = model.handle(packet, direction, 0.0)
    assert isinstance(action, Forward)
    assert checksums_ok(action.packet)
    return action.packet


class Stream:
    """One direction's sender position, cut into segments of SEGMENT bytes."""

    def __init__(self, isn: int, to_server: bool) -> None:
        self.next_seq, self.to_server = isn + 1, to_server

    def segments(self, data: bytes) -> list[bytes]:
        out = []
        for start in range(0, len(data), SEGMENT):
            out.append(raw(ACK | PSH, to_server=self.to_server, seq=self.next_seq % (1 << 32),
                           payload=data[start : start + SEGMENT]))
            self.next_seq += len(data[start : start + SEGMENT])
        return out


def received(connection: TcpcryptConnection) -> bytes:
    data = b""
    while (event := connection.next_event()) is not None:
        if isinstance(event, DataReceived):
            data += event.data
    return data


def handshake(model: TcpcryptMitm) -> tuple[TcpcryptConnection, TcpcryptConnection,
                                            Stream, Stream]:
    client = TcpcryptConnection(active=True, random=seeded_random(1))
    server = TcpcryptConnection(active=False, random=seeded_random(2))
    syn = parse_packet(through(model, raw(SYN, to_server=True, seq=CLIENT_ISN,
                                          option=client.syn_option()), True))
    server.on_syn(syn.option(69))
    synack = parse_packet(through(model, raw(SYN | ACK, to_server=False, seq=SERVER_ISN,
                                             option=server.synack_option()), False))
    client.on_synack(synack.option(69))
    up, down = Stream(CLIENT_ISN, True), Stream(SERVER_ISN, False)
    ack = parse_packet(through(model, raw(ACK, to_server=True, seq=up.next_seq,
                                          option=client.ack_option()), True))
    server.on_ack(ack.option(69))
    for segment in up.segments(client.data_to_send()):  # Init1
        server.receive(parse_packet(through(model, segment, True)).payload)
    for segment in down.segments(server.data_to_send()):  # Init2
        client.receive(parse_packet(through(model, segment, False)).payload)
    return client, server, up, down


def test_two_sessions_with_different_ids_and_data_intact_both_ways() -> None:
    model = TcpcryptMitm()
    client, server, up, down = handshake(model)
    assert client.state is server.state is ConnectionState.ESTABLISHED
    assert client.session_id != server.session_id
    assert model.session_ids == [(client.session_id, server.session_id)]
    received(client), received(server)
    request, answer = os.urandom(5000), os.urandom(7000)
    client.send(request)
    for segment in up.segments(client.data_to_send()):  # frames span several segments
        server.receive(parse_packet(through(model, segment, True)).payload)
    server.send(answer)
    for segment in down.segments(server.data_to_send()):
        client.receive(parse_packet(through(model, segment, False)).payload)
    assert received(server) == request and received(client) == answer
    assert model.stats["plaintext_bytes"] > len(request) + len(answer)


def test_a_retransmission_gets_the_same_bytes_and_a_gap_is_dropped() -> None:
    model = TcpcryptMitm()
    client, server, up, _ = handshake(model)
    client.send(b"x" * 300)
    first, second, third, _fourth = up.segments(client.data_to_send())
    once = through(model, first, True)
    assert through(model, first, True) == once
    (action,) = model.handle(third, Direction.TO_SERVER, 0.0)  # second is missing
    assert isinstance(action, Drop)
    through(model, second, True)
    through(model, third, True)


def test_a_flow_without_eno_passes_untouched() -> None:
    model = TcpcryptMitm()
    syn = raw(SYN, to_server=True, seq=CLIENT_ISN)
    assert through(model, syn, True) == syn
    data = raw(ACK | PSH, to_server=True, seq=CLIENT_ISN + 1, payload=b"GET / HTTP/1.0\r\n")
    assert through(model, data, True) == data
