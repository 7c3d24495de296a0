"""The TLS server process of the `batch-signing` experiment and what its server processes share
(not an experiment itself: no SPEC).

The tcpcrypt methods (`none`, `sign-each`, `batch-sign`) are served by worker processes
(`batch_signing_worker`) around one shared signer; TLS (TLS 1.3, RSA-2048 certificate) by one
process here, a thread per connection: each TLS connection arrives whole, its handshake (with
its signature) at the rate, so it cannot be split into handshake and authentication. Each
server process answers the parent over a pipe: "ready" with its address, then its
measurements over the phases the parent marks ("start", "handshakes-done", "stop"). A
tcpcrypt connection's authentication starts when its client sends one byte (`GO_BYTE`),
which names the method it wants.
"""

from __future__ import annotations

import datetime
import resource
import socket
import ssl
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

TLS_NAME = "localhost"
NO_AUTH = "none"  # the same tcpcrypt connection, no authentication: the latency baseline
NO_AUTH_REPLY = b"k"
# the go byte says which method the connection wants, so one point's arrival stream can mix
# authenticated connections with unauthenticated ones (the paired baseline)
GO_BYTE = {"batch-sign": b"b", "sign-each": b"s", NO_AUTH: b"n"}
METHOD_OF_GO = {byte: method for method, byte in GO_BYTE.items()}


def _process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _tls_context(folder: Path) -> tuple[ssl.SSLContext, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TLS_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(TLS_NAME)]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context, cert_pem


class _TlsServer:
    """Accepts TLS connections, one thread each; records each handshake's thread CPU."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.address = self.listener.getsockname()[:2]
        self.cpu_ns: list[int] = []
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        started = time.thread_time_ns()
        conn.settimeout(30)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"k")  # the client's "authenticated" moment
                self.cpu_ns.append(time.thread_time_ns() - started)
        except (OSError, ssl.SSLError):
            conn.close()


def serve_tls(pipe: Connection) -> None:
    """The TLS server process's entry point (one process, a thread per connection)."""
    measurements: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        context, cert_pem = _tls_context(Path(folder))
    tls_server = _TlsServer(context)
    pipe.send(("ready", tls_server.address, cert_pem))
    measure_phases(pipe, measurements)
    measurements["connections"] = len(tls_server.cpu_ns)
    measurements["auth_cpu_ns"] = sum(tls_server.cpu_ns)  # the whole TLS handshake
    measurements["send_cpu_ns"] = 0  # (inside the handshake, not separable)
    pipe.send(measurements)


def measure_phases(pipe: Connection, measurements: dict[str, Any]) -> None:
    """Process CPU over the two phases the parent marks: handshakes, then authentications."""
    marks = []
    for word in ("start", "handshakes-done", "stop"):
        if pipe.recv() != word:
            raise RuntimeError(f"the parent did not say {word}")
        marks.append((_process_cpu_s(), time.monotonic()))
    measurements["handshake_process_cpu_s"] = marks[1][0] - marks[0][0]
    measurements["process_cpu_s"] = marks[2][0] - marks[1][0]
    measurements["wall_s"] = marks[2][1] - marks[1][1]
