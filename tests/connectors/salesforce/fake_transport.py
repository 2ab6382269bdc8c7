"""A scripted Salesforce for unit tests, mounted as a requests transport adapter (injected, never patched).

``ScriptedSalesforce`` answers requests with handler functions keyed by (method, path prefix); a handler
returns ``(status, json_body)`` or raises a ``requests`` exception to simulate a dropped connection. Every
request is recorded so tests can assert on what reached the wire. Responses carry ``Sforce-Limit-Info``.
A ``POST .../composite`` no handler claims is answered as Salesforce's Composite resource would: each
subrequest goes to the handlers as a request of its own (recorded in ``subrequests``, not in ``seen``,
and counted once in the usage header, as one API call). A ``@{ref.field}`` in a subrequest's url takes
that field of an earlier successful subrequest's body; a missing value fails the subrequest 400
PROCESSING_HALTED, as Salesforce does (sandbox/README.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter

Handler = Callable[[requests.PreparedRequest], tuple[int, Any]]
_REFERENCE = re.compile(r"@\{(\w+)((?:\.\w+)*)\}")


@dataclass
class ScriptedSalesforce(BaseAdapter):
    handlers: list[tuple[str, str, Handler]] = field(default_factory=list)
    seen: list[requests.PreparedRequest] = field(default_factory=list)
    usage: list[int] = field(default_factory=lambda: [0, 15000])
    subrequests: list[requests.PreparedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def on(self, method: str, path_prefix: str, handler: Handler) -> None:
        self.handlers.insert(0, (method, path_prefix, handler))

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.seen.append(request)
        path = urlsplit(request.url or "").path
        status, body = self._answer(request, path)
        if not path.startswith("/services/oauth2/"):
            self.usage[0] += 1
        response = requests.Response()
        response.status_code = status
        response._content = b"" if body is None else json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json;charset=UTF-8"
        response.headers["Sforce-Limit-Info"] = f"api-usage={self.usage[0]}/{self.usage[1]}"
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass

    def _answer(self, request: requests.PreparedRequest, path: str) -> tuple[int, Any]:
        for method, prefix, handler in self.handlers:
            if request.method == method and path.startswith(prefix):
                return handler(request)
        if request.method == "POST" and path.rstrip("/").endswith("/composite"):
            answers: list[dict[str, Any]] = []
            for sub in body_of(request)["compositeRequest"]:
                answers.append(self._subrequest(request, sub, answers))
            return 200, {"compositeResponse": answers}
        return 404, [{"errorCode": "NOT_FOUND", "message": "no handler"}]

    def _subrequest(
        self, outer: requests.PreparedRequest, sub: dict[str, Any], earlier: list[dict[str, Any]]
    ) -> dict[str, Any]:
        url = _resolve(str(sub["url"]), earlier)
        if url is None:
            halted = [
                {"errorCode": "PROCESSING_HALTED", "message": f"Invalid reference specified in {sub['url']}"}
            ]
            return {
                "body": halted,
                "httpHeaders": {},
                "httpStatusCode": 400,
                "referenceId": sub["referenceId"],
            }
        parts = urlsplit(outer.url or "")
        inner = requests.Request(
            sub["method"],
            f"{parts.scheme}://{parts.netloc}{url}",
            headers={**_inherited(outer), **(sub.get("httpHeaders") or {})},
            json=sub.get("body"),
        ).prepare()
        self.subrequests.append(inner)
        status, body = self._answer(inner, urlsplit(inner.url or "").path)
        return {"body": body, "httpHeaders": {}, "httpStatusCode": status, "referenceId": sub["referenceId"]}


def _inherited(outer: requests.PreparedRequest) -> dict[str, str]:
    """The outer request's session: subrequests run as the same user."""
    auth = outer.headers.get("Authorization")
    return {"Authorization": auth} if auth else {}


def _resolve(url: str, earlier: list[dict[str, Any]]) -> str | None:
    """``url`` with its ``@{ref.a.b}`` references replaced from earlier successful answers; None if one has
    no value."""
    bodies = {a["referenceId"]: a["body"] for a in earlier if a["httpStatusCode"] < 400}
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        found: Any = bodies.get(match.group(1))
        for name in match.group(2).split(".")[1:]:
            found = found.get(name) if isinstance(found, dict) else None
        missing = missing or found is None
        return str(found)

    resolved = _REFERENCE.sub(value, url)
    return None if missing else resolved


def soql_of(request: requests.PreparedRequest) -> str:
    """The SOQL text of a query request."""
    return parse_qs(urlsplit(request.url or "").query)["q"][0]


def body_of(request: requests.PreparedRequest) -> Any:
    return json.loads(request.body or b"{}")


def query_page(records: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    return {
        "totalSize": len(records),
        "done": next_url is None,
        "records": records,
        **({"nextRecordsUrl": next_url} if next_url else {}),
    }
