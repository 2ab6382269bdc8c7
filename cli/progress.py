"""Progress bars for long pulls and applies, only when a person is watching (stderr is a terminal)."""

from __future__ import annotations

import sys
from typing import Any


class RichProgress:
    """The cycle's ``Progress`` drawn with rich: a spinner for pulls (size unknown), a bar for applies."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task: Any = None

    def start(self, phase: str, total: int | None) -> None:
        label = {"pull": "pulling deals", "apply": "applying actions"}.get(phase, phase)
        self._progress.start()
        self._task = self._progress.add_task(label, total=total)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)

    def finish(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        self._progress.stop()


def terminal_progress() -> RichProgress | None:
    """A progress display when stderr is a terminal; ``None`` (quiet) otherwise."""
    return RichProgress() if sys.stderr.isatty() else None
