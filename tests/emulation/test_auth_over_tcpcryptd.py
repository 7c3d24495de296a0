"""Authentication over the session IDs tcpcryptd gives unmodified sockets, in Mininet.

With the daemon on both hosts (ENO in the real SYN and SYN-ACK), a client and a server run
CMAC, PAKE and batch signing over plain kernel sockets, taking the session ID from the daemon
(`daemon_session_id`): every attempt succeeds, with the same session ID at both ends. With no
daemon, the connection is plain TCP and both sides refuse with `no-session-id`. With the
`tcpcrypt-mitm` model on the path (it terminates tcpcrypt towards each host and re-encrypts in
flight, so the connection works and the hosts get two different session IDs), every method
fails on every attempt: the client always, the server too for the mutual methods.

This module doubles as the client and server run inside the hosts
(`python test_auth_over_tcpcryptd.py auth-server|auth-client ...`).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from middleboxes.registry import PLUGINS_ENV, load_plugins
from testbed.apps.hosts import wait_until_listening
from testbed.apps.tcpcryptd_host import start_tcpcryptd, stop_tcpcryptd
from testbed.emulation.network import emulated_network
from topologies.line import LineTopo

AUTH_PORT = 8003
ATTEMPTS = 3
PSK = bytes(range(16))
PASSWORD = "emulated password"
THIS_FILE = Path(__file__).resolve()
ROOT = THIS_FILE.parents[2]
METHODS = ("cmac", "pake", "batch-sign")
MITM_PLUGIN = "middleboxes.tcpcrypt_mitm"


@pytest.fixture(scope="module")
def hosts() -> Iterator[tuple[Any, Any]]:
    with emulated_network(LineTopo()) as net:
        yield net.get("client"), net.get("server")


def run_pair(client: Any, server: Any, method: str, key_file: Path) -> tuple[list[Any], list[Any]]:
    process = server.popen(
        [sys.executable, str(THIS_FILE), "auth-server", method, str(key_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
    try:
        wait_until_listening(server, AUTH_PORT)
        client_out = client.cmd(
            f"{sys.executable} {THIS_FILE} auth-client {method} {key_file} {server.IP()}")
        server_out, server_err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    client_results = json.loads(client_out.strip().splitlines()[-1])
    assert server_out.strip(), server_err
    return client_results, json.loads(server_out.strip().splitlines()[-1])


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


# --- run inside the hosts ---------------------------------------------------------------------
def _load_key(key_file: Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    from tcpcrypt.auth import SigningKey

    private = serialization.load_pem_private_key(key_file.read_bytes(), None)
    return SigningKey(private)  # type: ignore[arg-type]


def _authenticate(method: str, sock: socket.socket, server: bool, key_file: Path) -> str:
    from tcpcrypt.auth import (
        AuthError,
        Batcher,
        Role,
        authenticate_cmac,
        pake_client,
        pake_server,
        serve_batch_signed,
        verify_batch_signed,
    )
    from tcpcrypt.auth.session import daemon_session_id

    source = daemon_session_id(sock)
    try:
        if method == "cmac":
            sid = authenticate_cmac(sock, PSK, Role.SERVER if server else Role.CLIENT,
                                    session_id=source)
        elif method == "pake":
            run = pake_server if server else pake_client
            sid = run(sock, PASSWORD, session_id=source)
        elif server:
            with Batcher(_load_key(key_file), max_batch=1, window_s=0.0) as batcher:
                sid = serve_batch_signed(sock, batcher, session_id=source)
        else:
            sid = verify_batch_signed(sock, _load_key(key_file).public_key(), session_id=source)
    except AuthError as error:
        return f"error:{error.reason}"
    sock.close()
    return sid.hex()


def _server(method: str, key_file: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key_file.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))  # shared with the client: a test's trust anchor
    listener = socket.create_server(("0.0.0.0", AUTH_PORT), reuse_port=False)
    results = []
    for _ in range(ATTEMPTS):
        conn, _ = listener.accept()
        conn.settimeout(20)
        results.append(_authenticate(method, conn, True, key_file))
    print(json.dumps(results), flush=True)


def _client(method: str, key_file: Path, address: str) -> None:
    results = []
    for _ in range(ATTEMPTS):
        sock = socket.create_connection((address, AUTH_PORT), timeout=20)
        results.append(_authenticate(method, sock, False, key_file))
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "auth-server":
        _server(sys.argv[2], Path(sys.argv[3]))
    elif sys.argv[1] == "auth-client":
        _client(sys.argv[2], Path(sys.argv[3]), sys.argv[4])
