"""Fidelity warnings: a saturated host, processes competing for the cores, a shaped link that
missed its delay or rate. Samples and engine reports are made by hand (no timing here); one
test reads the real /proc to check who counts as this run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

from rich.console import Console

from middleboxes.engines.bridge import Bridge
from testbed.emulation.middlebox_nodes import EngineReport
from testbed.fidelity import (
    FIDELITY_PREFIX,
    Sample,
    host_warnings,
    link_warnings,
    process_times,
    summarise,
)
from testbed.report import print_warnings


def quiet(seconds: float = 1.0) -> Sample:
    return Sample(seconds, busy_cores=0.6, ours_cores=0.5, kernel_cores=0.05,
                  others_cores=0.05, others_by_name={"sshd": 0.05})


def test_a_quiet_host_gives_no_warning() -> None:
    summary = summarise([quiet() for _ in range(10)], cores=2)
    assert summary["busy_cores"] == 0.6 and summary["run_cores"] == 0.5
    assert host_warnings(summary) == []


def test_a_saturated_host_is_named_with_its_share_of_the_run() -> None:
    busy = Sample(1.0, busy_cores=1.95, ours_cores=1.9, kernel_cores=0.05, others_cores=0.0)
    summary = summarise([busy] * 4 + [quiet()] * 6, cores=2)
    (warning,) = host_warnings(summary)
    assert "saturated" in warning and "40% of the run" in warning and "CPU-bound" in warning


def test_competing_processes_are_named_with_the_top_consumers() -> None:
    crowded = Sample(1.0, busy_cores=1.5, ours_cores=0.5, kernel_cores=0.0, others_cores=1.0,
                     others_by_name={"pytest": 0.7, "gcc": 0.3})
    (warning,) = host_warnings(summarise([crowded] * 5, cores=2))
    assert "competed" in warning and "1.00 of 2 cores" in warning
    assert "pytest 0.70" in warning and "gcc 0.30" in warning


def test_a_shaped_link_that_released_packets_late_is_named() -> None:
    on_time = EngineReport("mb1", "link(delay_ms=10)",
                           engine={"delayed": 1000, "delayed-late": 20, "lateness-us": 90_000})
    late = EngineReport("mb2", "link(rate_mbps=100)",
                        engine={"delayed": 1000, "delayed-late": 400, "lateness-us": 2_000_000})
    (warning,) = link_warnings([on_time, late])
    assert warning.startswith("shaped link at middlebox mb2 (link(rate_mbps=100))")
    assert "400 of 1000" in warning and "2.00 ms" in warning


def test_the_engine_counts_a_delayed_packet_late_only_past_a_tenth_of_its_delay() -> None:
    bridge = Bridge.__new__(Bridge)  # no sockets: only the counting is under test
    bridge.counters = Counter()
    bridge._count_lateness(0.0005, 0.010)  # 5% late: on time
    bridge._count_lateness(0.002, 0.010)  # 20% late
    bridge._count_lateness(0.5, 0.0)  # not a shaped delay (ARP, plain forwarding)
    assert bridge.counters["delayed"] == 2 and bridge.counters["delayed-late"] == 1
    assert bridge.counters["lateness-us"] == 2500


def test_this_process_and_its_children_count_as_the_run_and_others_do_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        time.sleep(0.2)
        snapshot = process_times(os.getpid())
        assert os.getpid() in snapshot.ours and child.pid in snapshot.ours
        assert 1 not in snapshot.ours and 1 not in snapshot.kernel
        assert 2 in snapshot.kernel  # kthreadd
    finally:
        child.kill()
        child.wait()


def test_fidelity_warnings_end_the_output_in_their_own_colour() -> None:
    console = Console(record=True, width=120, force_terminal=True)
    print_warnings(console, [FIDELITY_PREFIX + "the host was saturated", "toy warning"])
    lines = console.export_text(clear=False).splitlines()
    assert lines == ["warning: toy warning", "fidelity warning: the host was saturated"]
    assert "\x1b[1;35m" in console.export_text(styles=True)


def test_samples_are_taken_only_while_an_emulated_network_is_up() -> None:
    from testbed.fidelity import HostMonitor, network_up

    idle = HostMonitor(interval_s=0.05)  # waiting for the lock, say
    idle.start()
    time.sleep(0.3)
    assert idle.stop()[0]["samples"] == 0
    measuring = HostMonitor(interval_s=0.05)
    measuring.start()
    with network_up():
        time.sleep(0.3)
    summary, _ = measuring.stop()
    assert summary["samples"] >= 1 and summary["cores"] == os.cpu_count()
