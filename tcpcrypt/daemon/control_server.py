"""The daemon's side of the control socket (protocol in tcpcrypt/control.py).

Access: the peer's credentials (SO_PEERCRED) decide. Root may ask everything; any other user
may only `lookup` a connection whose socket it owns (the kernel's socket table says whose).
Bounds: at most MAX_CLIENTS clients at once (more get an error and are closed), one request
line of at most MAX_REQUEST bytes, REQUEST_TIMEOUT_S to send it. Every bad request gets an
error answer; none raises out of the handler.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import struct
from collections.abc import Callable
from typing import Any, Final

from tcpcrypt.control import control_address
from tcpcrypt.daemon.sessions import Address, SessionTable
from tcpcrypt.daemon.socket_owner import normal_host, socket_owner
from tcpcrypt.daemon.stats import Stats

MAX_REQUEST: Final = 4096
MAX_CLIENTS: Final = 32
REQUEST_TIMEOUT_S: Final = 5.0


class ControlSocketTaken(OSError):
    """The control socket's name is bound by another process (named in the message)."""


def peer_credentials(sock: Any) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a Unix socket."""
    pid, uid, _ = struct.unpack(
        "3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    )
    return pid, uid


def _parse_address(text: object) -> Address:
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"not an address ip:port: {text!r}")
    host, _, port = text.rpartition(":")
    return normal_host(host), int(port)


def _holder(name: str) -> str:
    """Who holds the abstract name (pid and uid), as far as a connection tells."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(control_address(name))
        pid, uid = peer_credentials(probe)
    except OSError:
        return "another process"
    finally:
        probe.close()
    return f"pid {pid} (uid {uid}{'' if uid == 0 else ', not root'})"


class ControlServer:
    """Answers sessions / stats / lookup requests."""

    def __init__(
        self, sessions: SessionTable, stats: Stats, extra_stats: dict[str, Any],
        live_stats: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._sessions = sessions
        self._stats = stats
        self._extra_stats = extra_stats
        self._live_stats = live_stats
        self._server: asyncio.AbstractServer | None = None
        self._socket: socket.socket | None = None
        self._clients = 0

    def bind(self, name: str) -> None:
        """Take the name (before any rule exists); ControlSocketTaken says who holds it."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(control_address(name))
            sock.listen(64)
        except OSError as error:
            sock.close()
            if error.errno == errno.EADDRINUSE:
                raise ControlSocketTaken(
                    errno.EADDRINUSE, f"control socket @{name} is taken by {_holder(name)}"
                ) from None
            raise
        sock.setblocking(False)
        self._socket = sock

    async def start(self) -> None:
        assert self._socket is not None, "bind() first"
        self._server = await asyncio.start_unix_server(
            self._serve, sock=self._socket, limit=MAX_REQUEST
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        elif self._socket is not None:
            self._socket.close()

    def answer(self, request: dict[str, Any], uid: int = 0) -> dict[str, Any]:
        op = request.get("op")
        if op not in ("sessions", "stats", "lookup"):
            return {"ok": False, "error": f"unknown op {op!r}"}
        if op == "lookup":
            local = _parse_address(request.get("local"))
            remote = _parse_address(request.get("remote"))
            if uid != 0 and socket_owner(local, remote) != uid:
                return {"ok": False, "error": f"uid {uid} owns no socket with that address pair"}
            record = self._sessions.lookup(local, remote)
            return {"ok": True, "session": record.to_dict() if record is not None else None}
        if uid != 0:
            return {"ok": False, "error": f"{op} needs root"}
        if op == "sessions":
            include_ended = bool(request.get("ended", True))
            return {"ok": True, "sessions": [
                record.to_dict() for record in self._sessions.records(include_ended)
            ]}
        live = self._live_stats() if self._live_stats is not None else {}
        return {"ok": True, "stats": {**self._stats.snapshot(), **self._extra_stats, **live}}

    def reply_to(self, line: bytes, uid: int) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (ValueError, RecursionError):
            return {"ok": False, "error": "a request is one JSON object on one line"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "a request is one JSON object on one line"}
        try:
            return self.answer(request, uid)
        except (ValueError, TypeError) as error:
            return {"ok": False, "error": str(error)}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._clients >= MAX_CLIENTS:
            self._stats.count("control_refused", "too-many-clients")
            writer.write(b'{"ok": false, "error": "too many control clients"}\n')
            writer.close()  # the transport sends the line, then closes
            return
        self._clients += 1
        try:
            _, uid = peer_credentials(writer.get_extra_info("socket"))
            try:
                line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT_S)
                reply = self.reply_to(line, uid)
            except ValueError:  # the stream's limit: no newline within MAX_REQUEST bytes
                reply = {"ok": False, "error": f"request longer than {MAX_REQUEST} bytes"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT_S)
        except (TimeoutError, ConnectionError, OSError):
            pass
        except Exception as error:  # noqa: BLE001 - a bug costs one request, never the daemon
            self._stats.count("internal_errors", f"control-{type(error).__name__}")
        finally:
            self._clients -= 1
            writer.close()
