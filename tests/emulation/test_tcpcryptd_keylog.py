"""The daemon's key log: both ends log the same session and its first master key, privately."""

from __future__ import annotations

from pathlib import Path

from tcpcrypt.aead import aead_by_name
from testbed.apps.hosts import wait_until_listening
from testbed.apps.tcpcryptd_host import start_tcpcryptd, stop_tcpcryptd, tcpcrypt_cli
from testbed.emulation.network import emulated_network
from topologies.line import LineTopo

PORT = 8000


def test_both_key_logs_name_the_session_and_its_secret(tmp_path: Path) -> None:
    logs = {"client": tmp_path / "client.keys", "server": tmp_path / "server.keys"}
    with emulated_network(LineTopo()) as net:
        client, server = net.get("client"), net.get("server")
        server.cmd(f"cd {tmp_path} && python3 -m http.server {PORT} >/dev/null 2>&1 &")
        daemons = [start_tcpcryptd(host, ports=[PORT], keylog=logs[host.name])
                   for host in (client, server)]
        try:
            wait_until_listening(server, PORT)
            status = client.cmd(f"curl -s -m 10 -o /dev/null -w '%{{http_code}}' "
                                f"http://{server.IP()}:{PORT}/")
            sessions = tcpcrypt_cli(server, "sessions")
        finally:
            for daemon in daemons:
                stop_tcpcryptd(daemon)
    assert status == "200"
    lines = {name: path.read_text().splitlines() for name, path in logs.items()}
    assert len(lines["client"]) == 1
    assert lines["client"] == lines["server"]
    label, session_id, master_key, aead_id = lines["client"][0].split()
    assert label == "TCPCRYPT_MK0"  # mk[0], not ss: tests/daemon/test_keylog.py
    assert aead_id == f"{aead_by_name('aes-128-gcm').wire_id:04x}"
    assert len(bytes.fromhex(master_key)) == 32
    assert sessions[-1]["session_id"] == session_id
    assert (logs["client"].stat().st_mode & 0o077) == 0  # the key log is private
