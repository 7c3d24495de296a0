"""Middlebox models, packets in and packets out, no root: one table per model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from middleboxes.base import Delay, Direction, Drop, Forward, Middlebox, MiddleboxConfigError
from middleboxes.link import Link
from middleboxes.nat import Nat
from middleboxes.registry import MODELS, build_model, parse_chain
from middleboxes.resegment import Resegment
from middleboxes.seq_rewrite import SeqRewrite
from middleboxes.strip_options import StripOptions
from packets.ipv4 import IPv4Header
from packets.tcp import ACK, FIN, PSH, SYN, build_packet, checksums_ok, parse_packet
from packets.tcp_options import KIND_MSS, KIND_SACK, KIND_TIMESTAMPS, TcpOption

CLIENT, SERVER = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
MSS = TcpOption(KIND_MSS, bytes([2, 4, 5, 0xB4]))
TIMESTAMPS = TcpOption(KIND_TIMESTAMPS, bytes([8, 10]) + bytes(8))
ENO = TcpOption(69, bytes([69, 3, 0x23]))
TO_SERVER, TO_CLIENT = Direction.TO_SERVER, Direction.TO_CLIENT


def packet(flags: int = ACK, *, to_server: bool = True, seq: int = 1000, ack: int = 5000,
           options: tuple[TcpOption, ...] = (), payload: bytes = b"", port: int = 80) -> bytes:
    src, dst = (CLIENT, SERVER) if to_server else (SERVER, CLIENT)
    sport, dport = (40000, port) if to_server else (port, 40000)
    ip = IPv4Header(20, 0, 0, 1, 0x4000, 64, 6, 0, src, dst)
    return build_packet(ip, src_port=sport, dst_port=dport, seq=seq, ack=ack, flags=flags,
                        window=1000, options=options, payload=payload)


def forwarded(actions: list[object]) -> list[bytes]:
    out = [a.packet for a in actions if isinstance(a, (Forward, Delay))]
    assert all(checksums_ok(raw) for raw in out)  # no model emits a stale checksum
    return out


@pytest.mark.parametrize(
    ("model", "flags", "port", "kept_eno"),
    [
        (StripOptions(on="syn"), SYN, 80, False),
        (StripOptions(on="syn"), SYN | ACK, 80, True),
        (StripOptions(on="synack"), SYN | ACK, 80, False),
        (StripOptions(on="all"), ACK, 80, False),
        (StripOptions(on="syn", ports=(80,)), SYN, 443, True),
        (StripOptions(on="syn", ports=(80,)), SYN, 80, False),
        (StripOptions(on="syn", kinds=(2,)), SYN, 80, True),
    ],
)
def test_strip_options_table(model: StripOptions, flags: int, port: int, kept_eno: bool) -> None:
    raw = packet(flags, options=(MSS, TIMESTAMPS, ENO), port=port)
    (out,) = forwarded(model.handle(raw, TO_SERVER, 0.0))
    kinds = [option.kind for option in parse_packet(out).options]
    assert (69 in kinds) is kept_eno
    assert KIND_TIMESTAMPS in kinds


def test_seq_rewrite_round_trip_restores_numbers_end_to_end() -> None:
    model = SeqRewrite(seed=3)
    (out,) = forwarded(model.handle(packet(seq=1000, payload=b"x"), TO_SERVER, 0.0))
    shifted = parse_packet(out).seq
    assert shifted != 1000
    sack = TcpOption(KIND_SACK, bytes([5, 10]) + (shifted + 1).to_bytes(4, "big")
                     + (shifted + 5).to_bytes(4, "big"))
    reply = packet(ACK, to_server=False, seq=5000, ack=shifted + 1, options=(sack,))
    (back,) = forwarded(model.handle(reply, TO_CLIENT, 0.0))
    parsed = parse_packet(back)
    assert parsed.ack == 1001
    assert parsed.option(KIND_SACK) == bytes([5, 10]) + (1001).to_bytes(4, "big") + (
        1005).to_bytes(4, "big")


def test_resegment_splits_and_the_pieces_reassemble() -> None:
    payload = bytes(range(256)) * 4
    actions = Resegment(max_bytes=100).handle(
        packet(ACK | PSH | FIN, seq=2**32 - 50, payload=payload), TO_SERVER, 0.0)
    pieces = [parse_packet(raw) for raw in forwarded(actions)]
    assert len(pieces) == 11
    assert b"".join(p.payload for p in pieces) == payload
    assert [p.seq for p in pieces] == [(2**32 - 50 + 100 * i) % 2**32 for i in range(11)]
    assert all(not p.flags & (PSH | FIN) for p in pieces[:-1])
    assert pieces[-1].flags & FIN


def test_nat_maps_out_and_back_and_drops_unknown_replies() -> None:
    nat = Nat(public="192.0.2.7", first_port=30000)
    (out,) = forwarded(nat.handle(packet(SYN), TO_SERVER, 0.0))
    outside = parse_packet(out)
    assert outside.ip.src == bytes([192, 0, 2, 7]) and outside.src_port == 30000
    reply = build_packet(outside.ip.__class__(20, 0, 0, 1, 0, 64, 6, 0, SERVER,
                                              bytes([192, 0, 2, 7])),
                         src_port=80, dst_port=30000, seq=1, ack=1, flags=SYN | ACK, window=9)
    (back,) = forwarded(nat.handle(reply, TO_CLIENT, 0.0))
    inside = parse_packet(back)
    assert (inside.ip.dst, inside.dst_port) == (CLIENT, 40000)
    stray = reply[:22] + (30001).to_bytes(2, "big") + reply[24:]
    assert isinstance(nat.handle(stray, TO_CLIENT, 0.0)[0], Drop)


def test_link_loss_rate_is_statistically_right() -> None:
    link = Link(loss=0.05, seed=11)
    raw = packet(payload=b"x")
    drops = sum(isinstance(link.handle(raw, TO_SERVER, 0.0)[0], Drop) for _ in range(10_000))
    assert 400 <= drops <= 600


def test_link_delay_and_jitter_give_delays_in_range() -> None:
    link = Link(delay_ms=10, jitter_ms=2, seed=5)
    delays = [a.seconds for a in link.handle(packet(), TO_SERVER, 0.0) if isinstance(a, Delay)]
    delays += [link.handle(packet(), TO_CLIENT, 0.0)[0].seconds for _ in range(200)]  # type: ignore[union-attr]
    assert all(0.008 <= d <= 0.012 for d in delays)
    assert max(delays) - min(delays) > 0.002


def test_link_rate_limit_serialises_back_to_back_packets() -> None:
    link = Link(rate_mbps=8)  # 1 byte per microsecond
    raw = packet(payload=b"x" * 960)  # 1000 bytes on the wire
    delays = [link.handle(raw, TO_SERVER, 0.0)[0].seconds for _ in range(3)]  # type: ignore[union-attr]
    assert delays == pytest.approx([0.001, 0.002, 0.003])


def test_chain_applies_models_in_path_order_and_adds_delays() -> None:
    chain = parse_chain("strip-options(on=syn),link(delay_ms=5),link(delay_ms=7)")
    actions = chain.handle(packet(SYN, options=(MSS, ENO)), TO_SERVER, 0.0)
    assert len(actions) == 1 and isinstance(actions[0], Delay)
    assert actions[0].seconds == pytest.approx(0.012)
    assert parse_packet(actions[0].packet).option(69) is None
    assert chain.describe() == "strip-options(on=syn),link(delay_ms=5.0),link(delay_ms=7.0)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("teleport", "unknown middlebox"),
        ("link(delay=5)", "unknown parameter"),
        ("link(loss=lots)", "bad value"),
        ("link(loss=2)", "loss must be in 0..1"),
        ("strip-options(on=fin)", "on must be"),
        ("link(delay_ms=5", "unbalanced"),
        ("nat(public=nowhere)", "IPv4 address"),
    ],
)
def test_bad_chains_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(MiddleboxConfigError, match=message):
        parse_chain(text)


def test_chain_syntax_types_values_and_lists() -> None:
    model = build_model("strip-options(on=syn,ports=80|443)")
    assert isinstance(model, StripOptions) and model.ports == (80, 443)
    assert parse_chain("none").describe() == "none"


class Exploding(Middlebox):
    name = "exploding"

    def process(self, packet: object, direction: Direction, now: float) -> list[object]:  # type: ignore[override]
        raise RuntimeError("bug in a model")


def test_a_model_that_raises_drops_the_packet_and_counts_it() -> None:
    model = Exploding()
    (action,) = model.handle(packet(), TO_SERVER, 0.0)
    assert isinstance(action, Drop) and "model-error" in action.reason
    assert model.stats["dropped:model-error"] == 1


@settings(max_examples=100)
@given(st.binary(max_size=80), st.sampled_from(sorted(MODELS)))
def test_garbage_into_any_model_is_dropped_not_raised(data: bytes, name: str) -> None:
    actions = build_model(name).handle(b"\x45" + data, TO_SERVER, 0.0)
    assert all(isinstance(action, (Drop, Forward, Delay)) for action in actions)


def test_proxy_ack_acknowledges_data_to_the_sender_and_forwards_it() -> None:
    from middleboxes.base import Inject
    from middleboxes.proxy_ack import ProxyAck

    model = ProxyAck()
    model.handle(packet(ACK, to_server=False, seq=5000, ack=1000), TO_CLIENT, 0.0)
    data = packet(ACK | PSH, seq=1000, ack=5000, payload=b"hello")
    actions = model.handle(data, TO_SERVER, 0.0)
    assert isinstance(actions[0], Forward) and actions[0].packet == data
    assert isinstance(actions[1], Inject) and actions[1].direction is TO_CLIENT
    ack = parse_packet(actions[1].packet)
    assert checksums_ok(actions[1].packet)
    assert (ack.ip.src, ack.ip.dst, ack.src_port, ack.dst_port) == (SERVER, CLIENT, 80, 40000)
    assert (ack.seq, ack.ack, ack.flags) == (5000, 1005, ACK)
    assert ack.window == 1000 - 5  # the receiver's right edge (ack 1000 + window 1000) kept
    assert len(ProxyAck().handle(packet(SYN), TO_SERVER, 0.0)) == 1


def test_proxy_ack_never_acknowledges_past_a_gap_until_the_receiver_covers_it() -> None:
    from middleboxes.base import Inject
    from middleboxes.proxy_ack import ProxyAck

    model = ProxyAck()
    model.handle(packet(SYN, seq=999), TO_SERVER, 0.0)
    model.handle(packet(SYN | ACK, to_server=False, seq=4999, ack=1000), TO_CLIENT, 0.0)

    def proxied(seq: int) -> list[int]:
        actions = model.handle(packet(ACK, seq=seq, ack=5000, payload=b"x" * 100),
                               TO_SERVER, 0.0)
        assert isinstance(actions[0], Forward)  # the data always goes on
        return [parse_packet(a.packet).ack for a in actions if isinstance(a, Inject)]

    assert proxied(1000) == [1100]
    assert proxied(1200) == []  # 1100..1200 never seen: acking 1300 would free it unseen
    assert proxied(1300) == []
    assert proxied(1000) == []  # a retransmission of what was already acknowledged
    assert proxied(1100) == [1200]  # the gap filled: acknowledged up to its end only
    # the real receiver acknowledges everything it got; the proxy carries on from there
    model.handle(packet(ACK, to_server=False, seq=5000, ack=1400), TO_CLIENT, 0.0)
    assert proxied(1400) == [1500]
    assert model.stats["gap-not-acked"] == 2
