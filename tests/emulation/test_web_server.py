"""The web-server experiment in Mininet: Apache httpd from Debian serving wrk, with and
without TLS resumption and through tcpcryptd; nothing of Apache outlives the run."""

from __future__ import annotations

import os
from pathlib import Path

from testbed.emulation.state import load_states
from testbed.runner import run_experiment


def apache_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"apache2" in command and b"testbed-web-" in command:
                found.append(int(entry.name))
    return found


def test_apache_serves_every_protocol_and_mode_and_leaves_nothing(tmp_path: Path) -> None:
    result = run_experiment(
        "web-server", quick=True, out_dir=tmp_path,
        overrides={"protocols": "tcp,tls13,tls13-resumed,tcpcryptd-x25519", "seconds": "1",
                   "connections": "8"},
    )
    rows = {(row["protocol"], row["mode"]): row for row in result.rows}
    assert set(rows) == {(p, m) for p in ("tcp", "tls13", "tls13-resumed", "tcpcryptd-x25519")
                         for m in ("close", "keepalive")}
    for (protocol, mode), row in rows.items():
        assert row["errors"] == 0 and row["rps"] > 0, row
        assert row["saturated"] in ("server", "client", "both", "neither")
        assert result.metrics[f"web.rps.{protocol}.{mode}"] == row["rps"]
        assert result.metrics[f"web.server_cpu_us.{protocol}.{mode}"] > 0
    assert rows[("tls13", "close")]["resumed"] == 0.0  # caches and tickets off: all full
    assert rows[("tls13-resumed", "close")]["resumed"] > 0.9
    assert rows[("tcpcryptd-x25519", "close")]["encrypted"] == 1.0
    assert apache_processes() == []
    assert [s for s in load_states() if s.owner_pid == os.getpid()] == []
