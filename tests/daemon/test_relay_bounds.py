"""The relay's bounds (issue 10): idle connections end, and many connections together hold no
more than the daemon's buffer budget. Real loopback sockets, asyncio and uvloop."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from tcpcrypt.daemon.budget import BufferBudget
from tcpcrypt.daemon.relay import EncryptedRelay, PeerReset, PlainRelay, RelayLimits
from tests.daemon.test_relay import (
    apply_events,
    daemon_side,
    loopback_pair,
    negotiated,
    read_all,
    record,
)

Runner = Callable[[Coroutine[Any, Any, None]], None]
RUNNERS: dict[str, Runner] = {"asyncio": asyncio.run, "uvloop": uvloop.run}
KERNEL_BUFFER = 64 * 1024  # small socket buffers, so that the relay's own buffering shows


@pytest.fixture(params=sorted(RUNNERS))
def run_loop(request: pytest.FixtureRequest) -> Runner:
    return RUNNERS[request.param]


async def outcome_of(coroutine: Coroutine[Any, Any, None], within_s: float) -> BaseException | None:
    try:
        await asyncio.wait_for(coroutine, within_s)
    except BaseException as error:  # noqa: BLE001 - the outcome is what the test checks
        return error
    return None


def test_an_idle_fallen_back_connection_is_reset(run_loop: Runner) -> None:
    app, app_daemon = loopback_pair()
    wire_daemon, peer = loopback_pair()
    app.sendall(b"hello")  # some traffic, then nothing either way
    outcome: list[BaseException | None] = []

    async def main() -> None:
        relay = PlainRelay(record("A"), RelayLimits(idle_timeout_s=0.5))
        outcome.append(await outcome_of(
            relay.run(daemon_side(app_daemon), daemon_side(wire_daemon)), 20))

    run_loop(main())
    assert isinstance(outcome[0], PeerReset) and str(outcome[0]) == "idle-timeout"
    assert peer.recv(100) == b"hello"
    with pytest.raises(ConnectionResetError):
        read_all(app)
    for sock in (app, app_daemon, wire_daemon, peer):
        sock.close()


def test_an_idle_established_connection_is_reset(run_loop: Runner) -> None:
    a, b = negotiated()
    peer, wire_b = loopback_pair()  # the test speaks for A
    app_b_daemon, app_b = loopback_pair()
    outcome: list[BaseException | None] = []

    def host_a() -> None:
        peer.sendall(a.data_to_send())  # Init1; then silence once established
        while a.data_to_send() == b"" and a.session_id is None:
            a.receive(peer.recv(65536))

    async def main() -> None:
        relay = EncryptedRelay(record("B"), b, apply_events, RelayLimits(idle_timeout_s=0.5))
        outcome.append(await outcome_of(
            relay.run(daemon_side(app_b_daemon), daemon_side(wire_b)), 20))

    thread = threading.Thread(target=host_a, daemon=True)
    thread.start()
    run_loop(main())
    thread.join(10)
    assert b.session_id is not None  # it was established, then idle
    assert isinstance(outcome[0], PeerReset) and str(outcome[0]) == "idle-timeout"
    for sock in (peer, wire_b, app_b_daemon, app_b):
        sock.close()


def small_buffers(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, KERNEL_BUFFER)
    return sock


def test_many_connections_together_hold_no_more_than_the_budget(run_loop: Runner) -> None:
    """Senders push into relays whose far ends never read: what the relays accept beyond the
    kernel's buffers is what they hold, and together that stays near the budget."""
    connections, limit = 6, 2 * 1024 * 1024
    pairs = []
    for _ in range(connections):
        app, app_daemon = (small_buffers(s) for s in loopback_pair())
        wire_daemon, peer = (small_buffers(s) for s in loopback_pair())
        pairs.append((app, app_daemon, wire_daemon, peer))
    accepted = [0] * connections
    chunk = b"x" * 65536
    budget_seen: list[BufferBudget] = []

    async def push(index: int, app: socket.socket) -> None:
        app.setblocking(False)
        loop = asyncio.get_running_loop()
        for _ in range(200):  # until the relay stops taking bytes for a while
            try:
                accepted[index] += app.send(chunk)
                continue
            except BlockingIOError:
                await asyncio.sleep(0.01)
        del loop

    async def main() -> None:
        budget = BufferBudget(limit)
        budget_seen.append(budget)
        limits = RelayLimits(idle_timeout_s=60, write_high_water=1024 * 1024)
        relays = [asyncio.ensure_future(PlainRelay(record("A"), limits, budget).run(
            daemon_side(app_daemon), daemon_side(wire_daemon)))
            for _, app_daemon, wire_daemon, _ in pairs]
        await asyncio.gather(*(push(i, pair[0]) for i, pair in enumerate(pairs)))
        for relay in relays:
            relay.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
        budget.close()

    run_loop(main())
    for pair in pairs:
        for sock in pair:
            sock.close()
    kernel_slack = connections * 8 * KERNEL_BUFFER  # four small socket buffers, doubled
    read_slack = connections * 256 * 1024  # one read past the limit per relay
    # without the budget: each relay alone holds up to twice its high water (12 MiB here)
    assert sum(accepted) <= limit + kernel_slack + read_slack, (sum(accepted), accepted)
    assert budget_seen[0].peak <= limit + read_slack
