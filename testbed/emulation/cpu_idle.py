"""Idle CPUs kept polling while an emulated network is up, so that a wake-up costs what the
kernel's own path costs and not what a virtual machine's halted CPU costs.

On this machine kind (a VM whose guest idles through `haltpoll`), a CPU that waited longer
than the guest's polling window halts, and waking it again goes through the hypervisor. A
ping-pong between two processes on different cores, with a 0.3 ms pause between exchanges (a
load generator waiting for its answer), measured a median round trip of 157 us (p90 486 us)
that way, and 36 us (p90 45 us) with idle CPUs polling. Every emulated latency and every
server's wake-up carried that cost, more for the rows that sleep more often, and the CPU time
measured after each wake-up rose with it (cold caches). Holding `/dev/cpu_dma_latency` at 0
is what latency benchmarks do for the same reason (tuned's latency-performance profile): the
kernel then keeps idle CPUs in their polling state, and lets them go when the file is closed
(also when the process dies, so a killed run leaves nothing behind).

`TESTBED_CPU_IDLE=default` measures with the machine's own idle behaviour instead. The mode
used is recorded in each emulated result's environment (`host_cpu.cpu_idle`).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEVICE = Path("/dev/cpu_dma_latency")
VARIABLE = "TESTBED_CPU_IDLE"
MODES = ("poll", "default")


def requested_mode() -> str:
    """The idle mode asked for (`poll` unless TESTBED_CPU_IDLE says otherwise); a value that
    is not a mode is refused with the choices."""
    mode = os.environ.get(VARIABLE, "poll").strip() or "poll"
    if mode not in MODES:
        raise ValueError(f"{VARIABLE}={mode!r} is not one of {', '.join(MODES)}")
    return mode


@contextmanager
def idle_cpus_polling(device: Path = DEVICE) -> Iterator[str]:
    """Hold idle CPUs in their polling state for the duration (when asked for and possible);
    yields a line saying which idle mode the run measured with, and why."""
    mode = requested_mode()
    if mode == "default":
        yield f"default ({VARIABLE}=default)"
        return
    try:
        handle = os.open(device, os.O_WRONLY)
    except OSError as error:
        yield f"default ({device} not writable: {error.strerror})"
        return
    try:
        os.write(handle, struct.pack("i", 0))
        yield f"poll ({device.name} held at 0 while the network was up)"
    finally:
        os.close(handle)
