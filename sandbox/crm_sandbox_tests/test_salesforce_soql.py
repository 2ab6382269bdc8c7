"""SOQL parser and evaluator, table-driven, over a small hand-built org (no HTTP)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from crm_sandbox.clock import SandboxClock
from crm_sandbox.dataset import (
    ActivityKind,
    Archetype,
    Dataset,
    GenActivity,
    GenCompany,
    GenContact,
    GenDeal,
    GenDealContact,
    GenOwner,
    GenPipeline,
    GenStage,
)
from crm_sandbox.salesforce.ids import make_id, normalize_id
from crm_sandbox.salesforce.loader import load_dataset
from crm_sandbox.salesforce.org import SalesforceOrg
from crm_sandbox.salesforce.soql.errors import SoqlError
from crm_sandbox.salesforce.soql.parser import parse

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # a Thursday


def _dataset() -> Dataset:
    stages = (
        GenStage("prospect", "Prospecting", 0, 0.1, False, False),
        GenStage("nego", "Negotiation/Review", 1, 0.9, False, False),
        GenStage("won", "Closed Won", 2, 1.0, True, True),
        GenStage("lost", "Closed Lost", 3, 0.0, True, False),
    )
    owners = (
        GenOwner(1, "Ada", "Lovelace", "ada@example.com", "Europe/London"),
        GenOwner(2, "Bob", "Builder", "bob@example.com", "America/New_York"),
    )
    companies = (GenCompany(1, "Acme", "acme.test", "Manufacturing", "DE", 1),)
    contacts = tuple(
        GenContact(i, f"First{i}", f"Last{i}", f"c{i}@acme.test", "+491", 1, "CTO", "Europe/Berlin", NOW, NOW)
        for i in (1, 2)
    )
    deals = []
    for i in range(1, 6):
        deals.append(
            GenDeal(
                id=i,
                name=f"Deal {i}" if i != 5 else "Big 100% deal",
                archetype=Archetype.RESPONSIVE_BUYER,
                pipeline_id="default",
                stage_id=("prospect", "nego", "won", "lost", "nego")[i - 1],
                amount=None if i == 4 else 1000.0 * i,
                currency="EUR",
                owner_id=1 if i % 2 else 2,
                company_id=1,
                created_at=NOW - timedelta(days=40 - i),
                modified_at=NOW - timedelta(days=10 - i),
                stage_entered_at=NOW - timedelta(days=20),
                close_date=date(2026, 2, i),
                next_step="Call back" if i < 3 else None,
                next_step_why=None,
                next_step_date=date(2026, 1, 20) if i == 1 else None,
                agreed_interval_days=14 if i == 2 else None,
                agreed_channel="call" if i == 2 else None,
                readiness="ready",
                qualification_score=80.0 if i < 4 else None,
                closed_lost_reason=None,
                contacts=(GenDealContact(1, "decision_maker", True), GenDealContact(2, "gatekeeper"))
                if i == 1
                else (),
            )
        )
    activities = (
        GenActivity(
            1, ActivityKind.CALL, 1, 1, 1, "outbound", NOW - timedelta(days=3), "connected", "Call", "", 300
        ),
        GenActivity(
            2, ActivityKind.TASK, 1, 1, 1, "outbound", NOW + timedelta(days=2), "not_started", "Todo", ""
        ),
        GenActivity(
            3, ActivityKind.MEETING, 2, 2, 2, "outbound", NOW - timedelta(days=1), "no_show", "Demo", ""
        ),
        GenActivity(
            4, ActivityKind.EMAIL, 1, 1, 1, "inbound", NOW - timedelta(days=2), "replied", "Re: hi", "ok"
        ),
    )
    return Dataset(
        seed=1,
        now=NOW,
        owners=owners,
        companies=companies,
        contacts=contacts,
        pipelines=(GenPipeline("default", "Sales", stages),),
        deals=tuple(deals),
        activities=activities,
    )


@pytest.fixture(scope="module")
def org() -> SalesforceOrg:
    clock = SandboxClock()
    clock.set(NOW)
    sf_org = SalesforceOrg(clock=clock)
    load_dataset(sf_org.store, _dataset(), bare=False)
    return sf_org


def run(org: SalesforceOrg, soql: str, all_rows: bool = False) -> list[dict[str, Any]]:
    with org.store.lock:
        compiled = org.engine.compile(parse(soql))
        result = org.engine.execute(compiled, all_rows=all_rows)
        return [org.engine.render(compiled, r, "62.0", all_rows)[0] for r in result.rows]


def names(records: list[dict[str, Any]]) -> list[str]:
    return [r["Name"] for r in records]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("StageName = 'negotiation/review'", ["Deal 2", "Big 100% deal"]),
        ("StageName != 'Prospecting' AND IsClosed = false", ["Deal 2", "Big 100% deal"]),
        ("Amount > 2500", ["Deal 3", "Big 100% deal"]),
        ("Amount >= 3000 OR Amount = null", ["Deal 3", "Deal 4", "Big 100% deal"]),
        ("Amount != 1000", ["Deal 2", "Deal 3", "Deal 4", "Big 100% deal"]),
        ("NOT (Amount < 3000)", ["Deal 3", "Deal 4", "Big 100% deal"]),
        ("Name LIKE 'deal%'", ["Deal 1", "Deal 2", "Deal 3", "Deal 4"]),
        ("Name LIKE '%100\\% deal'", ["Big 100% deal"]),
        ("Name LIKE 'Deal _'", ["Deal 1", "Deal 2", "Deal 3", "Deal 4"]),
        ("StageName IN ('Closed Won', 'Closed Lost')", ["Deal 3", "Deal 4"]),
        ("StageName NOT IN ('Closed Won', 'Closed Lost')", ["Deal 1", "Deal 2", "Big 100% deal"]),
        ("NextStep = null", ["Deal 3", "Deal 4", "Big 100% deal"]),
        ("CloseDate < 2026-02-03", ["Deal 1", "Deal 2"]),
        ("CloseDate = NEXT_N_DAYS:20", ["Deal 1", "Deal 2", "Deal 3", "Deal 4"]),
        ("SystemModstamp > 2026-01-08T12:00:00Z", ["Deal 4", "Big 100% deal"]),
        ("SystemModstamp >= 2026-01-08T13:00:00+01:00", ["Deal 3", "Deal 4", "Big 100% deal"]),
        ("SystemModstamp < 2026-01-07T12:00:00.000Z", ["Deal 1"]),
        ("LastModifiedDate = LAST_N_DAYS:6", ["Deal 4", "Big 100% deal"]),
        ("CreatedDate < LAST_N_DAYS:36", ["Deal 1", "Deal 2", "Deal 3"]),
        ("LastModifiedDate = THIS_WEEK", []),
        (
            "LastModifiedDate = LAST_WEEK AND CloseDate = NEXT_MONTH",
            ["Deal 1", "Deal 2", "Deal 3", "Deal 4", "Big 100% deal"],
        ),
        ("Owner.Name = 'Bob Builder'", ["Deal 2", "Deal 4"]),
        ("Owner.TimeZoneSidKey = 'Europe/London' AND IsWon = true", ["Deal 3"]),
        ("Followup_Agreed_Channel__c = 'call'", ["Deal 2"]),
        ("Id IN (SELECT OpportunityId FROM OpportunityContactRole WHERE Role = 'Gatekeeper')", ["Deal 1"]),
        ("Id NOT IN (SELECT WhatId FROM Task)", ["Deal 2", "Deal 3", "Deal 4", "Big 100% deal"]),
        (f"Id = '{make_id('006', 3)[:15]}'", ["Deal 3"]),
    ],
)
def test_where_clause_selects_expected_opportunities(org, where, expected):
    """Each WHERE form selects exactly the opportunities Salesforce would, in Id order."""
    assert names(run(org, f"SELECT Name FROM Opportunity WHERE {where}")) == expected


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("Amount", ["Deal 4", "Deal 1", "Deal 2", "Deal 3", "Big 100% deal"]),
        ("Amount DESC", ["Big 100% deal", "Deal 3", "Deal 2", "Deal 1", "Deal 4"]),
        ("Amount ASC NULLS LAST", ["Deal 1", "Deal 2", "Deal 3", "Big 100% deal", "Deal 4"]),
        ("Amount DESC NULLS FIRST", ["Deal 4", "Big 100% deal", "Deal 3", "Deal 2", "Deal 1"]),
        ("OwnerId, Name DESC", ["Deal 3", "Deal 1", "Big 100% deal", "Deal 4", "Deal 2"]),
    ],
)
def test_order_by_sorts_with_salesforce_null_rules(org, order, expected):
    """ORDER BY honours direction, multiple keys and NULLS FIRST/LAST defaults."""
    assert names(run(org, f"SELECT Name FROM Opportunity ORDER BY {order}")) == expected


def test_limit_and_offset_slice_after_sorting(org):
    """LIMIT and OFFSET apply after ORDER BY."""
    assert names(run(org, "SELECT Name FROM Opportunity ORDER BY Name LIMIT 2 OFFSET 1")) == [
        "Deal 1",
        "Deal 2",
    ]


def test_relationship_fields_nest_with_attributes_and_null_lookups(org):
    """Parent fields nest under the relationship name with attributes; a missing parent is null."""
    rec = run(org, "SELECT Id, Owner.Name, Account.Owner.Email FROM Opportunity ORDER BY Id LIMIT 1")[0]
    assert rec["Owner"]["Name"] == "Ada Lovelace"
    assert rec["Owner"]["attributes"]["type"] == "User"
    assert rec["Account"]["Owner"]["Email"] == "ada@example.com"
    task = run(
        org,
        "SELECT What.Type, What.Name, Who.Name, Owner.Name, Account.Name FROM Task"
        " WHERE TaskSubtype = 'Call'",
    )[0]
    assert task["What"]["Type"] == "Opportunity"
    assert task["What"]["Name"] == "Deal 1"
    assert task["Who"]["Name"] == "First1 Last1"
    assert task["Account"]["Name"] == "Acme"
    # Polymorphic lookups (What, Who, and Owner on activities: a user or a queue) read the parent through
    # the Name object: attributes.type "Name", the url the parent's own.
    assert task["What"]["attributes"]["type"] == "Name"
    assert task["What"]["attributes"]["url"].endswith(f"/sobjects/Opportunity/{task_what_id(org)}")
    assert task["Who"]["attributes"]["type"] == "Name"
    assert "/sobjects/Contact/" in task["Who"]["attributes"]["url"]
    assert task["Owner"]["attributes"]["type"] == "Name"
    assert "/sobjects/User/" in task["Owner"]["attributes"]["url"]
    assert task["Account"]["attributes"]["type"] == "Account"


def task_what_id(org: SalesforceOrg) -> str:
    return str(run(org, "SELECT WhatId FROM Task WHERE TaskSubtype = 'Call'")[0]["WhatId"])


def test_child_subqueries_return_sets_or_null(org):
    """Child relationships come back as {totalSize, done, records}, or null when empty."""
    recs = run(
        org,
        "SELECT Name, (SELECT Role, IsPrimary FROM OpportunityContactRoles ORDER BY Role), "
        "(SELECT Subject FROM Tasks WHERE IsClosed = true), (SELECT Subject, Description FROM Events) "
        "FROM Opportunity WHERE Name IN ('Deal 1', 'Deal 2') ORDER BY Name",
    )
    first, second = recs
    assert [r["Role"] for r in first["OpportunityContactRoles"]["records"]] == [
        "Decision Maker",
        "Gatekeeper",
    ]
    assert first["OpportunityContactRoles"]["totalSize"] == 2
    assert sorted(r["Subject"] for r in first["Tasks"]["records"]) == ["Call", "Email: Re: hi"]
    assert first["Events"] is None
    assert second["OpportunityContactRoles"] is None
    assert second["Events"]["records"][0]["Description"].startswith("No-show")


def test_values_use_salesforce_wire_formats(org):
    """Datetimes are UTC with milliseconds and +0000; dates are YYYY-MM-DD; numbers stay numbers."""
    rec = run(org, "SELECT CreatedDate, CloseDate, Amount, Probability FROM Opportunity ORDER BY Id LIMIT 1")[
        0
    ]
    assert rec["CreatedDate"] == "2025-12-07T12:00:00.000+0000"
    assert rec["CloseDate"] == "2026-02-01"
    assert rec["Amount"] == 1000.0
    assert rec["Probability"] == 10.0


def test_count_queries(org):
    """COUNT() answers only a total; COUNT(field) an AggregateResult row."""
    with org.store.lock:
        result = org.engine.execute(org.engine.compile(parse("SELECT COUNT() FROM Task")), all_rows=False)
        assert (result.total, result.rows) == (3, [])
        agg = org.engine.execute(
            org.engine.compile(parse("SELECT COUNT(Amount) total FROM Opportunity")), all_rows=False
        )
        assert agg.aggregate == {"attributes": {"type": "AggregateResult"}, "total": 4}


def test_loader_renders_activities_in_salesforce_vocabulary(org):
    """Calls become Call tasks with CallType and disposition; emails an EmailMessage plus an Email task."""
    call = run(
        org, "SELECT CallType, CallDisposition, Status, IsClosed FROM Task WHERE TaskSubtype = 'Call'"
    )[0]
    assert (call["CallType"], call["CallDisposition"], call["Status"], call["IsClosed"]) == (
        "Outbound",
        "Connected",
        "Completed",
        True,
    )
    email = run(org, "SELECT Incoming, RelatedTo.Name, Status FROM EmailMessage")[0]
    assert email["Incoming"] is True
    assert email["RelatedTo"]["Name"] == "Deal 1"
    opp = run(org, "SELECT LastActivityDate, HasOpenActivity FROM Opportunity WHERE Name = 'Deal 1'")[0]
    assert opp == {**opp, "LastActivityDate": "2026-01-13", "HasOpenActivity": True}
    user = run(org, "SELECT TimeZoneSidKey FROM User WHERE Email = 'bob@example.com'")[0]
    assert user["TimeZoneSidKey"] == "America/New_York"


@pytest.mark.parametrize(
    ("soql", "code", "fragment"),
    [
        ("SELECT Id FROM Opportunity WHERE", "MALFORMED_QUERY", "unexpected token: <EOF>"),
        ("SELECT Id FROM Opportunity LIMT 5", "MALFORMED_QUERY", "unexpected token: 5"),
        ("SELECT Id, FROM Opportunity", "MALFORMED_QUERY", "unexpected token: FROM"),
        ("SELECT Id FROM Opportunity WHERE Amount > 1 AND Amount < 5 OR Name = 'x'", "MALFORMED_QUERY", "OR"),
        ("SELECT Id FROM Opportunity GROUP BY StageName", "MALFORMED_QUERY", "unexpected token: GROUP"),
        ("SELECT Id FROM Opportunity WHERE Name = 'open", "MALFORMED_QUERY", "ERROR at Row:1:Column:41"),
        ("SELECT Nme FROM Opportunity", "INVALID_FIELD", "No such column 'Nme' on entity 'Opportunity'"),
        ("SELECT Owner.Nope FROM Opportunity", "INVALID_FIELD", "No such column 'Nope' on entity 'User'"),
        ("SELECT Boss.Name FROM Opportunity", "INVALID_FIELD", "Didn't understand relationship 'Boss'"),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate = '2026-01-01'",
            "INVALID_FIELD",
            "must be of type date",
        ),
        ("SELECT Id FROM Opportunity WHERE Name = 5", "INVALID_FIELD", "must be of type string"),
        ("SELECT Id FROM Opportunity WHERE CreatedDate > 2026-01-01", "INVALID_FIELD", "type dateTime"),
        ("SELECT Id FROM Foo__c", "INVALID_TYPE", "sObject type 'Foo__c' is not supported"),
        (
            "SELECT Id, (SELECT Id FROM Nope) FROM Opportunity",
            "INVALID_TYPE",
            "Didn't understand relationship",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Id = 'abc'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: abc",
        ),
        ("SELECT Id FROM Opportunity OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset"),
    ],
)
def test_bad_queries_fail_with_salesforce_codes(org, soql, code, fragment):
    """Unparseable or unknown names give Salesforce's error code and message."""
    with pytest.raises(SoqlError) as info:
        run(org, soql)
    assert info.value.code == code
    assert fragment in info.value.message


def test_error_message_points_at_row_and_column(org):
    """Messages repeat the query line with a caret under the offending column."""
    with pytest.raises(SoqlError) as info:
        run(org, "SELECT Id, Bogus FROM Opportunity")
    assert info.value.message.startswith(
        "\nSELECT Id, Bogus FROM Opportunity\n           ^\nERROR at Row:1:Column:12\n"
    )


def test_query_all_includes_deleted_rows(org):
    """Soft-deleted rows are hidden from query and visible to queryAll."""
    from crm_sandbox.salesforce import dml

    with org.store.lock, org.store.transaction() as rollback:
        opp_id = make_id("006", 4)
        dml.delete(org.store, org.schema.get("Opportunity"), opp_id, org.store.integration_user_id)
        assert "Deal 4" not in names(run(org, "SELECT Name FROM Opportunity"))
        rows = run(org, "SELECT Name, IsDeleted FROM Opportunity WHERE IsDeleted = true", all_rows=True)
        rollback()
    assert rows == [{**rows[0], "Name": "Deal 4", "IsDeleted": True}]


def test_ids_carry_a_valid_case_safe_suffix():
    """Generated ids are 18 characters with the checksum suffix that 15-character forms map to."""
    rid = make_id("006", 123456)
    assert len(rid) == 18
    assert rid.startswith("006")
    assert normalize_id(rid[:15]) == rid
    assert normalize_id(rid[:15] + "AAA") is None or rid.endswith("AAA")
