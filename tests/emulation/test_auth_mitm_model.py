"""The `tcpcrypt-mitm` model on the path between two tcpcryptd hosts, in Mininet: it
terminates tcpcrypt towards each host and re-encrypts in flight, so the connection works and
the hosts get two different session IDs; CMAC, PAKE and batch signing each fail on every
attempt (the client always, with `session-id-mismatch`; the server too for the mutual
methods). Its own network: the daemon tests' network holds the machine-wide emulation lock.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from middleboxes.registry import PLUGINS_ENV, load_plugins
from testbed.apps.tcpcryptd_host import start_tcpcryptd, stop_tcpcryptd
from testbed.emulation.network import emulated_network
from topologies.line import LineTopo

sys.path.insert(0, str(Path(__file__).parent))

from auth_peers import AUTH_PORT, METHODS, run_pair  # noqa: E402

MITM_PLUGIN = "middleboxes.tcpcrypt_mitm"


def test_every_method_detects_the_mitm_model_on_the_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLUGINS_ENV, MITM_PLUGIN)  # the engine in the Mininet node loads it
    load_plugins(MITM_PLUGIN)  # and this process, to validate the path
    with emulated_network(LineTopo(paths=("tcpcrypt-mitm",))) as net:
        client, server = net.get("client"), net.get("server")
        daemons = [start_tcpcryptd(host, ports=(AUTH_PORT,)) for host in (client, server)]
        try:
            for method in METHODS:
                mine, theirs = run_pair(client, server, method, tmp_path / f"{method}.pem")
                assert all(result.startswith("error:") for result in mine), (method, mine)
                if method != "batch-sign":  # batch signing authenticates the server only
                    assert all(result.startswith("error:") for result in theirs), (method, theirs)
                assert "error:session-id-mismatch" in mine, (method, mine)
        finally:
            for process in daemons:
                stop_tcpcryptd(process)
