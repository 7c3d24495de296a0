"""The key log (docs/protocol.md): one line per established session, like SSLKEYLOGFILE.

    TCPCRYPT <session ID hex> <ss hex> <AEAD id as 4 hex digits>

Anyone with the log and a capture can recompute the session ID and decrypt both directions.
Written only when asked for (`--keylog` or the environment variable TCPCRYPT_KEYLOG).
"""

from __future__ import annotations

import os
from pathlib import Path

from tcpcrypt.aead import aead_by_name
from tcpcrypt.connection import TcpcryptConnection

ENVIRONMENT_VARIABLE = "TCPCRYPT_KEYLOG"


def keylog_line(connection: TcpcryptConnection) -> str:
    """The log line of an established connection."""
    if connection.secret is None or connection.session_id is None or connection.aead is None:
        raise ValueError("the connection is not established")
    aead_id = aead_by_name(connection.aead).wire_id
    return (
        f"TCPCRYPT {connection.session_id.hex()} {connection.secret.value.hex()} {aead_id:04x}\n"
    )


class KeyLog:
    """Appends lines to a file opened once, readable by its owner only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(descriptor, "a", buffering=1)

    def write(self, connection: TcpcryptConnection) -> None:
        self._file.write(keylog_line(connection))

    def close(self) -> None:
        self._file.close()
