"""The daemon's log never blocks its caller, even on a pipe that nobody reads (issue 10)."""

from __future__ import annotations

import os

from tcpcrypt.daemon.log import Log
from tcpcrypt.daemon.stats import Stats


def test_lines_to_an_unread_pipe_are_dropped_and_counted_not_waited_for() -> None:
    read_end, write_end = os.pipe()
    stats = Stats()
    log = Log(stats, write_end, capacity=16)
    try:
        for number in range(2000):  # 2 MB: far past the pipe's buffer and the queue
            log.line(f"line {number} " + "x" * 1000)
        assert stats.total("log_lines_dropped") > 0
    finally:
        os.close(read_end)  # the writer thread's next write fails and it moves on
        log.close()
        os.close(write_end)


def test_lines_reach_a_reader_whole_and_one_per_line() -> None:
    read_end, write_end = os.pipe()
    log = Log(Stats(), write_end)
    log.line("first")
    log.line("two\nlines")
    log.close()
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        assert reader.read() == "first\ntwo lines\n"
