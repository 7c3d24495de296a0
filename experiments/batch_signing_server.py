"""The server process of the `batch-signing` experiment (not an experiment itself: no SPEC).

Runs in its own process so that its CPU time (getrusage) is the server's alone. It serves one
method, `none` (tcpcrypt via the in-band shim; the go byte is answered with one byte: the
same connection without authentication), `sign-each`, `batch-sign` (the session ID signed by
a `Batcher`) or `tls` (TLS 1.3, RSA-2048 certificate), and answers the parent over a pipe:
"ready" with its address and public key, then its measurements over the phases the parent
marks ("start", "handshakes-done", "stop"). A tcpcrypt connection's authentication starts
when its client sends one byte (`GO`): the parent opens the connections first and then sends
the bytes at the arrival rate, so the rate of authentications is not capped by how fast this
machine's Python clients complete key exchanges. TLS cannot be split that way: each TLS
connection arrives whole, its handshake (with its signature) at the rate.
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

from tcpcrypt.auth.batch_sign import serve_batch_signed
from tcpcrypt.auth.batcher import Batcher
from tcpcrypt.auth.loopback import LoopbackServer
from tcpcrypt.auth.signing import SigningKey
from tcpcrypt.inband import InbandTcpcryptSocket

TLS_NAME = "localhost"
GO = b"g"
NO_AUTH = "none"  # the same tcpcrypt connection, no authentication: the latency baseline
NO_AUTH_REPLY = b"k"


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


def serve(pipe: Connection, method: str, window_s: float, max_batch: int) -> None:
    """The process's entry point."""
    measurements: dict[str, Any] = {}
    if method == "tls":
        with tempfile.TemporaryDirectory() as folder:
            context, cert_pem = _tls_context(Path(folder))
        tls_server = _TlsServer(context)
        pipe.send(("ready", tls_server.address, cert_pem))
        _measure(pipe, measurements)
        measurements["connections"] = len(tls_server.cpu_ns)
        measurements["auth_cpu_ns"] = sum(tls_server.cpu_ns)  # the whole TLS handshake
        measurements["send_cpu_ns"] = 0  # (inside the handshake, not separable)
        measurements["connection_cpu_ns"] = sum(tls_server.cpu_ns)
        pipe.send(measurements)
        return
    key = SigningKey.generate("rsa-2048")
    auth_ns: list[int] = []
    send_ns: list[int] = []
    batch = 1 if method == "sign-each" else max_batch
    with Batcher(key, max_batch=batch, window_s=0.0 if batch == 1 else window_s) as batcher:
        def handler(sock: InbandTcpcryptSocket) -> None:
            writing = [0]
            send = sock.sendall

            def timed_send(data: bytes, /) -> None:  # the proof's write, counted apart
                started = time.thread_time_ns()
                send(data)
                writing[0] += time.thread_time_ns() - started

            sock.sendall = timed_send  # type: ignore[method-assign]
            if sock.recv(1) != GO:  # the client's authentication "arrives" with this byte
                raise ConnectionError("expected the go byte")
            started = time.thread_time_ns()
            if method == NO_AUTH:
                sock.sendall(NO_AUTH_REPLY)  # the same connection, answered without a proof
            else:
                serve_batch_signed(sock, batcher, timeout=30)
            auth_ns.append(time.thread_time_ns() - started - writing[0])
            send_ns.append(writing[0])

        with LoopbackServer(handler, timeout=30) as server:
            public = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            pipe.send(("ready", server.address, public))
            _measure(pipe, measurements)
            measurements["connections"] = len(auth_ns)
            measurements["auth_cpu_ns"] = sum(auth_ns) + batcher.stats["sign_cpu_ns"]
            measurements["send_cpu_ns"] = sum(send_ns)
            measurements["connection_cpu_ns"] = sum(server.cpu_ns) + batcher.stats["sign_cpu_ns"]
            if method != NO_AUTH:
                measurements["batches"] = batcher.stats["batches"]
                measurements["sign_cpu_ns"] = batcher.stats["sign_cpu_ns"]
                measurements["margin_ms"] = batcher.margin_s * 1000
                measurements["queued_batches"] = batcher.stats["queued_batches"]
                measurements["queued_ns"] = batcher.stats["queued_ns"]
    pipe.send(measurements)


def _measure(pipe: Connection, measurements: dict[str, Any]) -> None:
    """Process CPU over the two phases the parent marks: handshakes, then authentications."""
    marks = []
    for word in ("start", "handshakes-done", "stop"):
        if pipe.recv() != word:
            raise RuntimeError(f"the parent did not say {word}")
        marks.append((_process_cpu_s(), time.monotonic()))
    measurements["handshake_process_cpu_s"] = marks[1][0] - marks[0][0]
    measurements["process_cpu_s"] = marks[2][0] - marks[1][0]
    measurements["wall_s"] = marks[2][1] - marks[1][1]
