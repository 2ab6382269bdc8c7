"""The one error type for bad configuration: every problem at once, each with its place."""

from __future__ import annotations

from collections.abc import Iterable


class ConfigError(Exception):
    """Configuration a human must fix. ``problems`` are ``file:line:col: path.to.key: message`` lines."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))
