"""Progress bars for long runs: rich on a terminal, silent when not a TTY or under CI."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from testbed.experiment import ProgressTask


class _SilentTask:
    def advance(self, n: int = 1) -> None:
        pass


class _RichTask:
    def __init__(self, progress: Progress, task_id: object) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task_id, n)  # type: ignore[arg-type]


def progress_wanted() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


@contextmanager
def rich_progress(total: int, description: str) -> Iterator[ProgressTask]:
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    )
    with progress:
        yield _RichTask(progress, progress.add_task(description, total=total))


@contextmanager
def silent_progress(total: int, description: str) -> Iterator[ProgressTask]:
    yield _SilentTask()
