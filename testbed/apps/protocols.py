"""Protocol labels of the experiments and the TLS settings behind each."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProtocolSpec:
    label: str
    tls: str | None  # None, "tls12-rsa" or "tls13"
    resumed: bool = False
    tcpcrypt_suite: str | None = None


PROTOCOLS: dict[str, ProtocolSpec] = {
    spec.label: spec
    for spec in (
        ProtocolSpec("tcp", None),
        ProtocolSpec("tls12-rsa", "tls12-rsa"),
        ProtocolSpec("tls12-rsa-resumed", "tls12-rsa", resumed=True),
        ProtocolSpec("tls13", "tls13"),
        ProtocolSpec("tls13-resumed", "tls13", resumed=True),
        ProtocolSpec("tcpcrypt-x25519", None, tcpcrypt_suite="x25519"),
        ProtocolSpec("tcpcrypt-x25519-resumed", None, True, "x25519"),
        ProtocolSpec("tcpcrypt-rsa-exp3", None, tcpcrypt_suite="rsa-exp3-2048"),
        ProtocolSpec("tcpcrypt-rsa-exp3-resumed", None, True, "rsa-exp3-2048"),
    )
}


def _limit(context: ssl.SSLContext, mode: str) -> None:
    if mode == "tls12-rsa":
        # TLS 1.2 with RSA key exchange, as the paper's SSL: no forward secrecy.
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("AES128-GCM-SHA256")
    else:
        context.minimum_version = ssl.TLSVersion.TLSv1_3


def server_context(mode: str, cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    _limit(context, mode)
    return context


def client_context(mode: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # a self-signed test certificate; nothing to verify
    _limit(context, mode)
    return context
