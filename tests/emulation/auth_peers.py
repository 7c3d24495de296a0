"""Peers of the auth emulation tests: `run_pair` starts an authentication server in one
Mininet host and a client in another; run as a script, this file is those peers
(`python auth_peers.py auth-server|auth-client METHOD KEY_FILE [SERVER_IP]`), each making
ATTEMPTS connections and printing one JSON list: the session IDs (hex) it authenticated, or
`error:<reason>` per attempt.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from testbed.apps.hosts import wait_until_listening

AUTH_PORT = 8003
ATTEMPTS = 3
PSK = bytes(range(16))
PASSWORD = "emulated password"
THIS_FILE = Path(__file__).resolve()
ROOT = THIS_FILE.parents[2]
METHODS = ("cmac", "pake", "batch-sign")


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
