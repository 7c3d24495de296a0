"""Asking the local tcpcryptd about connections: the session-ID API for applications.

The daemon listens on an abstract Unix socket (default name `tcpcryptd`; abstract names belong
to the network namespace, so each emulated host has its own daemon). A request is one JSON
line, the answer one JSON line:

    {"op": "sessions"}                                 -> {"ok": true, "sessions": [...]}
    {"op": "stats"}                                    -> {"ok": true, "stats": {...}}
    {"op": "lookup", "local": "ip:port", "remote": "ip:port"}
                                                       -> {"ok": true, "session": {...} | null}

`getsessid(sock)` is the paper's getsockopt(TCP_CRYPT_SESSID): the session ID of the
connection behind an application's socket, the same bytes at both ends.

Any local user can bind an abstract name first, so a client trusts the socket only when the
process behind it runs as root (SO_PEERCRED), as tcpcryptd does; otherwise it raises
`UntrustedControlSocket` instead of believing a squatter's answers. The daemon in turn answers
an unprivileged user's `lookup` only for that user's own sockets, and `sessions` / `stats`
only to root.
"""

from __future__ import annotations

import errno
import json
import socket
import struct
from typing import Any

DEFAULT_CONTROL_NAME = "tcpcryptd"


class DaemonUnavailable(OSError):
    """No tcpcryptd answers on the control socket (not running in this network namespace)."""


class UntrustedControlSocket(DaemonUnavailable):
    """The control socket's name is held by a process not running as root (a squatter)."""


def control_address(name: str = DEFAULT_CONTROL_NAME) -> str:
    return "\0" + name


def request(message: dict[str, Any], name: str = DEFAULT_CONTROL_NAME,
            timeout: float = 5.0, trusted_uid: int = 0) -> dict[str, Any]:
    """Send one request to the daemon and return its answer (raises DaemonUnavailable, or
    UntrustedControlSocket when the name is held by a process of another uid than
    `trusted_uid`)."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout)
    try:
        client.connect(control_address(name))
        pid, uid, _ = struct.unpack("3i", client.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        if uid != trusted_uid:
            raise UntrustedControlSocket(
                errno.EPERM, f"control socket @{name} is held by pid {pid} (uid {uid}), "
                f"not by uid {trusted_uid}: not trusting it")
        client.sendall(json.dumps(message).encode() + b"\n")
        answer = bytearray()
        while not answer.endswith(b"\n"):
            chunk = client.recv(1 << 16)
            if not chunk:
                break
            answer += chunk
    except (ConnectionRefusedError, FileNotFoundError) as error:
        raise DaemonUnavailable(error.errno, f"no tcpcryptd on control socket @{name}") from None
    finally:
        client.close()
    reply: dict[str, Any] = json.loads(answer)
    if not reply.get("ok"):
        raise ValueError(f"tcpcryptd refused the request: {reply.get('error')}")
    return reply


def _pair(address: Any) -> str:
    host, port = address[0], address[1]
    return f"{host}:{port}"


def session_of(sock: socket.socket, name: str = DEFAULT_CONTROL_NAME) -> dict[str, Any] | None:
    """The daemon's record of the connection behind `sock`, or None if it has none."""
    reply = request(
        {"op": "lookup", "local": _pair(sock.getsockname()), "remote": _pair(sock.getpeername())},
        name,
    )
    session: dict[str, Any] | None = reply.get("session")
    return session


def getsessid(sock: socket.socket, name: str = DEFAULT_CONTROL_NAME) -> bytes | None:
    """The tcpcrypt session ID of `sock`'s connection; None if it is not encrypted."""
    session = session_of(sock, name)
    if session is None or not session.get("encrypted") or not session.get("session_id"):
        return None
    return bytes.fromhex(session["session_id"])
