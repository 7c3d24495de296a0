"""The bridge engine's timing, sans-IO: when a frame arrived (from the kernel's receive
stamp), how long to wait before a release time, and the histograms its stats report.

Delays count from the kernel's receive stamp, not from when the Python loop read the frame:
each read asks for SCM_TIMESTAMPNS (CLOCK_REALTIME), turned into the monotonic clock the loop
schedules on. Release times are met by sleeping until SPIN_S before them and then polling the
sockets with a zero timeout: on this machine kind, a timer wake-up (select, clock_nanosleep,
timerfd alike) arrives 50-100 us late even with 1 ns of timer slack, and later under load,
while polling meets the time to a few microseconds for up to SPIN_S of CPU per release. With
more than SPIN_MAX_PENDING packets waiting the path carries bulk data; the loop then sleeps
to the release time itself rather than spin through most of its time.
"""

from __future__ import annotations

import socket
import struct

SO_TIMESTAMPNS = 35  # SCM_TIMESTAMPNS has the same value
STAMP_SPACE = socket.CMSG_SPACE(16)  # a struct timespec
SPIN_S = 0.0003  # sleep until this long before a release time, then poll
SPIN_MAX_PENDING = 16
PLAUSIBLE_S = 0.1  # a stamp further back than this is not the frame's (a clock step)
BUCKETS_US = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def stamped_arrival(ancillary: list[tuple[int, int, bytes]], monotonic_now: float,
                    realtime_now: float) -> float | None:
    """The frame's arrival on the monotonic clock from its SCM_TIMESTAMPNS stamp; None when
    there is no stamp or it is implausible (from the future, or more than 0.1 s old)."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack_from("qq", data)
            arrived: float = monotonic_now - (realtime_now - seconds - nanoseconds / 1e9)
            if monotonic_now - PLAUSIBLE_S < arrived <= monotonic_now + 1e-6:
                return min(arrived, monotonic_now)
    return None


def bucket(name: str, seconds: float) -> str:
    """The stats key of a histogram bucket: `late<=50us`, ..., `late>5000us`."""
    for limit in BUCKETS_US:
        if seconds * 1e6 <= limit:
            return f"{name}<={limit}us"
    return f"{name}>{BUCKETS_US[-1]}us"


def wait_before(timeout: float, release: bool, pending: int) -> float:
    """How long to sleep when the next thing falls due in `timeout` seconds: to SPIN_S
    before a packet's release time (`release`) and not at all within it (poll), unless more
    than SPIN_MAX_PENDING packets wait; other deadlines (retries) are slept to."""
    if not release or pending > SPIN_MAX_PENDING:
        return timeout
    return 0.0 if timeout <= SPIN_S else timeout - SPIN_S
