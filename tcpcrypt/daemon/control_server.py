"""The daemon's side of the control socket (protocol in tcpcrypt/control.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tcpcrypt.control import control_address
from tcpcrypt.daemon.sessions import Address, SessionTable
from tcpcrypt.daemon.stats import Stats

MAX_REQUEST = 4096


def _parse_address(text: object) -> Address:
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"not an address ip:port: {text!r}")
    host, _, port = text.rpartition(":")
    return host, int(port)


class ControlServer:
    """Answers sessions / stats / lookup requests."""

    def __init__(self, sessions: SessionTable, stats: Stats, extra_stats: dict[str, Any]) -> None:
        self._sessions = sessions
        self._stats = stats
        self._extra_stats = extra_stats
        self._server: asyncio.AbstractServer | None = None

    async def start(self, name: str) -> None:
        self._server = await asyncio.start_unix_server(
            self._serve, path=control_address(name), limit=MAX_REQUEST
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "sessions":
            include_ended = bool(request.get("ended", True))
            return {"ok": True, "sessions": [
                record.to_dict() for record in self._sessions.records(include_ended)
            ]}
        if op == "stats":
            return {"ok": True, "stats": {**self._stats.snapshot(), **self._extra_stats}}
        if op == "lookup":
            record = self._sessions.lookup(
                _parse_address(request.get("local")), _parse_address(request.get("remote"))
            )
            return {"ok": True, "session": record.to_dict() if record is not None else None}
        return {"ok": False, "error": f"unknown op {op!r}"}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
                reply = self.answer(request)
            except (ValueError, TypeError) as error:
                reply = {"ok": False, "error": str(error)}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()
