"""What limited a TCP sender, from the kernel's TCP_INFO: its congestion control, smoothed and
minimum RTT, congestion window, retransmissions, and how the time it had data to send splits
between the receiver's window, its own send buffer and (the rest) its congestion window or
pacing.

    summary = sender_limits(sock)   # {"congestion": "bbr", "srtt_ms": 1.2, ...} or {}

A sender whose busy time is mostly "cwnd_limited" while the path's queue and CPUs had room was
held back by its congestion control's model of the path, not by the path (docs/middleboxes.md,
"Pass-through throughput").
"""

from __future__ import annotations

import socket
import struct
from typing import Any

TCP_INFO = getattr(socket, "TCP_INFO", 11)
TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)
INFO_BYTES = 232  # through tcpi_snd_wnd; older kernels return less and we report less
# Offsets in struct tcp_info (include/uapi/linux/tcp.h): u32 fields, then u64 from 104.
_U32 = {"srtt_us": 68, "snd_cwnd": 80, "total_retrans": 100, "min_rtt_us": 148}
_U64 = {"busy_us": 168, "rwnd_limited_us": 176, "sndbuf_limited_us": 184}


def decode(raw: bytes) -> dict[str, int]:
    """The fields this module uses from a TCP_INFO buffer (those the kernel filled in)."""
    fields = {name: struct.unpack_from("=I", raw, offset)[0]
              for name, offset in _U32.items() if offset + 4 <= len(raw)}
    fields.update({name: struct.unpack_from("=Q", raw, offset)[0]
                   for name, offset in _U64.items() if offset + 8 <= len(raw)})
    return fields


def summarize(fields: dict[str, int], congestion: str) -> dict[str, Any]:
    """Milliseconds and shares of the sender's busy time; the shares are absent when the kernel
    gave no busy time."""
    summary: dict[str, Any] = {"congestion": congestion}
    if "srtt_us" in fields:
        summary["srtt_ms"] = fields["srtt_us"] / 1000
        summary["cwnd"] = fields["snd_cwnd"]
        summary["retransmits"] = fields["total_retrans"]
    if "min_rtt_us" in fields:
        summary["min_rtt_ms"] = fields["min_rtt_us"] / 1000
    busy = fields.get("busy_us", 0)
    if busy > 0 and "sndbuf_limited_us" in fields:
        rwnd, sndbuf = fields["rwnd_limited_us"], fields["sndbuf_limited_us"]
        summary["rwnd_limited"] = rwnd / busy
        summary["sndbuf_limited"] = sndbuf / busy
        summary["cwnd_limited"] = max(0, busy - rwnd - sndbuf) / busy
    return summary


def sender_limits(sock: Any) -> dict[str, Any]:
    """The summary for a connected TCP socket (or anything with its getsockopt); {} when the
    kernel does not say."""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, INFO_BYTES)
        name = sock.getsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, 16)
    except (OSError, AttributeError):
        return {}
    return summarize(decode(raw), name.split(b"\0", 1)[0].decode(errors="replace"))
