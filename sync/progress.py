"""How a cycle reports its long phases: a rich progress bar on a terminal (``cli.progress``), else nothing."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Where the cycle reports long phases (a rich progress bar on a terminal, nothing otherwise)."""

    def start(self, phase: str, total: int | None) -> None: ...

    def advance(self, n: int) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    def start(self, phase: str, total: int | None) -> None:
        """Nothing to show."""

    def advance(self, n: int) -> None:
        """Nothing to show."""

    def finish(self) -> None:
        """Nothing to show."""
