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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from connectors.errors import BudgetExhausted, RetryLater
from connectors.retry import RetrySettings, call_with_retry
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import TRANSIENT_CODES, error_codes

COLLECTION_LIMIT = 200


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
    ) -> None:
        self._client = client
        self._retry = retry
        self._sleep = sleep
        self._batch = min(batch_size, COLLECTION_LIMIT)

    def create(self, records: Sequence[dict[str, Any]], find_existing: FindExisting) -> list[RecordResult]:
        return self._run("POST", records, find_existing)

    def update(self, records: Sequence[dict[str, Any]]) -> list[RecordResult]:
        return self._run("PATCH", records, None)

    def delete(self, record_ids: Sequence[str]) -> list[RecordResult]:
        return self._run("DELETE", [{"id": i} for i in record_ids], None)

    def _run(
        self, method: str, records: Sequence[dict[str, Any]], find_existing: FindExisting | None
    ) -> list[RecordResult]:
        results: list[RecordResult] = []
        for start in range(0, len(records), self._batch):
            chunk = records[start : start + self._batch]
            results.extend(self._chunk(method, chunk, find_existing))
        return results

    def _chunk(
        self, method: str, chunk: Sequence[dict[str, Any]], find_existing: FindExisting | None
    ) -> list[RecordResult]:
        state = _Pending(records=dict(enumerate(chunk)))

        def attempt() -> None:
            state.attempts += 1
            if state.attempts > 1 and find_existing is not None and state.records:
                for index, record_id in find_existing(state.records).items():
                    state.results[index] = RecordResult(RecordStatus.EXISTED, record_id)
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
                state.results[index] = result
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
                state.results[index] = RecordResult(RecordStatus.RETRY_LATER, codes=(type(exc).__name__,))
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
