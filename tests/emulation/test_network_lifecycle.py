"""A Mininet network comes up without Open vSwitch and leaves nothing behind, whatever happens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from testbed.emulation.cleanup import clean_leftovers
from testbed.emulation.kernel_program import leftover_tags
from testbed.emulation.network import EmulationError, emulated_network
from testbed.emulation.state import HostRecord, load_states, processes_in_netns, processes_of_host
from topologies.line import LineTopo

ROOT = Path(__file__).resolve().parents[2]


def run_hosts(owner: int) -> list[HostRecord]:
    """The hosts recorded by the run of process `owner` (other runs on the machine ignored)."""
    return [host for state in load_states() if state.owner_pid == owner for host in state.hosts]


def leftovers(hosts: list[HostRecord]) -> int:
    """Processes still in those hosts' namespaces (while they are the recorded ones)."""
    total = 0
    for host in hosts:
        with processes_of_host(host) as pids:
            total += len(pids)
    return total


def test_two_hosts_talk_and_nothing_remains() -> None:
    with emulated_network(LineTopo()) as net:
        client, server = net.get("client"), net.get("server")
        assert "1 received" in client.cmd(f"ping -c 1 -W 2 {server.IP()}")
        hosts = run_hosts(os.getpid())
        shells = [h.pid for h in net.hosts]
    assert hosts and leftovers(hosts) == 0  # (other runs on the machine are not counted)
    assert not any(Path(f"/proc/{pid}").exists() for pid in shells)
    assert run_hosts(os.getpid()) == []


def test_daemonized_processes_are_killed_and_errors_still_clean_up() -> None:
    with pytest.raises(RuntimeError, match="experiment failed"), \
            emulated_network(LineTopo()) as net:
        server = net.get("server")
        server.cmd("setsid sleep 300 > /dev/null 2>&1 < /dev/null &")
        inode = os.stat(f"/proc/{server.pid}/ns/net").st_ino
        time.sleep(0.2)
        assert len(processes_in_netns(inode)) >= 2
        raise RuntimeError("experiment failed")
    assert not processes_in_netns(inode)
    assert run_hosts(os.getpid()) == []


def test_a_second_concurrent_run_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulated_network(LineTopo()):  # may wait for another run, if told to
        monkeypatch.setenv("TESTBED_LOCK_WAIT_S", "0")  # the second one must not wait
        with pytest.raises(EmulationError, match="in progress"), emulated_network(LineTopo()):
            pass


RUNNER = textwrap.dedent("""
    import faulthandler, signal, sys, time
    faulthandler.register(signal.SIGUSR1)  # the test asks for a stack dump if it hangs
    sys.path.insert(0, {root!r})
    from testbed.emulation.network import emulated_network
    from topologies.line import LineTopo
    with emulated_network(LineTopo()) as net:
        net.get("server").cmd("setsid sleep 300 > /dev/null 2>&1 < /dev/null &")
        print("up", flush=True)
        time.sleep(60)
""")


def _start_runner() -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", RUNNER.format(root=str(ROOT))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "up"
    time.sleep(0.3)
    return process


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_cleans_up_itself(signum: int) -> None:
    process = _start_runner()
    hosts = run_hosts(process.pid)
    assert leftovers(hosts) > 0
    process.send_signal(signum)
    try:
        _, error = process.communicate(timeout=120)  # generous: a loaded machine is slow
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)  # where is it stuck?
        time.sleep(1)
        process.kill()
        _, error = process.communicate()
        raise AssertionError(f"the run did not end after signal {signum}:\n{error}") from None
    assert leftovers(hosts) == 0 and run_hosts(process.pid) == [], error


def test_clean_leftovers_repairs_a_killed_run() -> None:
    process = _start_runner()
    hosts = run_hosts(process.pid)
    process.kill()
    process.wait(timeout=10)
    assert leftovers(hosts) > 0
    removed = clean_leftovers(process.pid)  # only this run's: other runs may be live or kept
    assert any("killed" in line for line in removed)
    assert f"run-{process.pid}" not in leftover_tags()  # its kernel program went too
    assert leftovers(hosts) == 0 and run_hosts(process.pid) == []


def test_clean_refuses_a_bad_run_id_before_touching_anything(
        capsys: pytest.CaptureFixture[str]) -> None:
    from testbed.cli import main

    before = [state.owner_pid for state in load_states()]
    assert main(["clean", "--run", "0"]) == 2
    assert "--run takes a process id" in capsys.readouterr().err
    assert [state.owner_pid for state in load_states()] == before


def _held_latency_us() -> int:
    import struct

    with open("/dev/cpu_dma_latency", "rb") as device:
        return int(struct.unpack("i", device.read(4))[0])


@pytest.mark.skipif(not Path("/dev/cpu_dma_latency").exists(), reason="no cpu_dma_latency")
def test_idle_cpus_poll_while_the_network_is_up() -> None:
    with emulated_network(LineTopo()):
        assert _held_latency_us() == 0


def test_an_unknown_idle_mode_is_refused_before_anything_starts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTBED_CPU_IDLE", "deep")
    with pytest.raises(EmulationError, match="TESTBED_CPU_IDLE='deep' is not one of"), \
            emulated_network(LineTopo()):
        pass
    assert run_hosts(os.getpid()) == []
