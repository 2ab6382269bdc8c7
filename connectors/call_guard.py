"""The apply's guard at a connector's one door to its CRM (``CrmConnector.apply(before_each_call=...)``).

Each client holds one ``CallGuard``; ``apply`` sets the worker's guard for its own duration
(``while_set``) and the client runs ``check()`` right before every request, retries included. What the
guard raises propagates as it is (it is not a CRM error to translate) and the request is not sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from connectors.base import BeforeCall


class CallGuard:
    """``check()`` runs the guard set by ``while_set``, if any."""

    __slots__ = ("_guard",)

    def __init__(self) -> None:
        self._guard: BeforeCall | None = None

    @contextmanager
    def while_set(self, guard: BeforeCall | None) -> Iterator[None]:
        """Every ``check()`` inside the block runs ``guard``; the previous guard comes back after it."""
        previous, self._guard = self._guard, guard
        try:
            yield
        finally:
            self._guard = previous

    def check(self) -> None:
        if self._guard is not None:
            self._guard()
