"""The batched reads a pull is made of: id-windowed search, batch read, v4 association batch read.

Each method spends the fewest calls the batch limits allow (https://developers.hubspot.com/docs/api/crm/deals,
https://developers.hubspot.com/docs/api/crm/search, https://developers.hubspot.com/docs/api/crm/associations):

* search returns up to 200 per page and never more than 10,000 per query; ``search`` walks a query in
  ``hs_object_id`` order and, when a query reaches the cap, starts a new one after the last id seen. The id
  order also breaks timestamp ties, so a window with more than 10,000 records modified in the same
  millisecond still ends;
* batch read takes 100 ids per call; ids HubSpot no longer has (a 207 with ``OBJECT_NOT_FOUND``) are left out;
* v4 association batch read takes 1,000 ids per call; an id with more associations than one page carries a
  per-id ``paging.next.after`` and is asked again, with its cursor, in the next call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from connectors.hubspot.client import HubSpotClient, Response
from connectors.hubspot.values import parse_datetime

BATCH_READ_SIZE = 100
ASSOCIATION_BATCH_SIZE = 1000

# Object types with their own SDK packages; the rest go through ``crm.objects`` with an object type.
_OWN_PACKAGE = {"deals", "contacts"}
_MODIFIED = {"contacts": "lastmodifieddate"}


def modified_property(object_type: str) -> str:
    """The property that moves on every change: contacts have their own name for it."""
    return _MODIFIED.get(object_type, "hs_lastmodifieddate")


@dataclass(frozen=True, slots=True)
class Associated:
    """One association of a from-record: the other record's id and the labels on the pair."""

    to_id: str
    labels: tuple[str | None, ...]


T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Fetcher:
    def __init__(self, client: HubSpotClient, *, page_size: int = 200, result_cap: int = 10_000) -> None:
        self._client = client
        self._page_size = page_size
        self._cap = result_cap

    # ------------------------------------------------------------------------------------------ search

    def _search_page(self, object_type: str, body: Mapping[str, Any]) -> Response:
        endpoint = f"{object_type}.search"
        if object_type in _OWN_PACKAGE:
            return self._client.send(
                endpoint, f"{object_type}.search", "do_search", public_object_search_request=body, search=True
            )
        return self._client.send(
            endpoint,
            "objects.search",
            "do_search",
            object_type,
            public_object_search_request=body,
            search=True,
        )

    def search(
        self,
        object_type: str,
        properties: Sequence[str],
        *,
        modified_from_ms: int | None = None,
        modified_to_ms: int | None = None,
        after_id: int = 0,
    ) -> Iterator[Mapping[str, Any]]:
        """Every record (optionally modified in [from, to] ms), in id order, past the 10,000-result cap."""
        modified = modified_property(object_type)
        last_id = after_id
        while True:
            filters: list[dict[str, str]] = [
                {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)}
            ]
            if modified_from_ms is not None:
                filters.append({"propertyName": modified, "operator": "GTE", "value": str(modified_from_ms)})
            if modified_to_ms is not None:
                filters.append({"propertyName": modified, "operator": "LTE", "value": str(modified_to_ms)})
            offset: str | None = None
            seen = 0
            while True:
                body: dict[str, Any] = {
                    "filterGroups": [{"filters": filters}],
                    "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                    "properties": list(properties),
                    "limit": self._page_size,
                }
                if offset is not None:
                    body["after"] = offset
                page = self._search_page(object_type, body).body or {}
                results = page.get("results") or []
                for record in results:
                    last_id = max(last_id, int(record["id"]))
                    yield record
                seen += len(results)
                offset = ((page.get("paging") or {}).get("next") or {}).get("after")
                if not offset or not results:
                    return
                if seen + self._page_size > self._cap:
                    break  # the next page would pass the cap: a new query after the last id
            # fall through: restart the query after ``last_id``

    # ---------------------------------------------------------------------------------------- batch read

    def batch_read(
        self, object_type: str, ids: Iterable[str], properties: Sequence[str]
    ) -> dict[str, Mapping[str, Any]]:
        """The live records among ``ids``, by id; missing and archived ones are simply absent."""
        unique = list(dict.fromkeys(ids))
        found: dict[str, Mapping[str, Any]] = {}
        endpoint = f"{object_type}.batch_read"
        for chunk in chunked(unique, BATCH_READ_SIZE):
            body = {
                "inputs": [{"id": i} for i in chunk],
                "properties": list(properties),
                "propertiesWithHistory": [],
            }
            if object_type in _OWN_PACKAGE:
                response = self._client.send(
                    endpoint, f"{object_type}.batch", "read", batch_read_input_simple_public_object_id=body
                )
            else:
                response = self._client.send(
                    endpoint,
                    "objects.batch",
                    "read",
                    object_type,
                    batch_read_input_simple_public_object_id=body,
                )
            for record in (response.body or {}).get("results") or []:
                if not record.get("archived"):
                    found[str(record["id"])] = record
        return found

    # -------------------------------------------------------------------------------------- associations

    def associations(self, from_type: str, to_type: str, ids: Iterable[str]) -> dict[str, list[Associated]]:
        """For each from-id, its associated to-records with labels; ids without any are absent."""
        pending: list[tuple[str, str | None]] = [(i, None) for i in dict.fromkeys(ids)]
        out: dict[str, dict[str, Associated]] = {}  # from id -> to id -> association, in answer order
        endpoint = f"associations.{from_type}.{to_type}"
        while pending:
            batch, pending = pending[:ASSOCIATION_BATCH_SIZE], pending[ASSOCIATION_BATCH_SIZE:]
            inputs = [{"id": i} if after is None else {"id": i, "after": after} for i, after in batch]
            response = self._client.send(
                endpoint,
                "associations.batch",
                "get_page",
                from_type,
                to_type,
                batch_input_public_fetch_associations_batch_request={"inputs": inputs},
            )
            for result in (response.body or {}).get("results") or []:
                from_id = str((result.get("from") or {}).get("id"))
                bucket = out.setdefault(from_id, {})
                for to in result.get("to") or []:
                    labels = [t.get("label") for t in to.get("associationTypes") or []]
                    to_id = str(to["toObjectId"])
                    seen = bucket.get(to_id)
                    if seen is not None:  # an id repeats when several labels apply
                        labels = [*seen.labels, *labels]
                    bucket[to_id] = Associated(to_id, _unique(labels))
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if after:
                    pending.append((from_id, str(after)))
        return {from_id: list(bucket.values()) for from_id, bucket in out.items()}

    # ------------------------------------------------------------------------------------------ archived

    def archived_deals(self, since_ms: int | None) -> list[str]:
        """Ids of archived deals (archived at or after ``since_ms`` when HubSpot says when)."""
        removed: list[str] = []
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 100, "archived": True, "properties": ["hs_object_id"]}
            if after is not None:
                kwargs["after"] = after
            page = self._client.send("deals.list_archived", "deals.basic", "get_page", **kwargs).body or {}
            for record in page.get("results") or []:
                archived_at = parse_datetime(record.get("archivedAt"))
                if since_ms is None or archived_at is None or archived_at.timestamp() * 1000 >= since_ms:
                    removed.append(str(record["id"]))
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return removed


def _unique(labels: list[str | None]) -> tuple[str | None, ...]:
    """One entry per label (an id repeats when several labels apply, https://developers.hubspot.com/docs/api/crm/associations)."""
    return tuple(labels) if len(labels) < 2 else tuple(dict.fromkeys(labels))
