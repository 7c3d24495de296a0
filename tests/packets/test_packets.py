"""IPv4/TCP codec: known bytes, option editing with valid checksums, strict parsing."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packets.checksum import internet_checksum
from packets.errors import MalformedPacket
from packets.ipv4 import IPv4Header
from packets.tcp import (
    ACK,
    SYN,
    build_packet,
    checksums_ok,
    fix_checksums,
    nop_tcp_options,
    parse_packet,
    rebuild,
    remove_tcp_options,
    set_tcp_option,
)
from packets.tcp_options import KIND_MSS, KIND_SACK_PERMITTED, TcpOption, parse_options


def reference_checksum(data: bytes) -> int:
    """Word by word, as RFC 1071 describes it: independent of the codec's big-integer trick."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def reference_tcp_checksum_ok(packet: bytes) -> bool:
    ihl = (packet[0] & 0x0F) * 4
    total = int.from_bytes(packet[2:4], "big")
    segment = packet[ihl:total]
    pseudo = packet[12:20] + b"\x00\x06" + len(segment).to_bytes(2, "big")
    return reference_checksum(pseudo + segment) == 0 and reference_checksum(packet[:ihl]) == 0


IP = IPv4Header(20, 0, 0, 0x1234, 0x4000, 64, 6, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
MSS = TcpOption(KIND_MSS, bytes([2, 4, 0x05, 0xB4]))
SACK_OK = TcpOption(KIND_SACK_PERMITTED, bytes([4, 2]))
ENO = TcpOption(69, bytes([69, 3, 0x23]))


def syn() -> bytes:
    return build_packet(IP, src_port=40000, dst_port=80, seq=1000, ack=0, flags=SYN,
                        window=64240, options=[MSS, SACK_OK])


@given(st.binary(max_size=3000))
def test_checksum_matches_the_word_by_word_reference(data: bytes) -> None:
    assert internet_checksum(data) == reference_checksum(data)


def test_built_syn_has_the_expected_bytes_and_checksums() -> None:
    packet = syn()
    assert len(packet) == 20 + 20 + 8
    assert packet[:4] == bytes([0x45, 0, 0, 48])
    assert packet[20:24] == struct.pack(">HH", 40000, 80)
    assert packet[32] == (28 // 4) << 4 and packet[33] == SYN
    assert packet[40:48] == bytes([2, 4, 5, 0xB4, 4, 2, 0, 0])
    assert reference_tcp_checksum_ok(packet) and checksums_ok(packet)


def test_parse_returns_the_fields() -> None:
    parsed = parse_packet(syn())
    assert (parsed.src_port, parsed.dst_port, parsed.seq, parsed.flags) == (40000, 80, 1000, SYN)
    assert parsed.is_syn() and not parsed.is_synack()
    assert parsed.options == [MSS, SACK_OK]
    assert parsed.option(KIND_MSS) == MSS.raw


def test_adding_and_removing_an_option_keeps_checksums_valid() -> None:
    with_eno = set_tcp_option(parse_packet(syn()), ENO)
    assert reference_tcp_checksum_ok(with_eno)
    parsed = parse_packet(with_eno)
    assert parsed.option(69) == ENO.raw and parsed.header_length == 32
    without = remove_tcp_options(parsed, [69])
    assert reference_tcp_checksum_ok(without)
    assert parse_packet(without).options == [MSS, SACK_OK]


def test_nopping_an_option_keeps_the_header_length_offsets_and_padding() -> None:
    padded = build_packet(IP, src_port=40000, dst_port=80, seq=1000, ack=0, flags=SYN,
                          window=64240, options=[MSS, ENO, SACK_OK], payload=b"data")
    parsed = parse_packet(padded)
    nopped = nop_tcp_options(parsed, [69])
    assert len(nopped) == len(padded) and reference_tcp_checksum_ok(nopped)
    after = parse_packet(nopped)
    assert after.header_length == parsed.header_length and after.options == [MSS, SACK_OK]
    start = 20 + 20
    assert nopped[start + 4 : start + 7] == b"\x01\x01\x01"  # ENO's 3 bytes, where it was
    assert nopped[start + 7 : start + 9] == SACK_OK.raw  # the next option did not move
    assert nopped[start + 9 : start + 12] == padded[start + 9 : start + 12]  # its padding
    assert after.payload == b"data"
    assert nop_tcp_options(parsed, [30]) == padded  # nothing of that kind: unchanged


def test_payload_and_sequence_rewrites_keep_checksums_valid() -> None:
    data = build_packet(IP, src_port=1, dst_port=2, seq=5, ack=7, flags=ACK, window=9,
                        payload=b"odd-length payload!")
    shifted = rebuild(parse_packet(data), seq=2**32 + 4, payload=b"other")
    assert reference_tcp_checksum_ok(shifted)
    assert parse_packet(shifted).seq == 4 and parse_packet(shifted).payload == b"other"


def test_fix_checksums_repairs_a_corrupted_checksum() -> None:
    broken = bytearray(syn())
    broken[36] ^= 0xFF
    assert not checksums_ok(bytes(broken))
    assert fix_checksums(broken) == syn()


def test_options_that_do_not_fit_are_refused() -> None:
    big = TcpOption(254, bytes([254, 36]) + b"x" * 34)
    with pytest.raises(ValueError):
        set_tcp_option(parse_packet(syn()), big)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda p: p[:19], "ipv4-truncated"),
        (lambda p: b"\x65" + p[1:], "ipv4-bad-version"),
        (lambda p: b"\x44" + p[1:], "ipv4-bad-ihl"),
        (lambda p: p[:2] + b"\x01\x00" + p[4:], "ipv4-bad-length"),
        (lambda p: p[:9] + b"\x11" + p[10:], "not-tcp"),
        (lambda p: p[:6] + b"\x20\x00" + p[8:], "ipv4-fragment"),
        (lambda p: p[:2] + b"\x00\x1e" + p[4:30], "tcp-truncated"),
        (lambda p: p[:32] + b"\xf0" + p[33:], "tcp-bad-offset"),
        (lambda p: p[:40] + b"\x02\x09" + p[42:], "tcp-option-bad-length"),
    ],
)
def test_malformed_packets_name_their_reason(mutate: object, reason: str) -> None:
    with pytest.raises(MalformedPacket) as caught:
        parse_packet(mutate(syn()))  # type: ignore[operator]
    assert caught.value.reason == reason


def test_every_truncation_is_refused_cleanly() -> None:
    packet = syn()
    for end in range(len(packet)):
        with pytest.raises(MalformedPacket):
            parse_packet(packet[:end])


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_random_bytes_only_raise_malformed_packet(data: bytes) -> None:
    with contextlib.suppress(MalformedPacket):
        parse_packet(b"\x45" + data)


@given(st.binary(max_size=40))
def test_option_parser_only_raises_malformed_packet(raw: bytes) -> None:
    with contextlib.suppress(MalformedPacket):
        parse_options(raw)


@given(st.binary(min_size=0, max_size=3000), st.integers(0, 2**32 - 1),
       st.integers(0, 2**32 - 1), st.integers(1, 65535), st.integers(1, 65535),
       st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4))
def test_patched_fields_keep_checksums_valid_and_equal_a_rebuild(
        payload: bytes, seq: int, ack: int, sport: int, dport: int, src: bytes,
        dst: bytes) -> None:
    from dataclasses import replace

    from packets.patch import patch_fields

    original = parse_packet(build_packet(
        IPv4Header(20, 0, 0, 7, 0x4000, 64, 6, 0, bytes(4), bytes([10, 0, 0, 2])),
        src_port=40000, dst_port=80, seq=1, ack=2, flags=ACK, window=100, payload=payload))
    patched = patch_fields(original, src=src, dst=dst, src_port=sport, dst_port=dport,
                           seq=seq, ack=ack)
    assert checksums_ok(patched)
    ip = replace(original.ip, src=src, dst=dst)
    assert patched == rebuild(original, ip=ip, src_port=sport, dst_port=dport, seq=seq, ack=ack)
