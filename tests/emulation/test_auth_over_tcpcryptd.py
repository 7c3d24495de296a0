"""Authentication over the session IDs tcpcryptd gives unmodified sockets, in Mininet.

With the daemon on both hosts (ENO in the real SYN and SYN-ACK), a client and a server run
CMAC, PAKE and batch signing over plain kernel sockets, taking the session ID from the daemon
(`daemon_session_id`): every attempt succeeds, with the same session ID at both ends. With no
daemon, the connection is plain TCP and both sides refuse with `no-session-id`. (The man in
the middle on the path: `test_auth_mitm_model.py`; the peers: `auth_peers.py`.)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.apps.tcpcryptd_host import start_tcpcryptd, stop_tcpcryptd
from testbed.emulation.network import emulated_network
from topologies.line import LineTopo

sys.path.insert(0, str(Path(__file__).parent))

from auth_peers import ATTEMPTS, AUTH_PORT, METHODS, run_pair  # noqa: E402


@pytest.fixture(scope="module")
def hosts() -> Iterator[tuple[Any, Any]]:
    with emulated_network(LineTopo()) as net:
        yield net.get("client"), net.get("server")


def test_every_method_authenticates_the_daemons_session_id(hosts: tuple[Any, Any],
                                                          tmp_path: Path) -> None:
    client, server = hosts
    daemons = [start_tcpcryptd(host, ports=(AUTH_PORT,)) for host in (client, server)]
    try:
        for method in METHODS:
            mine, theirs = run_pair(client, server, method, tmp_path / f"{method}.pem")
            assert all(len(sid) == 66 and sid.startswith("23") for sid in mine), (method, mine)
            assert mine == theirs, method  # the same session IDs, in order, at both ends
            assert len(set(mine)) == ATTEMPTS
    finally:
        for process in daemons:
            stop_tcpcryptd(process)


def test_without_the_daemons_both_sides_refuse_for_lack_of_a_session_id(
        hosts: tuple[Any, Any], tmp_path: Path) -> None:
    client, server = hosts
    mine, theirs = run_pair(client, server, "cmac", tmp_path / "none.pem")
    assert mine == theirs == ["error:no-session-id"] * ATTEMPTS
