"""The evidence behind every deal the report lists: what ``followup explain`` shows, inside the page.

For a deal still in the mirror: every rule's verdict and evidence now (``policies.engine.evaluate``, the
same call ``followup explain`` makes, on the mirrored deal instead of a live pull). For every listed deal:
its audit trail in the period (the fired verdicts the worker recorded, with their evidence), and the exact
``followup explain`` command line that asks the CRM afresh.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import sqlalchemy as sa

from policies.engine import evaluate
from policies.model import Deal, Owner
from report.hygiene import Listed, anchor_for
from report.model import AuditLine, DealEvidence, Verdict
from report.sources import AccountSource, ReportRequest, owner_label
from store.database import loads
from store.schema import audit

AUDIT_LINES = 20  # per deal, newest first


def collect(
    request: ReportRequest,
    listed: Iterable[Listed],
    other: Iterable[tuple[str, str]],
    owners: Mapping[str, dict[str, Owner]],
) -> list[DealEvidence]:
    """Evidence for the listed deals (already read from the mirror) and for ``other`` (account, deal id)."""
    sources = {a.name: a for a in request.accounts}
    deals: dict[tuple[str, str], Deal | None] = {}
    for item in listed:
        deals[(item.account, item.deal.id)] = item.deal
    missing: dict[str, list[str]] = defaultdict(list)
    for account, deal_id in other:
        if (account, deal_id) not in deals:
            deals[(account, deal_id)] = None
            missing[account].append(deal_id)
    for account, ids in missing.items():
        for deal_id, mirrored in request.store.mirror_deals(account, ids).items():
            deals[(account, deal_id)] = mirrored
    trail = _audit(request, deals)
    out = []
    for (account, deal_id), deal in deals.items():
        source = sources[account]
        out.append(
            _evidence(request, source, deal_id, deal, owners[account], trail.get((account, deal_id), []))
        )
    return sorted(out, key=lambda e: (e.account, e.deal_id))


def _evidence(
    request: ReportRequest,
    source: AccountSource,
    deal_id: str,
    deal: Deal | None,
    owners: Mapping[str, Owner],
    trail: list[AuditLine],
) -> DealEvidence:
    verdicts: tuple[Verdict, ...] = ()
    if deal is not None:
        decision = evaluate(source.policy, deal, request.now, owners.get(deal.owner_id or ""))
        verdicts = tuple(
            Verdict(v.rule_id, v.fired, v.reason, "; ".join(f"{e.label}: {e.value}" for e in v.evidence))
            for v in decision.verdicts
        )
    return DealEvidence(
        anchor=anchor_for(source.name, deal_id),
        account=source.name,
        deal_id=deal_id,
        name=deal.name if deal is not None else "(no longer in the mirror)",
        owner=owner_label(dict(owners), deal.owner_id) if deal is not None else "",
        stage=(deal.stage.label or deal.stage.id) if deal is not None else "",
        crm_url=source.url_for(deal_id),
        explain=source.explain.format(id=deal_id),
        verdicts=verdicts,
        audit=tuple(trail),
    )


def _audit(
    request: ReportRequest, deals: Mapping[tuple[str, str], object]
) -> dict[tuple[str, str], list[AuditLine]]:
    by_account: dict[str, list[str]] = defaultdict(list)
    for account, deal_id in deals:
        by_account[account].append(deal_id)
    out: dict[tuple[str, str], list[AuditLine]] = defaultdict(list)
    with request.store.engine.connect() as c:
        for account, ids in by_account.items():
            for start in range(0, len(ids), 500):
                rows = c.execute(
                    sa.select(audit)
                    .where(
                        audit.c.account == account,
                        audit.c.deal_id.in_(ids[start : start + 500]),
                        audit.c.at >= request.since,
                        audit.c.at <= request.now,
                    )
                    .order_by(audit.c.at.desc(), audit.c.id.desc())
                )
                for row in rows:
                    lines = out[(account, row.deal_id)]
                    if len(lines) >= AUDIT_LINES:
                        continue
                    explanation = loads(row.explanation) or {}
                    evidence = "; ".join(
                        f"{label}: {value}" for label, value in explanation.get("evidence", [])
                    )
                    lines.append(
                        AuditLine(
                            row.at,
                            row.rule_id,
                            row.mode,
                            row.outcome,
                            explanation.get("reason", ""),
                            evidence,
                        )
                    )
    return out
