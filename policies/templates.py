"""Task texts as templates with named fields, which can never execute code.

Admins write ``"Call {contact} about {deal_name}"``. ``str.format`` would also accept ``{deal.__class__}``
or ``{evidence[0]}``, which reach into Python objects; so templates are parsed once at load time into
literal pieces and plain field names, every name must be one of ``TEMPLATE_FIELDS``, and rendering only
fills those names with strings (``str.format_map`` on a re-escaped copy, which can then do nothing else).
Literal braces are written doubled: ``{{`` and ``}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from string import Formatter

TEMPLATE_FIELDS: Mapping[str, str] = {
    "deal_name": "the deal's name",
    "deal_id": "the deal's CRM id",
    "stage": "the deal's current stage label",
    "amount": "the deal's amount with its currency, or 'no amount'",
    "owner": "the owner's name, or 'the owner'",
    "contact": "the primary contact's name, or 'the customer'",
    "last_touch": "date and kind of the last conversation with the customer, or 'none yet'",
    "agreed_interval": "the customer-agreed interval ('14 days'), or 'none agreed'",
    "agreed_channel": "the customer-agreed channel (call, email, meeting), or 'none agreed'",
    "due": "the due date of the task (owner's calendar)",
    "unanswered": "outbound touches without an answer since the last inbound one",
    "missing": "what the next step lacks ('why, when')",
    "roles": "the decision-maker roles the policy looks for",
    "signal": "the inbound signal that reactivated a nurtured deal",
    "evidence": "the facts behind the task, one per line",
}


class TemplateError(ValueError):
    """A template that uses an unknown field, attribute or index access, a conversion or a format spec."""


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: alternating literal text and field names."""

    source: str
    parts: tuple[tuple[str, str | None], ...]
    fields: frozenset[str] = frozenset()  # the names used, filled in by ``parse_template``
    # The same template re-escaped for ``str.format_map``, which renders in C. Safe because every field
    # was checked to be a plain name: no attribute access, index, conversion or format spec survives.
    compiled: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        escaped = (
            literal.replace("{", "{{").replace("}", "}}") + ("{" + name + "}" if name else "")
            for literal, name in self.parts
        )
        object.__setattr__(self, "compiled", "".join(escaped))

    def render(self, values: Mapping[str, str]) -> str:
        """The text with every field filled in; a field without a value renders as nothing."""
        try:
            return self.compiled.format_map(values)
        except KeyError:
            return "".join(literal + (values.get(name, "") if name else "") for literal, name in self.parts)


def parse_template(source: str) -> Template:
    """Parse and check a template; ``TemplateError`` says which field is not allowed and why."""
    try:
        pieces = list(Formatter().parse(source))
    except ValueError as exc:
        raise TemplateError(f"not a valid template ({exc}); write literal braces as {{{{ and }}}}") from None
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in pieces:
        if name is None:
            parts.append((literal, None))
            continue
        if name == "":
            raise TemplateError("empty field {}: name one of " + ", ".join(sorted(TEMPLATE_FIELDS)))
        if conversion or spec:
            raise TemplateError(f"field {{{name}}} may not have a conversion or format spec")
        if name not in TEMPLATE_FIELDS:
            raise TemplateError(f"unknown field {{{name}}}: use one of " + ", ".join(sorted(TEMPLATE_FIELDS)))
        parts.append((literal, name))
    return Template(source, tuple(parts), frozenset(name for _, name in parts if name is not None))
