"""Deals from a crm-sandbox dataset: the pipeline with history that ``followup demo --snapshot-out`` writes
and the backtest benchmark replays.

The dataset (``crm_sandbox.dataset``, generated with ``history=True``) is CRM-neutral; this maps it into the
domain model the way the CRM connectors map a CRM's records (open tasks are to-dos, not activities; a
meeting booked ahead is logged when it was booked), and its field history rows into ``policies.history``
changes. Only the dataset's types are imported from crm-sandbox (for type checking): whoever calls this has
generated or loaded the dataset, so the product never needs the sandbox installed to import it.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

from policies import model
from policies.history import ContactChange, DealHistory, FieldChange, HistoryField, SnapshotHistory
from policies.snapshot import Snapshot

if TYPE_CHECKING:
    from crm_sandbox.dataset import Dataset, GenActivity, GenDeal, GenFieldChange

_OUTCOMES = {o.value: o for o in model.Outcome}
CRM = "sandbox"  # the dataset belongs to no CRM in particular
_FIELDS = {  # dataset history field -> snapshot history field
    "stage": HistoryField.STAGE.value,
    "amount": HistoryField.AMOUNT.value,
    "close_date": HistoryField.CLOSE_DATE.value,
    "owner": HistoryField.OWNER.value,
    "next_step": model.DealField.NEXT_STEP.value,
    "next_step_why": model.DealField.NEXT_STEP_WHY.value,
    "next_step_date": model.DealField.NEXT_STEP_DATE.value,
    "agreed_interval_days": model.DealField.AGREED_INTERVAL_DAYS.value,
    "agreed_channel": model.DealField.AGREED_CHANNEL.value,
    "readiness": model.DealField.READINESS.value,
    "qualification_score": model.DealField.QUALIFICATION_SCORE.value,
    "closed_lost_reason": model.DealField.CLOSE_REASON.value,
}


def snapshot_from_dataset(dataset: Dataset) -> Snapshot:
    """The dataset as a snapshot taken at its ``now``, with each deal's history when it has one."""
    pipelines = tuple(
        model.Pipeline(
            p.id,
            p.label,
            tuple(
                model.Stage(s.id, s.label, p.id, s.display_order, s.is_closed, s.is_won, s.probability)
                for s in p.stages
            ),
        )
        for p in dataset.pipelines
    )
    stages = {(s.pipeline_id, s.id): s for p in pipelines for s in p.stages}
    contacts = {c.id: c for c in dataset.contacts}
    by_deal: dict[int, list[GenActivity]] = {}
    for activity in dataset.activities:
        by_deal.setdefault(activity.deal_id, []).append(activity)
    rows: dict[int, list[GenFieldChange]] = {}
    for row in dataset.history:
        rows.setdefault(row.deal_id, []).append(row)
    deals: list[model.Deal] = []
    histories: dict[str, DealHistory] = {}
    ids: dict[int, str] = {}  # one string per contact id, shared by its deals, activities and changes
    for gen in dataset.deals:
        activities = [
            a for a in by_deal.get(gen.id, ()) if not (a.kind == "task" and a.outcome != "completed")
        ]
        people = tuple(
            model.Contact(
                ids.setdefault(link.contact_id, str(link.contact_id)),
                f"{contacts[link.contact_id].first_name} {contacts[link.contact_id].last_name}",
                contacts[link.contact_id].email,
                _roles(link.role),
                contacts[link.contact_id].time_zone,
                link.is_primary,
            )
            for link in gen.contacts
        )
        deals.append(_deal(gen, stages[(gen.pipeline_id, gen.stage_id)], people, activities, ids))
        if gen.id in rows or any(_logged_early(a) for a in activities):
            histories[str(gen.id)] = _history(rows.get(gen.id, []), activities, ids)
    owners = tuple(
        model.Owner(str(o.id), f"{o.first_name} {o.last_name}", o.email, o.time_zone, team=o.team or None)
        for o in dataset.owners
    )
    history = SnapshotHistory(histories) if dataset.history else None
    return Snapshot(CRM, owners, pipelines, tuple(deals), dataset.now, history)


@cache
def _roles(role: str | None) -> frozenset[model.ContactRole]:
    """One frozenset per role, shared by every contact that has it."""
    return frozenset({model.ContactRole(role)}) if role else frozenset()


def _deal(
    gen: GenDeal,
    stage: model.Stage,
    contacts: tuple[model.Contact, ...],
    activities: list[GenActivity],
    ids: dict[int, str],
) -> model.Deal:
    fields = {model.DealField.CLOSE_REASON.value: gen.closed_lost_reason} if gen.closed_lost_reason else {}
    return model.Deal(
        id=str(gen.id),
        name=gen.name,
        pipeline_id=gen.pipeline_id,
        stage=stage,
        created_at=gen.created_at,
        modified_at=gen.modified_at,
        owner_id=str(gen.owner_id),
        stage_entered_at=gen.stage_entered_at,
        amount=gen.amount,
        currency=gen.currency,
        close_date=gen.close_date,
        next_step=model.NextStep(gen.next_step, gen.next_step_why, gen.next_step_date),
        agreement=model.Agreement(
            gen.agreed_interval_days, model.Channel(gen.agreed_channel) if gen.agreed_channel else None
        ),
        qualification_score=gen.qualification_score,
        readiness=model.Readiness(gen.readiness) if gen.readiness else model.Readiness.UNKNOWN,
        fields=fields,
        contacts=contacts,
        activities=tuple(_activity(a, ids) for a in sorted(activities, key=lambda a: a.occurred_at)),
    )


def _activity(gen: GenActivity, ids: dict[int, str]) -> model.Activity:
    # open tasks' "not_started" is no outcome
    outcome = _OUTCOMES.get(gen.outcome or "", model.Outcome.UNKNOWN)
    return model.Activity(
        f"{gen.kind}:{gen.id}",
        model.ActivityKind(gen.kind),
        model.Direction(gen.direction),
        gen.occurred_at,
        outcome,
        _one(ids.setdefault(gen.contact_id, str(gen.contact_id))) if gen.contact_id is not None else (),
    )


@cache
def _one(contact_id: str) -> tuple[str]:
    """One 1-tuple per contact id, shared by its activities."""
    return (contact_id,)


def _logged_early(activity: GenActivity) -> bool:
    return activity.created_at is not None and activity.created_at < activity.occurred_at


def _history(rows: list[GenFieldChange], activities: list[GenActivity], ids: dict[int, str]) -> DealHistory:
    changes: list[FieldChange] = []
    joined: list[ContactChange] = []
    for row in rows:
        if row.field == "contact_added":
            contact = int(str(row.value))
            joined.append(ContactChange(row.at, ids.setdefault(contact, str(contact))))
        elif row.field in _FIELDS:
            value = str(row.value) if row.field == "owner" and row.value is not None else row.value
            changes.append(FieldChange(row.at, _FIELDS[row.field], value))
    logged: dict[str, datetime] = {
        f"{a.kind}:{a.id}": a.created_at for a in activities if a.created_at is not None and _logged_early(a)
    }
    return DealHistory(tuple(changes), tuple(joined), logged)
