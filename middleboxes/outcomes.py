"""The outcome a path should give each protocol, from what its models declare they do to the
ENO handshake (`Middlebox.eno_effect`). One predictor for every experiment that compares
outcomes with a prediction (`middlebox-matrix`, `access-population`).

Outcomes: `plaintext` (TCP, as asked), `encrypted`, `fallback` (tcpcrypt's ENO was stripped:
both ends carry on in plain TCP, RFC 8547), `broken` (no intact transfer).
"""

from __future__ import annotations

from middleboxes.base import EnoEffect, Middlebox
from middleboxes.registry import parse_chain

_TCPCRYPT = {EnoEffect.PASSES: "encrypted", EnoEffect.STRIPPED: "fallback",
             EnoEffect.BLOCKED: "broken"}


def predicted_outcome(path: str | Middlebox, protocol: str, port: int) -> str:
    """What `protocol` ("tcp", "tls13", "tcpcrypt-...") should see across `path` (a chain in
    the command-line syntax, or a model) on server `port`."""
    if protocol == "tcp":
        return "plaintext"
    if protocol.startswith("tls"):
        return "encrypted"  # TLS rides in the payload: ENO's fate does not touch it
    model = parse_chain(path) if isinstance(path, str) else path
    return _TCPCRYPT[model.eno_effect(port)]
