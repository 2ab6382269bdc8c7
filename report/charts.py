"""Charts: Vega-Lite specs built with Altair, rendered to static SVG by vl-convert (no JavaScript needed).

Why this pair (docs/report.md has the comparison): the SVG is drawn once, here, and travels inside the HTML
file, so the report opens offline, prints, and has nothing to load or execute; Vega's SVG renderer gives
every mark an ``aria-label`` with its values, and each chart also gets a title and a description. The data
behind each chart is small (it is aggregated first), so the SVG stays small too.

Colours are fixed per meaning (complete is always the same blue, overdue the same red) and come from a
colour-blind-safe palette (Okabe-Ito).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt
import vl_convert

from report.model import Chart

# Okabe & Ito's palette, safe for the common colour-vision deficiencies.
BLUE, ORANGE, SKY, GREEN, YELLOW, VERMILION, PURPLE, GREY = (
    "#0072B2",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#D55E00",
    "#CC79A7",
    "#999999",
)
SERIES = (BLUE, ORANGE, GREEN, VERMILION, PURPLE, SKY, YELLOW, GREY)

WIDTH = 640
FONT = "Arial, 'Liberation Sans', Helvetica, sans-serif"


def colours(order: Sequence[str], fixed: Mapping[str, str] | None = None) -> alt.Scale:
    """A colour scale with a stable colour per series value (fixed ones first, then the palette)."""
    fixed = fixed or {}
    spare = iter(c for c in SERIES if c not in fixed.values())
    return alt.Scale(domain=list(order), range=[fixed.get(v) or next(spare, GREY) for v in order])


Field = tuple[str, str]
"""A field of the chart's rows and the title of its axis, e.g. ``("deals", "open deals")``."""


@dataclass(frozen=True, slots=True)
class Stack:
    """The series bars are stacked by: a field of the rows, its values in stacking order, fixed colours."""

    field: str
    order: Sequence[str]
    fixed: Mapping[str, str] | None = None

    @property
    def scale(self) -> alt.Scale:
        return colours(self.order, self.fixed)


def stacked_bars(
    rows: Sequence[Mapping[str, Any]],
    category: Field,
    stack: Stack,
    value: Field,
    category_order: Sequence[str] | None = None,
) -> alt.Chart:
    """Horizontal bars per category (owners, rules), stacked by ``stack`` in its order."""
    (field, title), (amount, amount_title) = category, value
    sort: Any = list(category_order) if category_order is not None else "-x"
    count = len({str(r[field]) for r in rows})
    chart: alt.Chart = (
        alt.Chart(_ordered(rows, stack))
        .mark_bar()
        .encode(
            alt.Y(f"{field}:N", title=title, sort=sort),
            alt.X(f"{amount}:Q", title=amount_title, stack="zero"),
            color=alt.Color(
                f"{stack.field}:N", title=None, scale=stack.scale, legend=alt.Legend(orient="right")
            ),
            order=alt.Order("_order:Q"),
            tooltip=[f"{field}:N", f"{stack.field}:N", f"{amount}:Q"],
        )
        .properties(width=WIDTH, height=max(60, 20 * count))
    )
    return chart


def daily_stacked(rows: Sequence[Mapping[str, Any]], stack: Stack, value: Field) -> alt.Chart:
    """Bars per UTC day (``day`` as YYYY-MM-DD), stacked by ``stack`` in its order."""
    amount, amount_title = value
    chart: alt.Chart = (
        alt.Chart(_ordered(rows, stack))
        .mark_bar()
        .encode(
            alt.X("day:O", title="day (UTC)", axis=alt.Axis(labelAngle=-45)),
            alt.Y(f"{amount}:Q", title=amount_title, stack="zero"),
            color=alt.Color(
                f"{stack.field}:N", title=None, scale=stack.scale, legend=alt.Legend(orient="right")
            ),
            order=alt.Order("_order:Q"),
            tooltip=["day:O", f"{stack.field}:N", f"{amount}:Q"],
        )
        .properties(width=WIDTH, height=220)
    )
    return chart


def _ordered(rows: Sequence[Mapping[str, Any]], stack: Stack) -> dict[str, Any]:
    index = {name: i for i, name in enumerate(stack.order)}
    return _inline([{**r, "_order": index.get(str(r[stack.field]), len(index))} for r in rows])


def _inline(values: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Inline data (Altair accepts the Vega-Lite ``{"values": [...]}`` form as it is)."""
    return {"values": [dict(v) for v in values]}


def bars(
    rows: Sequence[Mapping[str, Any]],
    category: Field,
    value: Field,
    colour: str = BLUE,
    category_order: Sequence[str] | None = None,
) -> alt.Chart:
    """One bar per category (a distribution: deals by unanswered touches, by days in stage)."""
    (field, title), (amount, amount_title) = category, value
    sort: Any = list(category_order) if category_order is not None else None
    chart: alt.Chart = (
        alt.Chart(_inline(rows))
        .mark_bar(color=colour)
        .encode(
            alt.X(f"{field}:N", title=title, sort=sort, axis=alt.Axis(labelAngle=0)),
            alt.Y(f"{amount}:Q", title=amount_title),
            tooltip=[f"{field}:N", f"{amount}:Q"],
        )
        .properties(width=WIDTH, height=200)
    )
    return chart


def with_limit(chart: alt.Chart, limit: float, label: str) -> alt.LayerChart:
    """A chart with a horizontal rule at ``limit`` (the daily API budget)."""
    rule = (
        alt.Chart(_inline([{"limit": limit, "label": label}]))
        .mark_rule(color=VERMILION, strokeDash=[6, 3], strokeWidth=2)
        .encode(alt.Y("limit:Q"), tooltip=["label:N", "limit:Q"])
    )
    return alt.LayerChart(layer=[chart, rule])


def render(chart: alt.Chart | alt.LayerChart, *, id: str, title: str, description: str, marks: int) -> Chart:
    """The chart as an SVG string, titled and described for assistive technology."""
    spec = chart.properties(description=description).to_dict()
    spec["config"] = {
        # Arial and Liberation Sans share their metrics (and Helvetica nearly): the widths vl-convert
        # measures when it lays out the SVG are the widths a browser draws, so no label outgrows its box.
        "font": FONT,
        "view": {"stroke": None},
        "axis": {"labelFontSize": 11, "titleFontSize": 12, "labelLimit": 220},
        "legend": {"labelFontSize": 11, "labelLimit": 320},
    }
    svg = vl_convert.vegalite_to_svg(spec)
    opening, rest = svg.split(">", 1)
    label = html.escape(f"{title}. {description}", quote=True)
    svg = (
        f'{opening} role="graphics-document document" aria-roledescription="chart" aria-label="{label}">'
        f"<title>{html.escape(title)}</title>{rest}"
    )
    return Chart(id=id, title=title, description=description, svg=svg, marks=marks)


def drawn(
    rows: Sequence[Mapping[str, Any]],
    chart: alt.Chart | alt.LayerChart,
    *,
    id: str,
    title: str,
    description: str,
) -> Chart | None:
    """The chart of ``rows`` rendered (one mark a row), or None when there is nothing to draw."""
    if not rows:
        return None
    return render(chart, id=id, title=title, description=description, marks=len(rows))
