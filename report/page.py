"""Assemble the page from the section builders and render it with Jinja2.

The order of the sections is the order of the questions people ask: is the pipeline clean (hygiene), what
did the policy do about it (policy), where is it enforced (enforcement), what enforcing changes (the
rollout's cohorts), is the worker healthy (operations). Another section is one more builder added to
``build_page``; the template renders any ``Section`` (``report.backtest`` builds a page of its own from the
backtest's JSON).
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from report import activity, cohorts, evidence, hygiene, operations, rollout
from report.model import AccountInfo, Page
from report.sources import ReportRequest


def build_page(request: ReportRequest, *, title: str = "crm-followup report") -> Page:
    owners = {a.name: request.store.owners(a.name) for a in request.accounts}
    found = cohorts.gather(request)
    scanned = hygiene.scan(request, owners, found.wanted)
    did = activity.gather(request, scanned)
    ops = operations.gather(request)
    other = [(r["account"], r["deal_id"]) for r in did.stops]
    other += [(account, deal_id) for account, deal_id, _ in rollout.held_rows(request, scanned.rollout)]
    deals = evidence.collect(request, hygiene.listed_deals(scanned), other, owners)
    sections = (
        hygiene.section(request, scanned),
        activity.section(request, did),
        operations.enforcement_section(request, ops),
        rollout.section(request, found, scanned.rollout),
        operations.operations_section(request, ops),
    )
    accounts = tuple(
        AccountInfo(a.name, a.crm, "shadow" if a.shadow else "enforce", scanned.mirrored[a.name])
        for a in request.accounts
    )
    return Page(
        title=title,
        generated_at=datetime.now(UTC),
        since=request.since,
        now=request.now,
        accounts=accounts,
        sections=sections,
        deals=tuple(deals),
    )


def _asset(name: str) -> Markup:
    """A file of report/assets, inlined verbatim (our own CSS and the vendored, MIT-licensed tablesort)."""
    text = resources.files("report").joinpath("assets", name).read_text(encoding="utf-8")
    return Markup(text)  # noqa: S704 - our own files, shipped with the package; never user input


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = _asset
    env.filters["svg"] = lambda svg: Markup(svg)  # noqa: S704 - vl-convert's SVG; it escapes every text it draws
    env.filters["utc"] = lambda moment: moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return env


def render_html(page: Page) -> str:
    """The page as one self-contained HTML document (the live report or a backtest's)."""
    return _environment().get_template("report.html.j2").render(page=page, figure_type="Figure")
