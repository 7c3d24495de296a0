"""The daemon's log lines (stderr), written so that a reader who never reads cannot stall it.

A daemon started with its standard error on a pipe that nobody drains would block in `write`
once the pipe's buffer is full, and with it every connection. Lines go to a bounded queue that
a thread of their own writes out; when the queue is full (the reader is gone or too slow) a
line is dropped and counted (`log_lines_dropped` in `tcpcrypt stats`), never waited for.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from typing import Final

from tcpcrypt.daemon.stats import Stats

QUEUE_LINES: Final = 1024


class Log:
    """One-line messages to a file descriptor, never blocking the caller."""

    def __init__(self, stats: Stats, descriptor: int = 2, capacity: int = QUEUE_LINES) -> None:
        self._stats = stats
        self._descriptor = descriptor
        self._lines: queue.Queue[bytes | None] = queue.Queue(capacity)
        self._thread = threading.Thread(target=self._write_out, name="tcpcryptd-log",
                                        daemon=True)
        self._thread.start()

    def line(self, text: str) -> None:
        """Queue one line (a newline is added); dropped and counted when the queue is full."""
        data = (" ".join(text.split("\n")) + "\n").encode(errors="replace")
        try:
            self._lines.put_nowait(data)
        except queue.Full:
            self._stats.count("log_lines_dropped")

    def _write_out(self) -> None:
        while (data := self._lines.get()) is not None:
            with contextlib.suppress(OSError):  # a closed reader: the line is lost, not retried
                while data:
                    data = data[os.write(self._descriptor, data):]

    def close(self, timeout_s: float = 1.0) -> None:
        """Write out what is queued, waiting at most `timeout_s` for a slow reader."""
        with contextlib.suppress(queue.Full):
            self._lines.put_nowait(None)
        self._thread.join(timeout_s)
