"""``POST composite``: up to 25 subrequests in one call, run in order through the top-level handlers.

Body ``{"allOrNone": false, "compositeRequest": [{"method", "url", "referenceId", "body"?,
"httpHeaders"?}]}``; answer 200 ``{"compositeResponse": [{"body", "httpHeaders", "httpStatusCode",
"referenceId"}]}`` in request order, each ``body`` what the same request would have answered on its own (an
error list for a failure).

* Dispatch: each subrequest is matched against the same ``ApiSpec`` list as the top-level routes (query,
  queryAll, query more, sObject resources, ``composite/sobjects``) and its handler runs with the
  subrequest's method, path, query string, ``httpHeaders`` (e.g. ``Sforce-Query-Options: batchSize=N``)
  and body. Unknown resources answer that subrequest 404 NOT_FOUND.
* References: ``@{refId.field.sub[0].x}`` in ``url`` or anywhere in ``body`` is replaced by that value of an
  earlier subrequest's response body (a string that is exactly one reference takes the value with its JSON
  type). A reference to an unknown, later or failed subrequest, or to a missing or null value, fails the
  subrequest with 400 PROCESSING_HALTED "Invalid reference specified. No value for r.f found in r".
* Whole-request checks, nothing runs when one fails (400 with an error list): the body shape and the
  required ``method``/``url``/``referenceId`` (JSON_PARSER_ERROR "'referenceId' is a required field."),
  more than 25 subrequests or more than 5 query and sObject Collections operations together (query,
  queryAll, query more, ``composite/sobjects``: LIMIT_EXCEEDED; at most 5 of the subrequests may be sObject
  Collections or query operations, REST API guide "Send Multiple Requests Using Composite", v58 edition),
  a referenceId with other characters than letters, digits and ``_`` or used twice, and ``Accept``,
  ``Authorization`` or ``Content-Type`` among ``httpHeaders`` (INVALID_API_INPUT). A url that is a reference
  (``@{r0.nextRecordsUrl}``) is only known to be a query once resolved: past the fifth query operation such
  a subrequest fails on its own with LIMIT_EXCEEDED.
* ``allOrNone: true``: at the first failing subrequest every write of the call is rolled back (the store's
  undo log) and every other subrequest, run or not, answers 400 PROCESSING_HALTED.
* The whole call counts 1 against the API budget and once in the request stats: subrequests never pass
  through ``api_route``. Fault injection applies to the outer request only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from crm_sandbox.salesforce.errors import ApiError, not_found
from crm_sandbox.salesforce.http import ApiSpec, Call, Handler, SfJSON, check_version
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

MAX_SUBREQUESTS = 25
MAX_QUERIES = 5
_REFERENCE_ID = re.compile(r"^[A-Za-z0-9_]+$")
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_STEP = re.compile(r"\.([A-Za-z0-9_]+)|\[(\d+)\]")
_QUERY_PATH = re.compile(r"^/services/data/v[^/]+/(?:query|queryAll)(?:[/?]|$)")
_COLLECTIONS_PATH = re.compile(r"^/services/data/v[^/]+/composite/sobjects/?(?:[?]|$)")
_INHERITED_HEADERS = frozenset({"accept", "authorization", "content-type"})
HALTED_MESSAGE = "The transaction was rolled back since another operation in the same transaction failed."


@dataclass(slots=True)
class SubResult:
    reference_id: str
    status: int
    body: Any
    headers: dict[str, str]

    def render(self) -> dict[str, Any]:
        return {
            "body": self.body,
            "httpHeaders": self.headers,
            "httpStatusCode": self.status,
            "referenceId": self.reference_id,
        }

    @classmethod
    def error(cls, reference_id: str, exc: ApiError) -> SubResult:
        return cls(reference_id, exc.status, exc.body(), {})


def _noop(request: Request) -> Response:  # pragma: no cover - never called: routes used for matching only
    raise NotImplementedError


class Dispatcher:
    """Finds the handler and path parameters for a subrequest's method and path."""

    def __init__(self, specs: Sequence[ApiSpec]) -> None:
        self._routes: list[tuple[Route, Handler]] = []
        for spec in specs:
            paths = [spec.path, spec.path + "/"] if spec.slash else [spec.path]
            for path in paths:
                self._routes.append((Route(path, _noop, methods=list(spec.methods)), spec.handler))

    def find(self, method: str, path: str) -> tuple[Handler, dict[str, Any]]:
        scope = {"type": "http", "method": method, "path": path}
        wrong_method = False
        for route, handler in self._routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return handler, dict(child.get("path_params", {}))
            wrong_method = wrong_method or match is Match.PARTIAL
        if wrong_method:
            raise ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed.")
        raise not_found()


def _limit_exceeded(message: str) -> ApiError:
    return ApiError(400, "LIMIT_EXCEEDED", message)


def _bad_input(message: str) -> ApiError:
    return ApiError(400, "INVALID_API_INPUT", message)


def _is_query(url: str) -> bool:
    """A query or sObject Collections operation: at most ``MAX_QUERIES`` of them share one call."""
    return _QUERY_PATH.match(url) is not None or _COLLECTIONS_PATH.match(url) is not None


def _validate(body: Any) -> tuple[bool, list[dict[str, Any]]]:
    """``(allOrNone, subrequests)`` of a well-formed composite body, else the whole-request ``ApiError``."""
    if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "'compositeRequest' is a required field.")
    subs: list[Any] = body["compositeRequest"]
    if len(subs) > MAX_SUBREQUESTS:
        raise _limit_exceeded(f"compositeRequest can have at most {MAX_SUBREQUESTS} subrequests")
    seen: set[str] = set()
    queries = 0
    for sub in subs:
        if not isinstance(sub, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "each subrequest must be a JSON object")
        for key in ("method", "url", "referenceId"):
            if not isinstance(sub.get(key), str) or not sub[key]:
                raise ApiError(400, "JSON_PARSER_ERROR", f"'{key}' is a required field.")
        reference_id = sub["referenceId"]
        if not _REFERENCE_ID.match(reference_id):
            raise _bad_input(f"Invalid referenceId '{reference_id}': use only letters, digits and '_'")
        if reference_id in seen:
            raise _bad_input(f"Duplicate referenceId provided in the request: {reference_id}")
        seen.add(reference_id)
        headers = sub.get("httpHeaders") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ApiError(400, "JSON_PARSER_ERROR", "httpHeaders must map header names to strings")
        if _INHERITED_HEADERS.intersection(str(k).lower() for k in headers):
            raise _bad_input("Accept, Authorization and Content-Type cannot be set on a subrequest")
        queries += _is_query(sub["url"])
    if queries > MAX_QUERIES:
        raise _limit_exceeded(
            f"compositeRequest can have at most {MAX_QUERIES} query and sObject Collections operations"
        )
    return bool(body.get("allOrNone", False)), subs


class _References:
    """Response bodies of the subrequests so far, by referenceId, for ``@{ref.path}`` substitution."""

    def __init__(self) -> None:
        self._bodies: dict[str, Any] = {}

    def add(self, result: SubResult) -> None:
        if result.status < 400:
            self._bodies[result.reference_id] = result.body

    def value(self, match: re.Match[str]) -> Any:
        ref, path = match.group(1), match.group(2)
        value = self._bodies.get(ref)
        for field, index in _STEP.findall(path):
            if field and isinstance(value, dict):
                value = value.get(field)
            elif index and isinstance(value, list) and int(index) < len(value):
                value = value[int(index)]
            else:
                value = None
        if value is None:
            raise ApiError(
                400,
                "PROCESSING_HALTED",
                f"Invalid reference specified. No value for {ref}{path} found in {ref}",
            )
        return value

    def text(self, text: str) -> str:
        return _REFERENCE.sub(lambda m: _as_text(self.value(m)), text)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            whole = _REFERENCE.fullmatch(value)
            return self.value(whole) if whole else self.text(value)
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


class _Run:
    """One composite call: runs the subrequests in order and collects their results."""

    def __init__(self, call: Call, dispatcher: Dispatcher) -> None:
        self.call = call
        self.dispatcher = dispatcher
        self.references = _References()
        self.queries = 0

    def one(self, sub: dict[str, Any]) -> SubResult:
        reference_id = str(sub["referenceId"])
        try:
            raw_url = str(sub["url"])
            url = self.references.text(raw_url)
            body = self.references.resolve(sub.get("body"))
            if _is_query(url):
                self.queries += 1
                if (
                    self.queries > MAX_QUERIES
                ):  # only a referenced url can get here: the rest is checked first
                    raise _limit_exceeded(f"compositeRequest can have at most {MAX_QUERIES} query operations")
            response = self._dispatch(str(sub["method"]), url, sub.get("httpHeaders") or {}, body)
        except ApiError as exc:
            return SubResult.error(reference_id, exc)
        raw = bytes(response.body)
        headers = {
            k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")
        }
        return SubResult(reference_id, response.status_code, json.loads(raw) if raw else None, headers)

    def _dispatch(self, method: str, url: str, headers: dict[str, str], body: Any) -> Response:
        parts = urlsplit(url)
        path = unquote(parts.path)
        handler, params = self.dispatcher.find(method, path)
        version = check_version(params.get("version"))
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": parts.path.encode("latin-1", "replace"),
            "query_string": parts.query.encode("latin-1", "replace"),
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            "path_params": params,
        }
        return handler(Call(self.call.org, Request(scope), version, self.call.user_id, body))


def endpoint(dispatcher: Dispatcher) -> Handler:
    """The ``composite`` handler, dispatching subrequests through ``dispatcher``."""

    def composite(call: Call) -> Response:
        all_or_none, subs = _validate(call.body)
        run = _Run(call, dispatcher)
        results: list[SubResult] = []
        with call.org.store.transaction() as rollback:
            for number, sub in enumerate(subs):
                result = run.one(sub)
                results.append(result)
                run.references.add(result)
                if all_or_none and result.status >= 400:
                    rollback()
                    halted = ApiError(400, "PROCESSING_HALTED", HALTED_MESSAGE)
                    results = [
                        r if r is result else SubResult.error(r.reference_id, halted) for r in results
                    ] + [SubResult.error(str(s["referenceId"]), halted) for s in subs[number + 1 :]]
                    break
        return SfJSON({"compositeResponse": [r.render() for r in results]})

    return composite
