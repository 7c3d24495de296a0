"""The key log (docs/protocol.md): one line per established session, like SSLKEYLOGFILE.

    TCPCRYPT_MK0 <session ID hex> <mk[0] hex> <AEAD id as 4 hex digits>

mk[0] is the session's first master key: with a capture, it gives every traffic key of that
session (k_ab[j], k_ba[j] for every rekeying generation j) and nothing else. The session secret
ss is not logged: from ss follow the secrets, keys and resumption identifiers of every later
session that resumes this one, so a leaked log would open sessions not yet made.

Written only when asked for (`--keylog` or the environment variable TCPCRYPT_KEYLOG). The file
is opened without following a symbolic link; a new file is created readable by its owner only,
and an existing one is refused unless it is a regular file owned by this user, with one link,
that nobody else may read or write.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tcpcrypt.aead import aead_by_name
from tcpcrypt.connection import TcpcryptConnection

ENVIRONMENT_VARIABLE = "TCPCRYPT_KEYLOG"
LABEL = "TCPCRYPT_MK0"


class KeyLogError(OSError):
    """The key log file cannot be used safely (the message says why)."""


def keylog_line(connection: TcpcryptConnection) -> str:
    """The log line of an established connection."""
    if connection.secret is None or connection.session_id is None or connection.aead is None:
        raise ValueError("the connection is not established")
    aead_id = aead_by_name(connection.aead).wire_id
    master_key = connection.secret.first_master_key()
    return f"{LABEL} {connection.session_id.hex()} {master_key.hex()} {aead_id:04x}\n"


def open_private(path: Path) -> int:
    """Open `path` for appending, safely (see the module docstring); a descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags | os.O_NONBLOCK, 0o600)  # O_NONBLOCK: no FIFO wait
    except OSError as error:
        if os.path.islink(path):
            raise KeyLogError(f"key log {path} is a symbolic link: refused") from None
        raise KeyLogError(f"key log {path}: {error.strerror}") from None
    info = os.fstat(descriptor)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "is not a regular file"
    elif info.st_uid != os.geteuid():
        problem = f"is owned by uid {info.st_uid}, not {os.geteuid()}"
    elif info.st_nlink != 1:
        problem = f"has {info.st_nlink} hard links"
    elif info.st_mode & 0o077:
        problem = f"has mode {stat.S_IMODE(info.st_mode):04o}: others may read it (want 0600)"
    if problem is not None:
        os.close(descriptor)
        raise KeyLogError(f"key log {path} {problem}: refused")
    os.set_blocking(descriptor, True)
    return descriptor


class KeyLog:
    """Appends lines to a file opened once, readable by its owner only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = os.fdopen(open_private(path), "a", buffering=1)

    def write(self, connection: TcpcryptConnection) -> None:
        self._file.write(keylog_line(connection))

    def close(self) -> None:
        self._file.close()
