"""Builds a Mininet network from a topology without Open vSwitch and always tears it down."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from testbed.emulation.cleanup import kill_run
from testbed.emulation.cpu_idle import idle_cpus_polling, requested_mode
from testbed.emulation.kernel_program import run_program
from testbed.emulation.middlebox_nodes import start_middleboxes, stop_middleboxes
from testbed.emulation.state import STATE_DIR, HostRecord, RunState, netns_cookie, netns_inode
from testbed.fidelity import network_up, note_cpu_idle, note_engine_reports


class EmulationError(RuntimeError):
    """The emulation cannot run here (not root, Mininet missing, another run active)."""


def _require_root_and_mininet() -> None:
    if os.geteuid() != 0:
        raise EmulationError("the emulation runtime needs root (network namespaces)")
    try:
        import mininet.net  # noqa: F401
    except ImportError as error:
        raise EmulationError(f"Mininet is not importable: {error}") from None


@contextmanager
def _exclusive_lock() -> Iterator[None]:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    wait_s = float(os.environ.get("TESTBED_LOCK_WAIT_S", "0") or 0)
    deadline = time.monotonic() + wait_s
    with open(STATE_DIR / "lock", "w") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise EmulationError(
                        "another emulation run is in progress on this machine "
                        "(set TESTBED_LOCK_WAIT_S to wait for it)"
                    ) from None
                time.sleep(0.2)
        yield


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def emulated_network(topo: Any) -> Iterator[Any]:
    """A started Mininet network for `topo`; everything it created is gone afterwards.

    SIGTERM is turned into KeyboardInterrupt for the duration, so that `kill` cleans up like
    Ctrl-C does. Middlebox nodes (params role=middlebox) run the AF_PACKET bridge engine with
    their chain; every interface keeps its offloads (the engine carries super-packets with
    their virtio-net header and splits them for models that act per wire segment).
    Nodes with more interfaces than that are wired with Linux bridges inside their namespace
    (see `testbed.emulation.middlebox_nodes` and docs/emulation.md). The TCP-ENO kernel
    program is loaded privately for the run (its hosts' sockets are covered) and removed after.
    Idle CPUs poll while the network is up (`testbed.emulation.cpu_idle`).
    """
    _require_root_and_mininet()
    try:
        requested_mode()
    except ValueError as error:
        raise EmulationError(str(error)) from None
    from mininet.net import Mininet

    with _exclusive_lock(), run_program(), network_up(), idle_cpus_polling() as idle:
        note_cpu_idle(idle)
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        state = RunState(os.getpid())
        net = None
        try:
            net = Mininet(topo=topo, controller=None, autoSetMacs=True, build=False)
            net.build()
            for host in net.hosts:
                inode, cookie = netns_inode(host.pid), netns_cookie(host.pid)
                if inode is not None and cookie is not None:
                    state.hosts.append(HostRecord(host.name, host.pid, inode, cookie))
            state.save()
            net.start()
            start_middleboxes(net)
            yield net
        finally:
            try:
                if net is not None:
                    note_engine_reports(stop_middleboxes(net))  # shaped links: on time?
                    net.stop()
            finally:
                kill_run(state)  # processes that outlived net.stop() (daemonized ones)
                signal.signal(signal.SIGTERM, previous)

