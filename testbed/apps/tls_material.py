"""Self-signed certificates made at run time for the TLS servers: RSA-2048 (the paper's kind)
and ECDSA P-256 (`tls13-ecdsa`, today's common choice)."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def write_material(directory: Path) -> dict[str, tuple[Path, Path]]:
    """(certificate, key) per key kind: "rsa" and "ecdsa"."""
    return {"rsa": write_self_signed(directory),
            "ecdsa": write_self_signed(directory, kind="ecdsa")}


def write_self_signed(directory: Path, name: str = "testbed-server",
                      kind: str = "rsa") -> tuple[Path, Path]:
    """(certificate, key) PEM files in `directory`; `kind` "rsa" (2048) or "ecdsa" (P-256)."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "ecdsa":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"server-{kind}.crt", directory / f"server-{kind}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    return cert_path, key_path
