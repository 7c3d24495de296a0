"""resegment(mode=coalesce), packets in and packets out, no root: what is combined, what
flushes held data (size, PSH/FIN, a gap, a pure ACK, the hold timer), and that the bytes and
sequence numbers survive; a chain passes a timer-released packet through the models after it."""

from __future__ import annotations

import pytest

from middleboxes.base import Delay, Direction, Forward, MiddleboxConfigError
from middleboxes.registry import parse_chain
from middleboxes.resegment import Resegment
from packets.tcp import ACK, FIN, PSH, RST, SYN, build_packet, checksums_ok, parse_packet
from packets.tcp_options import KIND_TIMESTAMPS, TcpOption
from tests.middleboxes.test_models import CLIENT, SERVER, packet

TO_SERVER, TO_CLIENT = Direction.TO_SERVER, Direction.TO_CLIENT


def data(seq: int, size: int, flags: int = ACK, ack: int = 5000, to_server: bool = True) -> bytes:
    return packet(flags, seq=seq, ack=ack, payload=bytes([seq % 251]) * size,
                  to_server=to_server)


def sent(actions: list[object]) -> list[tuple[int, int, int]]:
    """(seq, payload length, flags) of what leaves; checksums checked."""
    out = [a.packet for a in actions if isinstance(a, (Forward, Delay))]
    assert all(checksums_ok(raw) for raw in out)
    return [(p.seq, len(p.payload), p.flags) for p in map(parse_packet, out)]


# Each case: segments (seq, size, flags) fed in order to the client->server direction, what
# leaves after each one, with max_bytes=1000.
CASES = {
    "two small segments combine, the third would overflow": (
        [(1000, 300, ACK), (1300, 300, ACK), (1600, 500, ACK | PSH)],
        [[], [], [(1000, 600, ACK), (1600, 500, ACK | PSH)]],
    ),
    "reaching max_bytes flushes at once": (
        [(1000, 400, ACK), (1400, 600, ACK)],
        [[], [(1000, 1000, ACK)]],
    ),
    "PSH joins and flushes, keeping PSH": (
        [(1000, 300, ACK), (1300, 200, ACK | PSH)],
        [[], [(1000, 500, ACK | PSH)]],
    ),
    "FIN joins and flushes, keeping FIN": (
        [(1000, 300, ACK), (1300, 200, ACK | FIN)],
        [[], [(1000, 500, ACK | FIN)]],
    ),
    "a gap flushes the held data; the next segment is forwarded alone": (
        [(1000, 300, ACK), (2000, 300, ACK | PSH)],
        [[], [(1000, 300, ACK), (2000, 300, ACK | PSH)]],
    ),
    "a retransmission (going back) flushes and passes unchanged": (
        [(1000, 300, ACK), (1300, 300, ACK), (1000, 300, ACK | PSH)],
        [[], [], [(1000, 600, ACK), (1000, 300, ACK | PSH)]],
    ),
    "a pure ACK never overtakes held data": (
        [(1000, 300, ACK), (1300, 0, ACK)],
        [[], [(1000, 300, ACK), (1300, 0, ACK)]],
    ),
    "RST flushes and passes": (
        [(1000, 300, ACK), (1300, 0, RST | ACK)],
        [[], [(1000, 300, ACK), (1300, 0, RST | ACK)]],
    ),
    "a full-size segment passes unchanged (coalescing never splits)": (
        [(1000, 1400, ACK)],
        [[(1000, 1400, ACK)]],
    ),
    "a lone PSH segment is not held": (
        [(1000, 10, ACK | PSH)],
        [[(1000, 10, ACK | PSH)]],
    ),
    "sequence numbers wrap": (
        [(2**32 - 100, 300, ACK), (200, 300, ACK | PSH)],
        [[], [(2**32 - 100, 600, ACK | PSH)]],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_coalesce_table(case: str) -> None:
    segments, expected = CASES[case]
    model = Resegment(mode="coalesce", max_bytes=1000)
    for (seq, size, flags), leaves in zip(segments, expected, strict=True):
        assert sent(model.handle(data(seq, size, flags), TO_SERVER, 0.0)) == leaves
    assert model.next_timer() is None  # nothing left held


def test_coalesced_segment_carries_the_bytes_and_the_latest_ack_window_and_timestamps() -> None:
    model = Resegment(mode="coalesce", max_bytes=1000)
    ts_old = TcpOption(KIND_TIMESTAMPS, bytes([8, 10]) + (1).to_bytes(4, "big") + bytes(4))
    ts_new = TcpOption(KIND_TIMESTAMPS, bytes([8, 10]) + (2).to_bytes(4, "big") + bytes(4))
    first = packet(ACK, seq=1000, ack=5000, payload=b"a" * 300, options=(ts_old,))
    second = packet(ACK | PSH, seq=1300, ack=5600, payload=b"b" * 200, options=(ts_new,))
    assert model.handle(first, TO_SERVER, 0.0) == []
    (action,) = model.handle(second, TO_SERVER, 0.0)
    assert isinstance(action, Forward) and checksums_ok(action.packet)
    out = parse_packet(action.packet)
    assert out.payload == b"a" * 300 + b"b" * 200
    assert (out.seq, out.ack, out.flags) == (1000, 5600, ACK | PSH)
    assert out.option(KIND_TIMESTAMPS) == ts_new.raw
    assert model.stats["coalesced-segments"] == 1


def test_held_data_leaves_when_the_hold_timer_expires() -> None:
    model = Resegment(mode="coalesce", max_bytes=1000, hold_ms=2)
    assert model.handle(data(1000, 300), TO_SERVER, 10.0) == []
    assert model.handle(data(1300, 300), TO_SERVER, 10.001) == []
    assert model.next_timer() == pytest.approx(10.002)
    assert model.release(10.0015) == []
    ((direction, action),) = model.release(10.002)
    assert direction is TO_SERVER and sent([action]) == [(1000, 600, ACK)]
    assert model.next_timer() is None


def test_directions_and_flows_are_held_apart() -> None:
    model = Resegment(mode="coalesce", max_bytes=1000)
    assert model.handle(data(1000, 300), TO_SERVER, 0.0) == []
    assert model.handle(data(7000, 300, to_server=False), TO_CLIENT, 0.0) == []
    assert model.handle(data(1300, 300, ACK | PSH), TO_SERVER, 0.0) != []
    ((direction, action),) = model.release(1.0)
    assert direction is TO_CLIENT and sent([action]) == [(7000, 300, ACK)]


def test_syn_passes_and_is_never_held() -> None:
    model = Resegment(mode="coalesce", max_bytes=1000)
    assert sent(model.handle(packet(SYN, seq=1), TO_SERVER, 0.0)) == [(1, 0, SYN)]


def test_a_chain_passes_released_packets_through_the_models_after_the_coalescer() -> None:
    chain = parse_chain("resegment(mode=coalesce,max_bytes=1000,hold_ms=1),link(delay_ms=5)")
    assert chain.holds_packets()
    assert chain.handle(data(1000, 300), TO_SERVER, 0.0) == []
    assert chain.next_timer() == pytest.approx(0.001)
    ((direction, action),) = chain.release(0.001)
    assert direction is TO_SERVER and isinstance(action, Delay)
    assert action.seconds == pytest.approx(0.005)
    # to the client the link comes first (5 ms), then the coalescer holds (1 ms more)
    reply = build_packet(parse_packet(data(1, 1)).ip.__class__(
        20, 0, 0, 1, 0x4000, 64, 6, 0, SERVER, CLIENT), src_port=80, dst_port=40000,
        seq=9000, ack=1300, flags=ACK, window=100, payload=b"z" * 100)
    assert chain.handle(reply, TO_CLIENT, 0.0) == []
    assert chain.next_timer() == pytest.approx(0.006)
    ((direction, action),) = chain.release(0.006)
    assert direction is TO_CLIENT and isinstance(action, Forward)


def test_split_then_coalesce_keeps_the_byte_stream() -> None:
    chain = parse_chain("resegment(max_bytes=500),resegment(mode=coalesce,max_bytes=1200)")
    stream = bytes(range(256)) * 12
    out: list[bytes] = []
    for index in range(2):
        payload = stream[index * 1448 : (index + 1) * 1448]
        raw = packet(ACK, seq=1000 + index * 1448, payload=payload)
        out += [a.packet for a in chain.handle(raw, TO_SERVER, 0.0) if isinstance(a, Forward)]
    out += [a.packet for _, a in chain.release(1.0) if isinstance(a, Forward)]
    pieces = [parse_packet(raw) for raw in out]
    assert [len(p.payload) for p in pieces] == [1000, 948, 948]
    assert b"".join(p.payload for p in pieces) == stream[: 2 * 1448]
    assert [p.seq for p in pieces] == [1000, 2000, 2948]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("resegment(mode=merge)", "mode must be"),
        ("resegment(mode=coalesce,max_bytes=0)", "max_bytes must be"),
        ("resegment(mode=coalesce,max_bytes=70000)", "max_bytes must be"),
        ("resegment(mode=coalesce,hold_ms=0)", "hold_ms must be"),
        ("resegment(mode=coalesce,hold_ms=5000)", "hold_ms must be"),
        ("resegment(max_bytes=500,hold_ms=3)", "mode=coalesce only"),
        ("resegment(mode=coalesce,max_bytes=1)", "max_bytes >= 2"),
    ],
)
def test_bad_coalesce_parameters_are_refused_before_anything_runs(text: str,
                                                                  message: str) -> None:
    with pytest.raises(MiddleboxConfigError, match=message):
        parse_chain(text)


def test_coalesce_describes_itself_in_the_chain_syntax() -> None:
    text = "resegment(mode=coalesce,max_bytes=3000,hold_ms=2.0)"
    assert parse_chain(text).describe() == text
    assert parse_chain("resegment(max_bytes=500)").describe() == "resegment(max_bytes=500)"
