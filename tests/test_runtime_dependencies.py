"""The worker's own installation brings no web-server stack: that is the sandbox's (a dev and demo extra).

The runtime closure is read from the installed distributions' metadata (``Requires-Dist`` with their
environment markers, extras followed as requested), which is what ``pip install -e .`` resolves; .ci/run
also resolves a fresh ``pip install -e .`` and checks the same list.
"""

from __future__ import annotations

from importlib.metadata import distribution

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

WEB_SERVER = frozenset({"starlette", "uvicorn", "httptools", "orjson", "uvloop", "websockets", "watchfiles"})


def runtime_closure(name: str) -> set[NormalizedName]:
    """Every distribution ``pip install name`` brings, by the installed metadata (no extras of ``name``)."""
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(name, frozenset())]
    while todo:
        current, extras = todo.pop()
        key = (canonicalize_name(current), extras)
        if key in seen:
            continue
        seen.add(key)
        for raw in distribution(current).requires or []:
            requirement = Requirement(raw)
            environments = [{"extra": e} for e in sorted(extras)] or [{"extra": ""}]
            marker = requirement.marker
            if marker is None or any(marker.evaluate(env) for env in environments):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return {n for n, _ in seen}


def test_the_product_installs_no_web_server() -> None:
    product = runtime_closure("crm-followup")
    assert {"hubspot-api-client", "simple-salesforce", "sqlalchemy"} <= product  # the walk went deep
    assert not product & WEB_SERVER, sorted(product & WEB_SERVER)


def test_the_sandbox_does_bring_its_server() -> None:
    """The same walk finds the server stack where it belongs (so the check above can fail)."""
    assert {"starlette", "uvicorn"} <= runtime_closure("crm-sandbox")
