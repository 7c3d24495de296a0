"""The emulated connection load runs tcpcrypt through the in-process library: every connection
encrypted, a rate and a server cost measured; a resumed library row on several server
processes is refused before anything starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testbed.emulation.state import load_states
from testbed.runner import ConfigError, run_experiment


@pytest.mark.timeout(1800)  # may wait for the machine-wide emulation lock
def test_emulated_connection_rate_serves_tcpcrypt_through_the_library(tmp_path: Path) -> None:
    result = run_experiment("connection-rate", runtime="emulation", out_dir=tmp_path,
                            overrides={"protocols": "tcpcrypt-x25519", "cores": "1",
                                       "connections": "40"})
    # the network refuses a run with any plaintext connection, so a row means all encrypted
    [row] = result.rows
    assert row["protocol"] == "tcpcrypt-x25519" and row["completed"] == 40
    assert result.metrics["rate.conn_per_s.tcpcrypt-x25519.1"] > 0
    assert float(str(row["server_cpu_us"])) > 0
    # what a simulation of this run needs: the load generator's CPU and the others' threads
    assert float(str(row["client_cpu_us"])) > 0
    assert float(str(row["others_runnable"])) >= 0
    assert [s for s in load_states() if s.owner_pid == os.getpid()] == []


def test_a_resumed_library_row_on_several_server_cores_is_refused_before_it_starts(
        tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="own resumption cache"):
        run_experiment("connection-rate", runtime="emulation", out_dir=tmp_path,
                       overrides={"protocols": "tcpcrypt-x25519-resumed", "cores": "1,2",
                                  "connections": "10"})
    assert not (tmp_path / "connection-rate.json").exists()
