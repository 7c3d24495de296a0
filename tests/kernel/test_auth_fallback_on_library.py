"""The TLS-compatible wrapper on the kernel path, between two network namespaces: two wrappers
use tcpcrypt with a batch-signed session ID; a wrapper and a plain `ssl` peer (either side) use
TLS on the same connection, ENO having fallen back in the handshake.

This module doubles as the peers run inside the namespaces.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kernel_lab import Pair, enter, finish

PORT = 7150
HOST = "localhost"
THIS_FILE = Path(__file__).resolve()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return tmp_path


def start(pair: Pair, ns: str, *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([*enter(ns), sys.executable, str(THIS_FILE), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ))
    pair.processes.append(process)
    return process


def run(pair: Pair, server_role: str, client_role: str, folder: Path
        ) -> tuple[dict[str, Any], dict[str, Any]]:
    server = start(pair, pair.b, server_role, str(folder))
    assert server.stdout is not None
    assert json.loads(server.stdout.readline() or "{}").get("listening"), server.stderr
    (client,) = finish(start(pair, pair.a, client_role, str(folder), pair.b_ip))
    (served,) = finish(server)
    return client, served


def test_two_wrappers_use_tcpcrypt_with_a_batch_signed_session_id(pair: Pair,
                                                                  files: Path) -> None:
    client, server = run(pair, "fb-server", "fb-client", files)
    assert client["protocol"] == server["protocol"] == "tcpcrypt"
    assert client["sessid"] == server["sessid"] and len(client["sessid"]) == 66
    assert client["answer"] == "echo:hello\n"


@pytest.mark.parametrize(("server_role", "client_role"),
                         [("fb-server", "tls-client"), ("tls-server", "fb-client")])
def test_a_plain_tls_peer_gets_tls_on_the_same_connection(
        pair: Pair, files: Path, server_role: str, client_role: str) -> None:
    client, server = run(pair, server_role, client_role, files)
    assert client["protocol"] == server["protocol"] == "tls"
    assert client["answer"] == "echo:hello\n"
    assert server["accepted"] == 1  # one connection: no reconnect


# --- run inside the namespaces ----------------------------------------------------------------
def _tls(folder: Path, server: bool) -> ssl.SSLContext:
    if server:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(folder / "cert.pem")
    return context


def _batch_key(folder: Path, create: bool) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from tcpcrypt.auth import SigningKey

    path = folder / "batch-key.pem"
    if create:
        path.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    return SigningKey(serialization.load_pem_private_key(path.read_bytes(), None))  # type: ignore[arg-type]


def _echo_once(conn: Any) -> None:
    line = b""
    while not line.endswith(b"\n"):
        chunk = conn.recv(100)
        if not chunk:
            break
        line += chunk
    conn.sendall(b"echo:" + line)


def _server(role: str, folder: Path) -> None:
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    raw.bind(("0.0.0.0", PORT))
    if role == "fb-server":
        from tcpcrypt.auth import Batcher
        from tcpcrypt.auth.fallback_kernel import KernelTcpcryptOrTlsContext

        batcher = Batcher(_batch_key(folder, True), max_batch=4, window_s=0.002)
        context = KernelTcpcryptOrTlsContext(_tls(folder, True), batcher=batcher)
        listener: Any = context.wrap_socket(raw, server_side=True)
        listener.listen()
    else:
        context, listener = None, raw
        raw.listen()
    print(json.dumps({"listening": True}), flush=True)
    conn, _ = listener.accept()
    if context is None:
        conn = _tls(folder, True).wrap_socket(conn, server_side=True)
    protocol = context.last_protocol if context is not None else "tls"
    sessid = conn.getsessid() if protocol == "tcpcrypt" else None
    _echo_once(conn)
    conn.close()
    print(json.dumps({"protocol": protocol, "accepted": 1,
                      "sessid": sessid.hex() if sessid else None}), flush=True)


def _client(role: str, folder: Path, address: str) -> None:
    if role == "fb-client":
        from tcpcrypt.auth.fallback_kernel import KernelTcpcryptOrTlsContext

        context = KernelTcpcryptOrTlsContext(
            _tls(folder, False), trusted_key=_batch_key(folder, False).public_key()
            if (folder / "batch-key.pem").exists() else _batch_key_dummy())
        conn = context.wrap_socket(socket.socket(), server_hostname=HOST)
        conn.settimeout(20)
        conn.connect((address, PORT))
        protocol = context.last_protocol
    else:
        conn = _tls(folder, False).wrap_socket(socket.create_connection((address, PORT), 20),
                                               server_hostname=HOST)
        protocol = "tls"
    sessid = conn.getsessid() if protocol == "tcpcrypt" else None
    conn.sendall(b"hello\n")
    answer = conn.recv(100).decode()
    conn.close()
    print(json.dumps({"protocol": protocol, "answer": answer,
                      "sessid": sessid.hex() if sessid else None}), flush=True)


def _batch_key_dummy() -> Any:
    """A trusted key for a client whose server has none (a plain TLS server)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate().public_key()


if __name__ == "__main__":
    if sys.argv[1] in ("fb-server", "tls-server"):
        _server(sys.argv[1], Path(sys.argv[2]))
    else:
        _client(sys.argv[1], Path(sys.argv[2]), sys.argv[3])
