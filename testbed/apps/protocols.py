"""Protocol labels of the experiments and the TLS or tcpcrypt settings behind each.

`tcpcrypt-*` rows are the in-process library (`tcpcrypt.library`, TCP-ENO in the kernel), like
the TLS rows; `tcpcryptd-*` rows are unmodified programs under the transparent daemon.
`tls13-ecdsa` is TLS 1.3 with a P-256 certificate beside the RSA-2048 rows.
`tcpcrypt-x25519+METHOD` rows are the library's connection with an authentication method of
`tcpcrypt.auth` run over its session ID before the request (`testbed.apps.session_auth`).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProtocolSpec:
    label: str
    tls: str | None  # None, "tls12-rsa" or "tls13"
    resumed: bool = False
    tcpcrypt_suite: str | None = None
    daemon: bool = False  # tcpcrypt through tcpcryptd (else the in-process library)
    certificate: str = "rsa"  # the TLS server's key: "rsa" (RSA-2048) or "ecdsa" (P-256)
    auth: str | None = None  # over the library's session: "cmac", "batch-sign" or "pake"

    @property
    def daemon_suite(self) -> str | None:
        """The suite tcpcryptd runs for this row (None: no daemon)."""
        return self.tcpcrypt_suite if self.daemon else None

    @property
    def library_suite(self) -> str | None:
        """The suite the in-process library uses for this row (None: not the library)."""
        return None if self.daemon else self.tcpcrypt_suite


PROTOCOLS: dict[str, ProtocolSpec] = {
    spec.label: spec
    for spec in (
        ProtocolSpec("tcp", None),
        ProtocolSpec("tls12-rsa", "tls12-rsa"),
        ProtocolSpec("tls12-rsa-resumed", "tls12-rsa", resumed=True),
        ProtocolSpec("tls13", "tls13"),
        ProtocolSpec("tls13-resumed", "tls13", resumed=True),
        ProtocolSpec("tls13-ecdsa", "tls13", certificate="ecdsa"),
        ProtocolSpec("tcpcrypt-x25519", None, tcpcrypt_suite="x25519"),
        ProtocolSpec("tcpcrypt-x25519-resumed", None, True, "x25519"),
        ProtocolSpec("tcpcrypt-x25519+cmac", None, tcpcrypt_suite="x25519", auth="cmac"),
        ProtocolSpec("tcpcrypt-x25519+batch-sign", None, tcpcrypt_suite="x25519",
                     auth="batch-sign"),
        ProtocolSpec("tcpcrypt-x25519+pake", None, tcpcrypt_suite="x25519", auth="pake"),
        ProtocolSpec("tcpcrypt-rsa-exp3", None, tcpcrypt_suite="rsa-exp3-2048"),
        ProtocolSpec("tcpcrypt-rsa-exp3-resumed", None, True, "rsa-exp3-2048"),
        ProtocolSpec("tcpcryptd-x25519", None, tcpcrypt_suite="x25519", daemon=True),
        ProtocolSpec("tcpcryptd-x25519-resumed", None, True, "x25519", daemon=True),
        ProtocolSpec("tcpcryptd-rsa-exp3", None, tcpcrypt_suite="rsa-exp3-2048", daemon=True),
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


def library_context(suite: str, resumed: bool, defer_accept: bool = False) -> Any:
    """The tcpcrypt library's context for a row: the suite, a session cache only if resumed;
    `defer_accept` for a server whose clients speak first (`rr_server`)."""
    import tcpcrypt
    from tcpcrypt.resumption import ResumptionCache

    return tcpcrypt.TcpcryptContext(suites=[suite], defer_accept=defer_accept,
                                    cache=ResumptionCache(1024 if resumed else 0))


def client_context(mode: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # a self-signed test certificate; nothing to verify
    _limit(context, mode)
    return context
