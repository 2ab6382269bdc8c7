"""Property-value validation and normalisation on writes, with HubSpot's "Property values were not valid".

HubSpot checks every written value against the property's definition and answers 400 listing each bad one
(``PROPERTY_DOESNT_EXIST``, ``INVALID_OPTION``, ``INVALID_DATE`` for a date that is not midnight UTC, ...).
Values are stored as HubSpot reads them back: datetimes as ISO with milliseconds, dates as ``YYYY-MM-DD``.
Read-only (calculated) properties are dropped from writes, as HubSpot ignores them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from crm_sandbox.hubspot.errors import HubSpotError
from crm_sandbox.hubspot.properties import PropertyDef
from crm_sandbox.hubspot.render import format_number, iso_ms, parse_date_ms, parse_datetime_ms

__all__ = ["normalise_properties"]

_DAY_MS = 86_400_000
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")
_EXACT = 2.0**53


def _problem(name: str, code: str, message: str) -> dict[str, Any]:
    return {
        "isValid": False,
        "message": message,
        "error": code,
        "name": name,
        "localizedErrorMessage": message,
    }


def _normalise(
    definition: PropertyDef, raw: str, is_option: Callable[[str, str], bool]
) -> tuple[str | None, dict[str, Any] | None]:
    name, kind = definition.name, definition.type
    if kind == "datetime":
        ms = parse_datetime_ms(raw)
        if ms is None:
            return None, _problem(name, "INVALID_DATETIME", f"{raw} was not a valid long.")
        return iso_ms(ms), None
    if kind == "date":
        ms = parse_date_ms(raw)
        if ms is None:
            return None, _problem(name, "INVALID_DATE", f"{raw} is not a valid date.")
        if ms % _DAY_MS:
            clock = iso_ms(ms)[11:23]
            return None, _problem(name, "INVALID_DATE", f"{raw} is at {clock} UTC, not midnight!")
        return iso_ms(ms)[:10], None
    if kind == "number":
        # Only digits, one optional leading "-" and one optional "." (HubSpot's API number validation):
        # "1e5", "NaN", "Infinity", "4,68" are refused; a number of any length is accepted.
        text = raw.strip()
        if not _NUMBER.fullmatch(text):
            return None, _problem(name, "INVALID_FLOAT", f"{raw} was not a valid number.")
        number = float(text)
        # Stored as HubSpot prints it; a number a double cannot hold exactly stays as written.
        return (format_number(number) if abs(number) < _EXACT else text), None
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered not in ("true", "false"):
            return None, _problem(name, "INVALID_BOOLEAN", f"{raw} was not a valid boolean.")
        return lowered, None
    if kind == "enumeration":
        values = raw.split(";") if definition.field_type == "checkbox" else [raw]
        for value in values:
            if not is_option(name, value) and name == "hubspot_owner_id":
                return None, _problem(name, "INVALID_OWNER_ID", f"{value} is not a valid owner id")
            if not is_option(name, value):
                return None, _problem(
                    name,
                    "INVALID_OPTION",
                    f"{value} was not one of the allowed options: {_options(definition)}",
                )
    return raw, None


def _options(definition: PropertyDef) -> str:
    shown = [f"[value: {o.value}, label: {o.label}]" for o in definition.options[:20]]
    return "[" + ", ".join(shown) + "]"


def normalise_properties(
    properties: Any,
    definitions: Mapping[str, PropertyDef],
    is_option: Callable[[str, str], bool],
) -> dict[str, str | None]:
    """Validate ``properties``; return the values to store (None = clear) or raise 400 naming each problem."""
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: properties must be an object")
    result: dict[str, str | None] = {}
    problems: list[dict[str, Any]] = []
    for name, value in properties.items():
        definition = definitions.get(name)
        if definition is None:
            problems.append(_problem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
            continue
        if definition.read_only:
            continue
        if value is None or value == "":
            result[name] = None
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        stored, problem = _normalise(definition, str(value), is_option)
        if problem is not None:
            problems.append(problem)
        else:
            result[name] = stored
    if problems:
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            "Property values were not valid: " + json.dumps(problems, separators=(",", ":")),
            errors=[
                {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
                for p in problems
            ],
        )
    return result
