"""The sender's TCP_INFO summary: offsets of struct tcp_info, shares of the busy time, and a
real connection over loopback (no root needed)."""

from __future__ import annotations

import socket
import struct
import threading

from testbed.apps.tcp_info import INFO_BYTES, decode, sender_limits, summarize


def _info(**fields: int) -> bytes:
    raw = bytearray(INFO_BYTES)
    offsets = {"srtt_us": (68, "=I"), "snd_cwnd": (80, "=I"), "total_retrans": (100, "=I"),
               "min_rtt_us": (148, "=I"), "busy_us": (168, "=Q"),
               "rwnd_limited_us": (176, "=Q"), "sndbuf_limited_us": (184, "=Q")}
    for name, value in fields.items():
        offset, form = offsets[name]
        struct.pack_into(form, raw, offset, value)
    return bytes(raw)


def test_fields_are_read_at_the_kernel_offsets() -> None:
    raw = _info(srtt_us=1500, snd_cwnd=40, total_retrans=3, min_rtt_us=70, busy_us=1000,
                rwnd_limited_us=200, sndbuf_limited_us=100)
    assert decode(raw) == {"srtt_us": 1500, "snd_cwnd": 40, "total_retrans": 3,
                           "min_rtt_us": 70, "busy_us": 1000, "rwnd_limited_us": 200,
                           "sndbuf_limited_us": 100}


def test_the_rest_of_the_busy_time_is_the_congestion_windows() -> None:
    summary = summarize(decode(_info(srtt_us=2000, min_rtt_us=80, busy_us=1000,
                                     rwnd_limited_us=200, sndbuf_limited_us=100)), "bbr")
    assert summary["congestion"] == "bbr"
    assert summary["srtt_ms"] == 2.0 and summary["min_rtt_ms"] == 0.08
    assert summary["cwnd_limited"] == 0.7 and summary["rwnd_limited"] == 0.2


def test_an_old_kernels_short_answer_gives_what_it_has() -> None:
    summary = summarize(decode(_info(srtt_us=500)[:104]), "cubic")
    assert summary["srtt_ms"] == 0.5 and "min_rtt_ms" not in summary
    assert "cwnd_limited" not in summary


def test_a_loopback_connection_reports_its_congestion_control() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    received = bytearray()

    def drain() -> None:
        connection, _ = listener.accept()
        with connection:
            while chunk := connection.recv(65536):
                received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with socket.create_connection(listener.getsockname()) as sender:
        sender.sendall(bytes(1 << 20))
        limits = sender_limits(sender)
    reader.join()
    listener.close()
    assert len(received) == 1 << 20
    assert limits["congestion"] and limits["srtt_ms"] > 0 and limits["cwnd"] > 0
    assert 0 <= limits.get("cwnd_limited", 0) <= 1


def test_a_socket_without_tcp_info_gives_nothing() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        assert sender_limits(udp) == {}
