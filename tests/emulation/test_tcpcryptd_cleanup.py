"""A SIGKILLed tcpcryptd, then `tcpcryptd --cleanup`: the host's iptables are as before (issue #3).

A killed daemon cannot remove its own rules; its leftover redirect rules would refuse covered
connections. `tcpcryptd --cleanup` must bring the filter, nat and mangle tables back to exactly
what they were before the daemon started, rules added by others included, and covered ports
work as plain TCP again.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from testbed.apps.tcpcryptd_host import start_tcpcryptd
from testbed.emulation.network import emulated_network
from topologies.line import LineTopo

PORT = 8000
TABLES = ("filter", "nat", "mangle")
# rules the host had before the daemon: they must survive its start, its death and the cleanup
OTHERS = (
    "-t filter -A INPUT -p tcp --dport 9999 -j ACCEPT",
    "-t nat -A OUTPUT -p tcp --dport 9998 -j RETURN",
    "-t mangle -A PREROUTING -p tcp --dport 9997 -j MARK --set-mark 7",
)


def iptables_save(host: Any) -> dict[str, str]:
    """Each table's `iptables-save` output, without its timestamp comments and counters."""
    saved = {}
    for table in TABLES:
        text = host.cmd(f"iptables-save -t {table}")
        lines = [re.sub(r" \[\d+:\d+\]$", "", line) for line in text.splitlines()
                 if not line.startswith("#")]
        saved[table] = "\n".join(lines)
    return saved


def http_status(client: Any, server: Any) -> str:
    return str(client.cmd(
        f"curl -s -m 5 -o /dev/null -w '%{{http_code}}' http://{server.IP()}:{PORT}/"
    )).strip()


def test_cleanup_after_sigkill_restores_iptables_exactly(tmp_path: Path) -> None:
    with emulated_network(LineTopo()) as net:
        client, server = net.get("client"), net.get("server")
        server.cmd(f"cd {tmp_path} && python3 -m http.server {PORT} >/dev/null 2>&1 &")
        for rule in OTHERS:
            client.cmd(f"iptables -w {rule}")
        before = iptables_save(client)
        for _ in range(50):
            if http_status(client, server) == "200":
                break
            time.sleep(0.1)

        daemon = start_tcpcryptd(client, ports=[PORT])
        during = iptables_save(client)
        assert http_status(client, server) == "200"  # through the daemon (plain: no peer)
        daemon.send_signal(signal.SIGKILL)
        daemon.communicate(timeout=10)
        after_kill = iptables_save(client)
        stale = http_status(client, server)  # redirected to a proxy port nobody listens on

        cleanup = subprocess.run(
            ["mnexec", "-a", str(client.pid), sys.executable, "-m", "tcpcrypt.daemon",
             "--cleanup"], capture_output=True, text=True, timeout=60, check=False,
        )
        after_cleanup = iptables_save(client)
        again = http_status(client, server)
        restart = start_tcpcryptd(client, ports=[PORT])  # refused if anything was left
        restart.send_signal(signal.SIGTERM)
        restart.communicate(timeout=10)
        after_restart = iptables_save(client)

    assert "TCPCRYPTD" in during["nat"] and "TCPCRYPTD" in during["filter"]  # redirects, guard
    assert after_kill == during  # the killed daemon left its rules
    assert stale != "200"
    assert cleanup.returncode == 0, cleanup.stderr
    assert "removed" in cleanup.stdout
    assert after_cleanup == before
    assert again == "200"
    assert after_restart == before
