"""``query``, ``queryAll`` and ``query/{locator}-{offset}``: SOQL with Salesforce's paging.

A query runs once; its matching rows stay in a cursor and each page renders ``batchSize`` rows (from
``Sforce-Query-Options: batchSize=N``, clamped to 200..2000, default 2000; child rows of subqueries count
toward it). ``nextRecordsUrl`` is ``/services/data/vXX.X/query/01g...-<offset>`` for query and queryAll alike.
"""

from __future__ import annotations

import re
from typing import Any

from crm_sandbox.salesforce.errors import ApiError
from crm_sandbox.salesforce.http import Call, SfJSON
from crm_sandbox.salesforce.org import Cursor
from crm_sandbox.salesforce.soql.errors import SoqlError
from crm_sandbox.salesforce.soql.parser import parse
from starlette.responses import Response

DEFAULT_BATCH = 2000
_BATCH = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)


def batch_size(call: Call) -> int:
    m = _BATCH.search(call.request.headers.get("sforce-query-options", ""))
    if m is None:
        return DEFAULT_BATCH
    return max(200, min(2000, int(m.group(1))))


def run_query(call: Call, *, all_rows: bool) -> Response:
    soql = call.query_param("q")
    if not soql:
        raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
    org = call.org
    with org.store.lock:
        try:
            compiled = org.engine.compile(parse(soql))
            result = org.engine.execute(compiled, all_rows=all_rows)
        except SoqlError as exc:
            raise ApiError(400, exc.code, exc.message) from None
        if result.aggregate is not None:
            return SfJSON({"totalSize": 1, "done": True, "records": [result.aggregate]})
        cursor = Cursor(result, all_rows, call.version)
        return SfJSON(_page(call, cursor, None, 0))


def query(call: Call) -> Response:
    return run_query(call, all_rows=False)


def query_all(call: Call) -> Response:
    return run_query(call, all_rows=True)


def query_more(call: Call) -> Response:
    locator, _, offset_text = call.params["locator"].rpartition("-")
    cursor = call.org.cursor(locator) if offset_text.isdigit() else None
    if cursor is None:
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    with call.org.store.lock:
        return SfJSON(_page(call, cursor, locator, int(offset_text)))


def _page(call: Call, cursor: Cursor, locator: str | None, start: int) -> dict[str, Any]:
    result = cursor.result
    rows = result.rows
    limit = batch_size(call)
    records: list[dict[str, Any]] = []
    weight = 0
    i = start
    while i < len(rows):
        rendered, w = call.org.engine.render(result.compiled, rows[i], cursor.version, cursor.all_rows)
        if records and weight + w > limit:
            break
        records.append(rendered)
        weight += w
        i += 1
        if weight >= limit:
            break
    body: dict[str, Any] = {"totalSize": result.total, "done": i >= len(rows)}
    if i < len(rows):
        locator = locator or call.org.open_cursor(result, cursor.all_rows, cursor.version)
        body["nextRecordsUrl"] = f"/services/data/v{cursor.version}/query/{locator}-{i}"
    body["records"] = records
    return body
