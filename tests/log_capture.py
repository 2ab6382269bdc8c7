"""Capture structlog events in-process, whatever logging configuration earlier tests in the process left.

``structlog.testing.capture_logs`` swaps the processors of the *current* configuration in place, but a
module logger used before another test reconfigured logging (``followup demo`` run through click's
``CliRunner`` calls ``worker.configure_logging``) is cached with the old processors and would go
uncaptured. ``captured_events`` gives the named modules fresh loggers for the duration of the block.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs


@contextmanager
def captured_events(
    monkeypatch: pytest.MonkeyPatch, *modules: ModuleType
) -> Iterator[list[MutableMapping[str, Any]]]:
    """The events logged through ``module.log`` of each module while the block runs."""
    for module in modules:
        monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))
    with capture_logs() as events:
        yield events
