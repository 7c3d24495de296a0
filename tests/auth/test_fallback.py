"""The TLS-compatible wrapper over real loopback TCP: tcpcrypt plus batch signing between two
wrappers, real TLS with a plain `ssl` peer on either side, and an AuthError (never a silent
fallback) when a relay sits between two wrappers."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tcpcrypt.auth.batcher import Batcher
from tcpcrypt.auth.errors import AuthError, SessionIdMismatch
from tcpcrypt.auth.fallback import TcpcryptAuthenticatedSocket, TcpcryptOrTlsContext
from tcpcrypt.auth.loopback import MitmRelay
from tcpcrypt.auth.signing import SigningKey

HOST = "localhost"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def server_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    return context


@pytest.fixture
def client_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(tls_files[0])
    return context


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("ed25519")


@pytest.fixture
def batcher(key: SigningKey) -> Iterator[Batcher]:
    with Batcher(key, max_batch=4, window_s=0.002) as shared:
        yield shared


def echo_server(wrap: Callable[[socket.socket], object]
                ) -> tuple[tuple[str, int], threading.Thread]:
    """Accept one connection, wrap it, echo one message back (in a thread)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        listener.close()
        conn.settimeout(10)
        try:
            wrapped = wrap(conn)
            wrapped.sendall(wrapped.recv(100))  # type: ignore[attr-defined]
            wrapped.close()  # type: ignore[attr-defined]
        except (OSError, AuthError):
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[:2], thread


def echo_through(wrapped: object) -> bytes:
    wrapped.sendall(b"hello")  # type: ignore[attr-defined]
    answer: bytes = wrapped.recv(100)  # type: ignore[attr-defined]
    wrapped.close()  # type: ignore[attr-defined]
    return answer


def test_two_wrappers_use_tcpcrypt_with_a_batch_signed_session_id(
        server_tls: ssl.SSLContext, client_tls: ssl.SSLContext, key: SigningKey,
        batcher: Batcher) -> None:
    server = TcpcryptOrTlsContext(server_tls, batcher=batcher)
    address, thread = echo_server(lambda conn: server.wrap_socket(conn, server_side=True))
    client = TcpcryptOrTlsContext(client_tls, trusted_key=key.public_key())
    wrapped = client.wrap_socket(socket.create_connection(address), server_hostname=HOST)
    assert isinstance(wrapped, TcpcryptAuthenticatedSocket)
    assert wrapped.version() == "tcpcrypt" and wrapped.getsessid()
    assert echo_through(wrapped) == b"hello"
    thread.join(10)
    assert server.last_protocol == "tcpcrypt"
    assert batcher.stats["session_ids"] == 1


def test_a_plain_tls_client_gets_tls_from_the_wrapper(
        server_tls: ssl.SSLContext, client_tls: ssl.SSLContext, batcher: Batcher) -> None:
    server = TcpcryptOrTlsContext(server_tls, batcher=batcher)
    address, thread = echo_server(lambda conn: server.wrap_socket(conn, server_side=True))
    wrapped = client_tls.wrap_socket(socket.create_connection(address), server_hostname=HOST)
    assert wrapped.version() in ("TLSv1.2", "TLSv1.3")
    assert echo_through(wrapped) == b"hello"
    thread.join(10)
    assert server.last_protocol == "tls"


def test_the_wrapper_falls_back_to_tls_against_a_tls_only_server(
        server_tls: ssl.SSLContext, client_tls: ssl.SSLContext, key: SigningKey) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    outcomes: list[str] = []

    def tls_only_server() -> None:  # a plain ssl server: the first connection is the offer
        for _ in range(2):
            conn, _ = listener.accept()
            conn.settimeout(10)
            try:
                tls = server_tls.wrap_socket(conn, server_side=True)
                tls.sendall(tls.recv(100))
                tls.close()
                outcomes.append("tls")
            except (OSError, ssl.SSLError) as error:
                outcomes.append(type(error).__name__)
                conn.close()
        listener.close()

    thread = threading.Thread(target=tls_only_server, daemon=True)
    thread.start()
    client = TcpcryptOrTlsContext(client_tls, trusted_key=key.public_key(), timeout=5)
    wrapped = client.wrap_socket(socket.create_connection(listener.getsockname()[:2]),
                                 server_hostname=HOST)
    assert isinstance(wrapped, ssl.SSLSocket)
    assert echo_through(wrapped) == b"hello"
    thread.join(10)
    assert client.last_protocol == "tls" and outcomes[-1] == "tls"


def test_a_relay_between_two_wrappers_is_an_auth_error_not_a_fallback(
        server_tls: ssl.SSLContext, client_tls: ssl.SSLContext, key: SigningKey,
        batcher: Batcher) -> None:
    server = TcpcryptOrTlsContext(server_tls, batcher=batcher)
    address, thread = echo_server(lambda conn: server.wrap_socket(conn, server_side=True))
    client = TcpcryptOrTlsContext(client_tls, trusted_key=key.public_key())
    with MitmRelay(address) as relay, pytest.raises(SessionIdMismatch):
        client.wrap_socket(socket.create_connection(relay.address), server_hostname=HOST)
    thread.join(10)
