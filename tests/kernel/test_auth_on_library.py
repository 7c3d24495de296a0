"""Authentication over the in-process library's session IDs (TCP-ENO by the kernel program),
end to end between two network namespaces: CMAC, PAKE and batch signing each succeed on every
connection with the same kernel-negotiated session ID at both ends, taken from the wrapped
socket's own `getsessid()`.

This module doubles as the peers run inside the namespaces
(`python test_auth_on_library.py auth-server|auth-client ...`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kernel_lab import Pair, enter, finish

PORT = 7140
ATTEMPTS = 3
PSK = bytes(range(16))
PASSWORD = "kernel path password"
THIS_FILE = Path(__file__).resolve()


def start(pair: Pair, ns: str, *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([*enter(ns), sys.executable, str(THIS_FILE), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ))
    pair.processes.append(process)
    return process


@pytest.mark.parametrize("method", ["cmac", "pake", "batch-sign"])
def test_every_method_authenticates_the_librarys_session_id(
        pair: Pair, tmp_path: Path, method: str) -> None:
    key_file = tmp_path / "server-key.pem"
    server = start(pair, pair.b, "auth-server", method, str(key_file))
    assert server.stdout is not None
    assert json.loads(server.stdout.readline() or "{}").get("listening"), server.stderr
    client = start(pair, pair.a, "auth-client", method, str(key_file), pair.b_ip)
    (mine,), (theirs,) = finish(client), finish(server)
    assert all(len(sid) == 66 and sid.startswith("23") for sid in mine["sids"]), mine
    assert mine["sids"] == theirs["sids"]
    assert len(set(mine["sids"])) == ATTEMPTS


# --- run inside the namespaces ----------------------------------------------------------------
def _authenticate(method: str, conn: Any, server: bool, key_file: Path) -> str:
    from cryptography.hazmat.primitives import serialization

    from tcpcrypt.auth import (
        Batcher,
        Role,
        SigningKey,
        authenticate_cmac,
        pake_client,
        pake_server,
        serve_batch_signed,
        verify_batch_signed,
    )

    if method == "cmac":
        sid = authenticate_cmac(conn, PSK, Role.SERVER if server else Role.CLIENT)
    elif method == "pake":
        sid = (pake_server if server else pake_client)(conn, PASSWORD)
    else:
        private = serialization.load_pem_private_key(key_file.read_bytes(), None)
        key = SigningKey(private)  # type: ignore[arg-type]
        if server:
            with Batcher(key, max_batch=4, window_s=0.002) as batcher:
                sid = serve_batch_signed(conn, batcher)
        else:
            sid = verify_batch_signed(conn, key.public_key())
    conn.close()
    return sid.hex()


def _server(method: str, key_file: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    import tcpcrypt

    key_file.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    raw.bind(("0.0.0.0", PORT))
    listener = tcpcrypt.TcpcryptContext().wrap_socket(raw, server_side=True)
    listener.listen()
    print(json.dumps({"listening": True}), flush=True)
    sids = []
    for _ in range(ATTEMPTS):
        conn, _ = listener.accept()
        conn.settimeout(20)
        sids.append(_authenticate(method, conn, True, key_file))
    print(json.dumps({"sids": sids}), flush=True)


def _client(method: str, key_file: Path, address: str) -> None:
    import tcpcrypt

    sids = []
    for _ in range(ATTEMPTS):
        conn = tcpcrypt.create_connection((address, PORT), timeout=20)
        sids.append(_authenticate(method, conn, False, key_file))
    print(json.dumps({"sids": sids}), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(THIS_FILE.parents[2]))
    if sys.argv[1] == "auth-server":
        _server(sys.argv[2], Path(sys.argv[3]))
    elif sys.argv[1] == "auth-client":
        _client(sys.argv[2], Path(sys.argv[3]), sys.argv[4])
