"""sObject Collections calls (``composite/sobjects``) with per-record outcomes and safe retries.

One call writes up to 200 records, of mixed types, with ``allOrNone: false``: Salesforce answers 200 with one
SaveResult per record, in order, and never raises for a single record
(https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-create.html).
Records that failed with a transient code (UNABLE_TO_LOCK_ROW) are sent again with backoff; every other
per-record error is final for this cycle.

Retrying a *create* is only safe when we know the first attempt did not land (a dropped connection can
lose the answer to a call that succeeded). ``CollectionWriter.create`` therefore asks, before every retry,
which pending records already exist: a caller-supplied ``find_existing`` looks Tasks up by their
idempotency key; CampaignMembers need no look-up since a second insert is refused with DUPLICATE_VALUE.

Several collections, of any kind, go together in ``POST composite`` calls (``CollectionWriter.write``):
"the entire series of requests counts as a single call toward your API limits" (reference §1.4), and at
most 5 of a call's 25 subrequests may be sObject Collections or query operations (REST API guide, "Send
Multiple Requests Using Composite", in its v58 edition:
https://developer.salesforce.com/docs/atlas.ja-jp.242.0.api_rest.meta/api/resources_composite_composite_post.htm;
collections inside Composite since API v43.0). So a call carries at most ``collections_per_call`` (at
most 5) collections and queries together: one apply's creates, updates and deletes share calls (1,000
records per call), and queries the caller wants answered *after* the writes (the read-back of the written
opportunities' new ``LastModifiedDate``) ride in the free slots of the last call, since subrequests run
in order. That first send is not retried as a whole: a collection that did not come back with a full
answer (the call failed, its subrequest failed, records locked) continues on its own through the retry
loop above, which for creates asks first which records landed; its records' results say ``retried``.
[unverified] that Salesforce accepts 5 collections of 200 records in one Composite call within its
response-time limits (no documented size limit for it was found); ``collections_per_call=1`` sends one
collection per call (a constructor argument, not a setting).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

import structlog

from connectors.errors import BudgetExhausted, RetryLater
from connectors.retry import RetrySettings, call_with_retry
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import TRANSIENT_CODES, error_codes

log = structlog.get_logger(__name__)

COLLECTION_LIMIT = 200
COMPOSITE_HEAVY = 5  # Composite: at most 5 sObject Collections and query operations per call, together


class RecordStatus(StrEnum):
    WRITTEN = "written"
    EXISTED = "existed"  # found by its key before a retry wrote it again
    FAILED = "failed"
    RETRY_LATER = "retry_later"


@dataclass(frozen=True, slots=True)
class RecordResult:
    status: RecordStatus
    record_id: str | None = None
    codes: tuple[str, ...] = ()
    retried: bool = False  # settled after the bundled first attempt, by the retry loop


@dataclass(frozen=True, slots=True)
class Written:
    """``CollectionWriter.write``'s answer: per record, in input order; per trailing query, its rows, or
    None when the query was not answered after the writes (its call failed, or the query needs a page)."""

    creates: list[RecordResult]
    updates: list[RecordResult]
    deletes: list[RecordResult]
    queries: list[list[dict[str, Any]] | None]


@dataclass(slots=True)
class _Pending:
    records: dict[int, dict[str, Any]]
    results: dict[int, RecordResult] = field(default_factory=dict)
    attempts: int = 0


# find_existing(records by index) -> record id by index, for records that already exist in Salesforce
FindExisting = Callable[[Mapping[int, Mapping[str, Any]]], Mapping[int, str]]


class CollectionWriter:
    """Creates, updates and deletes records in collections of at most ``batch_size``."""

    def __init__(
        self,
        client: SalesforceClient,
        *,
        retry: RetrySettings,
        sleep: Callable[[float], None],
        batch_size: int = COLLECTION_LIMIT,
        collections_per_call: int = COMPOSITE_HEAVY,
    ) -> None:
        self._client = client
        self._retry = retry
        self._sleep = sleep
        self._batch = min(batch_size, COLLECTION_LIMIT)
        self._per_call = max(1, min(collections_per_call, COMPOSITE_HEAVY))

    def create(self, records: Sequence[dict[str, Any]], find_existing: FindExisting) -> list[RecordResult]:
        return self.write(creates=records, find_existing=find_existing).creates

    def update(self, records: Sequence[dict[str, Any]]) -> list[RecordResult]:
        return self.write(updates=records).updates

    def delete(self, record_ids: Sequence[str]) -> list[RecordResult]:
        return self.write(deletes=record_ids).deletes

    def write(
        self,
        *,
        creates: Sequence[dict[str, Any]] = (),
        updates: Sequence[dict[str, Any]] = (),
        deletes: Sequence[str] = (),
        find_existing: FindExisting | None = None,
        then_query: Sequence[str] = (),
    ) -> Written:
        """Creates, updates and deletes in collections, ``collections_per_call`` collections per Composite
        call whatever their kind, and the ``then_query`` SOQL queries after them in the last call's free
        slots (or calls of their own). ``find_existing`` is asked before a create is sent again."""
        chunks: list[tuple[str, Sequence[dict[str, Any]]]] = []
        for method, records in (
            ("POST", creates),
            ("PATCH", updates),
            ("DELETE", [{"id": i} for i in deletes]),
        ):
            chunks.extend((method, records[i : i + self._batch]) for i in range(0, len(records), self._batch))
        items: list[tuple[str, Sequence[dict[str, Any]]] | str] = [*chunks, *then_query]
        states: list[_Pending | list[RecordResult]] = []
        answers: list[list[dict[str, Any]] | None] = []
        for start in range(0, len(items), self._per_call):
            group = items[start : start + self._per_call]
            first = group[0]
            if len(group) == 1 and not isinstance(first, str):
                # a lone collection: sent as itself, through the retry loop, before what follows it
                method, chunk = first
                states.append(self._chunk(method, chunk, find_existing if method == "POST" else None))
                continue
            sent_states, sent_answers = self._send_together(group)
            states.extend(sent_states)
            answers.extend(sent_answers)
        results: dict[str, list[RecordResult]] = {"POST": [], "PATCH": [], "DELETE": []}
        for (method, chunk), state in zip(chunks, states, strict=True):
            if isinstance(state, list):
                results[method].extend(state)
                continue
            existing = find_existing if method == "POST" else None
            results[method].extend(self._chunk(method, chunk, existing, state))
        return Written(results["POST"], results["PATCH"], results["DELETE"], answers)

    def _send_together(
        self, group: Sequence[tuple[str, Sequence[dict[str, Any]]] | str]
    ) -> tuple[list[_Pending], list[list[dict[str, Any]] | None]]:
        """The first attempt of several collections (and queries after them) in one Composite call: per
        collection, what is left to write; per query, its rows (None when not answered)."""
        collections = [item for item in group if not isinstance(item, str)]
        states = [_Pending(records=dict(enumerate(chunk)), attempts=1) for _, chunk in collections]
        queries = [item for item in group if isinstance(item, str)]
        subrequests = [
            self._subrequest(method, list(chunk), f"c{number}")
            for number, (method, chunk) in enumerate(collections)
        ] + [
            {
                "method": "GET",
                "url": self._client.data_path("query/?" + urlencode({"q": q})),
                "referenceId": f"q{n}",
            }
            for n, q in enumerate(queries)
        ]
        try:
            answers = self._client.composite(subrequests, where="composite composite/sobjects")
        except BudgetExhausted:
            raise
        except RetryLater as exc:  # may have landed: each collection goes on alone, creates look first
            log.info("salesforce_collections_call_failed", collections=len(group), error=type(exc).__name__)
            return states, [None] * len(queries)
        for state, answer in zip(states, answers[: len(states)], strict=True):
            saves = answer.get("body")
            if answer.get("httpStatusCode") != 200 or not isinstance(saves, list):
                continue  # not written (a failed subrequest writes nothing): sent again on its own
            if len(saves) != len(state.records):
                continue
            for index, save in zip(sorted(state.records), saves, strict=True):
                result = self._result(save)
                if result is not None:
                    state.results[index] = result
                    state.records.pop(index)
        return states, [_rows(answer) for answer in answers[len(states) :]]

    def _subrequest(self, method: str, records: list[dict[str, Any]], reference: str) -> dict[str, Any]:
        if method == "DELETE":
            ids = ",".join(str(r["id"]) for r in records)
            url = self._client.data_path(
                "composite/sobjects?" + urlencode({"ids": ids, "allOrNone": "false"})
            )
            return {"method": method, "url": url, "referenceId": reference}
        return {
            "method": method,
            "url": self._client.data_path("composite/sobjects"),
            "referenceId": reference,
            "body": {"allOrNone": False, "records": records},
        }

    def _chunk(
        self,
        method: str,
        chunk: Sequence[dict[str, Any]],
        find_existing: FindExisting | None,
        state: _Pending | None = None,
    ) -> list[RecordResult]:
        """One collection through the retry loop; ``state`` when a bundled first attempt was made."""
        if state is None:
            state = _Pending(records=dict(enumerate(chunk)))
        elif not state.records:
            return [state.results[i] for i in range(len(chunk))]

        def attempt() -> None:
            state.attempts += 1
            if state.attempts > 1 and find_existing is not None and state.records:
                for index, record_id in find_existing(state.records).items():
                    state.results[index] = RecordResult(RecordStatus.EXISTED, record_id, retried=True)
                    state.records.pop(index, None)
            if not state.records:
                return
            order = sorted(state.records)
            answers = self._send(method, [state.records[i] for i in order])
            locked = 0
            for index, answer in zip(order, answers, strict=True):
                result = self._result(answer)
                if result is None:
                    locked += 1
                    continue
                state.results[index] = replace(result, retried=True) if state.attempts > 1 else result
                state.records.pop(index)
            if locked:
                raise RetryLater(
                    f"salesforce composite/sobjects: {locked} records locked (UNABLE_TO_LOCK_ROW)"
                )

        try:
            call_with_retry(attempt, self._retry, sleep=self._sleep)
        except BudgetExhausted:
            raise
        except RetryLater as exc:
            for index in state.records:
                state.results[index] = RecordResult(
                    RecordStatus.RETRY_LATER, codes=(type(exc).__name__,), retried=True
                )
        return [state.results[i] for i in range(len(chunk))]

    def _send(self, method: str, records: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
        if method == "DELETE":
            ids = ",".join(str(r["id"]) for r in records)
            answer = self._client.restful(
                "composite/sobjects", method="DELETE", retry=False, params={"ids": ids, "allOrNone": "false"}
            )
        else:
            answer = self._client.restful(
                "composite/sobjects",
                method=method,
                retry=False,
                json={"allOrNone": False, "records": records},
            )
        if not isinstance(answer, list) or len(answer) != len(records):
            raise RetryLater("salesforce composite/sobjects: unexpected answer shape")
        return answer

    @staticmethod
    def _result(answer: Mapping[str, Any]) -> RecordResult | None:
        """The outcome of one SaveResult; None when the record should be sent again."""
        record_id = answer.get("id")
        if answer.get("success"):
            return RecordResult(RecordStatus.WRITTEN, str(record_id) if record_id else None)
        codes = error_codes(answer.get("errors") or [])
        if TRANSIENT_CODES.intersection(codes):
            return None
        return RecordResult(RecordStatus.FAILED, str(record_id) if record_id else None, codes)


def _rows(answer: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """A query subrequest's rows when it answered them all in one page, else None."""
    body = answer.get("body")
    if answer.get("httpStatusCode") != 200 or not isinstance(body, Mapping) or not body.get("done", True):
        return None
    return [dict(row) for row in body.get("records") or []]
