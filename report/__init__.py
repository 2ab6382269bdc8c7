"""``followup report``: one self-contained HTML page from the state store, for managers, admins and ops.

    build_page(request) -> Page      the numbers: hygiene (mirror), policy activity (ledger, audit),
                                     enforcement and operations (runs, cursors), evidence per listed deal
    render_html(page) -> str         the page: Jinja2 (autoescaping on), charts as inline SVG, the table
                                     sorter and the styles inlined; nothing is fetched when it opens

docs/report.md explains every number and where it comes from.
"""

from __future__ import annotations

from report.page import build_page, render_html
from report.sources import AccountSource, ReportRequest

__all__ = ["AccountSource", "ReportRequest", "build_page", "render_html"]
