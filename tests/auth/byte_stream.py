"""An in-memory stream for parser tests: `recv` hands out the given bytes a few at a time."""

from __future__ import annotations


class ByteStream:
    def __init__(self, data: bytes, step: int = 1) -> None:
        self.incoming = bytearray(data)
        self.step = step
        self.sent = bytearray()
        self.closed = False

    def recv(self, size: int, /) -> bytes:
        chunk = bytes(self.incoming[: min(size, self.step)])
        del self.incoming[: len(chunk)]
        return chunk

    def sendall(self, data: bytes, /) -> None:
        self.sent += data

    def close(self) -> None:
        self.closed = True
