"""API calls and wall time of the Salesforce connector against the sandbox, versus the theoretical minimum.

    .venv/bin/python -m bench.bench_salesforce_connector [--deals 10000 100000] [--seed 7]

For each size: a full cycle (directory + full pull) and an incremental cycle after 1% of the opportunities
changed (half by a field edit, half by a newly logged call), both through the real simple-salesforce over
HTTPS. Calls are counted by the connector (``usage()``) and cross-checked with the sandbox's own request
count.

Theoretical minimum (what any client needs at Salesforce's largest page of 2,000 rows, child rows of
subqueries counted as the server counts them):

* full: 2 directory queries (users, stages) + ceil(opportunity rows incl. contact roles, Tasks and Events
  / 2000) + ceil(e-mails / 2000);
* incremental: 2 directory queries + one change query for each of the 5 objects that can change an
  aggregate (Opportunity, Task, Event, EmailMessage, OpportunityContactRole; the Opportunity one can
  carry the changed aggregates themselves) + ceil(aggregate rows of the changed deals / 2000) +
  ceil(their e-mails / 2000) + the touches logged on their contacts (Tasks and Events, one query each at
  least) + the e-mails behind contact e-mail Tasks logged on other deals (for their direction).

A touch logged on a contact counts for every deal of that contact (as on HubSpot): the full pull gets them
from rows it reads anyway, so its minimum is unchanged.

That "page model" counts one call per query page. Composite (one API call for up to 5 query operations,
Query More included) beats it, so the bench also reports a **Composite-aware minimum**: the same pages,
packed 5 per call, where a stage whose queries need an earlier stage's results cannot share its calls:

    composite minimum = sum over stages s of ceil(pages(s) / 5)

* full: [directory: 2] -> [opportunity pages + e-mail pages];
* incremental: [directory: 2] -> [5 change queries] -> [deals of the touched contacts: ceil(their
  contact-role rows / 2000), 0 when no change names a contact] -> [aggregate pages] -> [e-mail pages +
  contact Task pages + contact Event pages] -> [e-mails behind contact e-mail Tasks of other deals].

The deals-of-contacts stage is the one page the page model leaves out; it is a real dependency (SOQL
does not allow a semi-join inside the ``OR`` that also takes the changed ids). After the table the
incremental and full cycles' calls are listed by what they carried (``[...]``: the query pages of one
Composite call).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from crm_sandbox.api_client import SandboxApi
from crm_sandbox.salesforce import SalesforceSandbox, running_salesforce_sandbox

from connectors.salesforce import SalesforceOptions, build_salesforce_connector

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
PAGE = 2000
PER_CALL = 5  # Composite: query operations per call
CHILD_LIMIT = 200  # the connector's activities_per_deal default


@dataclass
class Cycle:
    name: str
    calls: int
    server_calls: int
    minimum: int
    composite_minimum: int
    seconds: float
    deals: int
    breakdown: Counter[str] = field(default_factory=Counter)

    @property
    def ratio(self) -> float:
        return self.calls / self.minimum

    @property
    def composite_ratio(self) -> float:
        return self.calls / self.composite_minimum


def packed(stages: list[int]) -> int:
    """Calls for stages of query pages run one after the other, each packed ``PER_CALL`` pages a call."""
    return sum(math.ceil(pages / PER_CALL) for pages in stages)


_LABELS = (
    (
        re.compile(
            r"FROM (\w+) WHERE SystemModstamp >=.*\.Type|FROM (OpportunityContactRole) WHERE SystemModstamp"
        ),
        "change {}",
    ),
    (re.compile(r"FROM Opportunity WHERE SystemModstamp"), "changed aggregates"),
    (re.compile(r"FROM Opportunity WHERE Id IN"), "aggregates by id"),
    (re.compile(r"FROM OpportunityContactRole WHERE ContactId IN"), "deals of contacts"),
    (re.compile(r"FROM EmailMessage WHERE RelatedToId IN"), "e-mails by RelatedToId"),
    (re.compile(r"FROM EmailMessage WHERE ActivityId IN"), "e-mails by ActivityId"),
    (re.compile(r"FROM Task WHERE IsClosed = true AND WhoId IN"), "contact Tasks"),
    (re.compile(r"FROM Event WHERE WhoId IN"), "contact Events"),
    (re.compile(r"FROM (User|OpportunityStage)\b"), "directory {}"),
    (re.compile(r"FROM Opportunity ORDER BY Id"), "all opportunities"),
    (re.compile(r"FROM EmailMessage WHERE RelatedTo.Type"), "all e-mails"),
)


class CallLog:
    """Labels each API call of the connector by the query pages it carried (for the breakdown)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._next_page: dict[str, str] = {}  # nextRecordsUrl -> label of its query

    def _label(self, url: str, body: object, previous: str = "") -> str:
        if url.startswith("@{"):  # chained Query More: past the query's end when the body is an error
            if not isinstance(body, dict):
                return "past the end"
            label = previous.removesuffix(" (more)") + " (more)"
            if body.get("nextRecordsUrl"):
                self._next_page[str(body["nextRecordsUrl"])] = label.removesuffix(" (more)")
            return label
        parts = urlsplit(url)
        if "/query/01g" in parts.path or "/queryAll/01g" in parts.path:
            label = self._next_page.get(parts.path, "query more") + " (more)"
        else:
            soql = parse_qs(parts.query).get("q", [""])[0]
            label = next(
                (fmt.format(*(g for g in m.groups() if g)) for rx, fmt in _LABELS if (m := rx.search(soql))),
                soql[:40] or parts.path,
            )
        if isinstance(body, dict) and body.get("nextRecordsUrl"):
            self._next_page[str(body["nextRecordsUrl"])] = label.removesuffix(" (more)")
        return label

    def observe(self, response: requests.Response) -> None:
        request = response.request
        url = str(request.url or "")
        if "/services/oauth2/" in url:
            return
        if request.method == "POST" and url.rstrip("/").endswith("/composite"):
            subrequests = json.loads(request.body or b"{}")["compositeRequest"]
            answers = response.json().get("compositeResponse", []) if response.ok else []
            bodies = [a.get("body") for a in answers] or [None] * len(subrequests)
            labels: list[str] = []
            for sub, body in zip(subrequests, bodies, strict=True):
                labels.append(self._label(sub["url"], body, labels[-1] if labels else ""))
            self.calls["[" + _runs(labels) + "]"] += 1
        else:
            self.calls[self._label(url, response.json() if response.ok else None)] += 1


def _runs(labels: list[str]) -> str:
    """``a, a (more) x3, past the end`` for consecutive equal labels."""
    out: list[str] = []
    for label in labels:
        if out and out[-1].split(" x")[0] == label:
            head, _, times = out[-1].partition(" x")
            out[-1] = f"{head} x{int(times or 1) + 1}"
        else:
            out.append(label)
    return ", ".join(out)


def aggregate_rows(box: SalesforceSandbox, opp_ids: set[str] | None) -> tuple[int, int]:
    """(rows of the opportunity aggregate query, e-mails) for ``opp_ids`` (None: every live opportunity)."""
    store = box.org.store
    live = {i for i, r in store.table("Opportunity").rows.items() if not r.get("IsDeleted")}
    wanted = live if opp_ids is None else live & opp_ids
    per_opp: Counter[str] = Counter()
    rows = len(wanted)
    for table, parent in (
        ("OpportunityContactRole", "OpportunityId"),
        ("Task", "WhatId"),
        ("Event", "WhatId"),
    ):
        per_opp.clear()
        for record in store.table(table).rows.values():
            if not record.get("IsDeleted") and record.get(parent) in wanted:
                per_opp[str(record[parent])] += 1
        limit = None if table == "OpportunityContactRole" else CHILD_LIMIT
        rows += sum(min(n, limit) if limit else n for n in per_opp.values())
    emails = sum(
        1
        for r in store.table("EmailMessage").rows.values()
        if not r.get("IsDeleted") and r.get("RelatedToId") in wanted
    )
    return rows, emails


def contact_touch_pages(box: SalesforceSandbox, opp_ids: set[str]) -> tuple[int, int]:
    """Minimum pages for the touches logged on the contacts of ``opp_ids``, and for the e-mails behind the
    contact e-mail Tasks logged on other deals (their direction)."""
    store = box.org.store
    contacts = {
        str(r["ContactId"])
        for r in store.table("OpportunityContactRole").rows.values()
        if not r.get("IsDeleted") and r.get("OpportunityId") in opp_ids
    }
    tasks = [
        r
        for r in store.table("Task").rows.values()
        if not r.get("IsDeleted") and r.get("IsClosed") and r.get("WhoId") in contacts
    ]
    events = [
        r for r in store.table("Event").rows.values() if not r.get("IsDeleted") and r.get("WhoId") in contacts
    ]
    elsewhere = [t for t in tasks if t.get("TaskSubtype") == "Email" and t.get("WhatId") not in opp_ids]
    pages = max(1, math.ceil(len(tasks) / PAGE)) + max(1, math.ceil(len(events) / PAGE))
    return pages, math.ceil(len(elsewhere) / PAGE)


def contact_deal_pages(box: SalesforceSandbox, cursor: Mapping[str, str], overlap: timedelta) -> int:
    """Pages of the deals-of-contacts look-up: contact roles of the contacts named by changed Tasks/Events."""
    store = box.org.store
    contacts: set[str] = set()
    for table, key in (("Task", "task"), ("Event", "event")):
        since = datetime.fromisoformat(cursor[key]) - overlap
        for r in store.table(table).rows.values():
            who = str(r.get("WhoId") or "")
            stamp = datetime.fromisoformat(str(r["SystemModstamp"]))
            if who.startswith("003") and stamp >= since:
                contacts.add(who)
    if not contacts:
        return 0
    rows = sum(
        1
        for r in store.table("OpportunityContactRole").rows.values()
        if not r.get("IsDeleted") and r.get("ContactId") in contacts
    )
    return max(1, math.ceil(rows / PAGE))


COLLECTIONS = "/services/data/v62.0/composite/sobjects"


def plain_client(box: SalesforceSandbox) -> SandboxApi:
    """The org's REST API as another integration uses it, for changes behind the connector's back."""
    return SandboxApi(box.instance_url, box.org.issue_token(), verify=str(box.ca_file))


def change_one_percent(box: SalesforceSandbox, opp_ids: list[str]) -> set[str]:
    """Edit 0.5% of the opportunities and log a call on another 0.5%, 200 records per call."""
    sf = plain_client(box)
    n = max(2, len(opp_ids) // 100)
    step = len(opp_ids) // n
    chosen = [opp_ids[i * step] for i in range(n)]
    edited, called = chosen[: n // 2], chosen[n // 2 :]
    for start in range(0, len(edited), 200):
        records = [
            {"attributes": {"type": "Opportunity"}, "id": i, "NextStep": "Edited for the benchmark"}
            for i in edited[start : start + 200]
        ]
        sf.call("PATCH", COLLECTIONS, {"allOrNone": False, "records": records})
    for start in range(0, len(called), 200):
        records = [
            {
                "attributes": {"type": "Task"},
                "WhatId": i,
                "Subject": "Call",
                "Status": "Completed",
                "TaskSubtype": "Call",
                "CallType": "Outbound",
                "CallDisposition": "Connected",
            }
            for i in called[start : start + 200]
        ]
        sf.call("POST", COLLECTIONS, {"allOrNone": False, "records": records})
    sf.close()
    return set(chosen)


def run(deals: int, seed: int) -> list[Cycle]:
    started = time.perf_counter()
    with (
        running_salesforce_sandbox(seed=seed, deals=deals, now=NOW) as box,
        tempfile.TemporaryDirectory() as tmp,
    ):
        print(
            f"sandbox with {deals} opportunities ready in {time.perf_counter() - started:.0f} s", flush=True
        )
        token = Path(tmp) / "token"
        token.write_text(box.org.issue_token())
        options = SalesforceOptions.model_validate(
            {
                "instance_url": box.instance_url,
                "ca_file": str(box.ca_file),
                "auth": {"kind": "access_token", "access_token_file": str(token)},
            }
        )
        connector = build_salesforce_connector(
            options, now=lambda: datetime.now(UTC), monotonic=time.monotonic, sleep=time.sleep
        )
        cycles = []
        box.control.reset_stats()
        full_log = CallLog()
        observe_budget = connector.client.session.observer
        assert observe_budget is not None
        logs = [full_log]

        def observe(response: requests.Response) -> None:
            observe_budget(response)
            logs[-1].observe(response)

        connector.client.session.observer = observe
        t0 = time.perf_counter()
        directory = connector.read_directory()
        batches = list(connector.pull_changes(directory, None))
        seconds = time.perf_counter() - t0
        rows, emails = aggregate_rows(box, None)
        full_calls = connector.usage().calls
        pages = math.ceil(rows / PAGE) + math.ceil(emails / PAGE)
        cycles.append(
            Cycle(
                "full",
                full_calls,
                int(box.control.stats()["total"]),
                2 + pages,
                packed([2, pages]),
                seconds,
                sum(len(b.deals) for b in batches),
                full_log.calls,
            )
        )
        ids = sorted(d.id for b in batches for d in b.deals)
        box.control.set_clock(box.control.clock() + timedelta(hours=1), ticking=True)
        changed = change_one_percent(box, ids)
        box.control.reset_stats()
        log = CallLog()
        logs.append(log)
        t0 = time.perf_counter()
        directory = connector.read_directory()
        inc = list(connector.pull_changes(directory, batches[-1].cursor))
        seconds = time.perf_counter() - t0
        rows, emails = aggregate_rows(box, changed)
        touch_pages, elsewhere_pages = contact_touch_pages(box, changed)
        aggregate_pages, email_pages = math.ceil(rows / PAGE), math.ceil(emails / PAGE)
        minimum = 2 + 5 + aggregate_pages + email_pages + touch_pages + elsewhere_pages
        stages = [
            2,
            5,
            contact_deal_pages(box, batches[-1].cursor, options.cursor_overlap),
            aggregate_pages,
            email_pages + touch_pages,
            elsewhere_pages,
        ]
        cycles.append(
            Cycle(
                "incremental 1%",
                connector.usage().calls - full_calls,
                int(box.control.stats()["total"]),
                minimum,
                packed(stages),
                seconds,
                sum(len(b.deals) for b in inc),
                log.calls,
            )
        )
        connector.close()
        return cycles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}")
    print(
        "| opportunities | cycle | deals returned | API calls (connector / sandbox) "
        "| page-model minimum | ratio | Composite minimum | ratio | wall time |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size in args.deals:
        for c in run(size, args.seed):
            print(
                f"| {size:,} | {c.name} | {c.deals:,} | {c.calls} / {c.server_calls} | {c.minimum} | "
                f"{c.ratio:.2f}x | {c.composite_minimum} | {c.composite_ratio:.2f}x | {c.seconds:.1f} s |",
                flush=True,
            )
            for label, calls in sorted(c.breakdown.items(), key=lambda item: -item[1])[:12]:
                print(f"    {c.name} at {size:,}: {calls} x {label}", flush=True)


if __name__ == "__main__":
    main()
