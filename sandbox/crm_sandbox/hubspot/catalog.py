"""HubSpot's fixed vocabulary: object types and their ids, default association types, call dispositions.

These are facts about HubSpot portals, not about any dataset, so they live apart from the store. Sources are
HubSpot's documentation (https://developers.hubspot.com/docs/api/crm/deals, https://developers.hubspot.com/docs/guides/api/crm/engagements/calls,
https://developers.hubspot.com/docs/api/crm/associations); where the reference gives only one
direction of an association pair, the inverse id follows HubSpot's published table (see sandbox/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ASSOCIATION_LABEL_TYPES",
    "CALL_DISPOSITIONS",
    "DEFAULT_PROPERTIES",
    "ENGAGEMENT_TYPES",
    "OBJECT_TYPES",
    "OBJECT_TYPE_IDS",
    "AssociationType",
    "default_association_types",
    "resolve_object_type",
]

# plural API name -> objectTypeId
OBJECT_TYPE_IDS: dict[str, str] = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tasks": "0-27",
    "notes": "0-46",
    "meetings": "0-47",
    "calls": "0-48",
    "emails": "0-49",
}
OBJECT_TYPES: tuple[str, ...] = tuple(OBJECT_TYPE_IDS)
ENGAGEMENT_TYPES: frozenset[str] = frozenset({"calls", "emails", "meetings", "notes", "tasks"})
SINGULAR: dict[str, str] = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "tasks": "task",
    "notes": "note",
    "meetings": "meeting",
    "calls": "call",
    "emails": "email",
}

_ALIASES: dict[str, str] = {}
for _plural, _type_id in OBJECT_TYPE_IDS.items():
    _ALIASES[_plural] = _plural
    _ALIASES[_type_id] = _plural
    _ALIASES[SINGULAR[_plural]] = _plural
    _ALIASES[_plural.upper()] = _plural
    _ALIASES[SINGULAR[_plural].upper()] = _plural


def resolve_object_type(name: str) -> str | None:
    """The plural type name for what a path may say (``deals``, ``deal``, ``0-3``, ``DEAL``), or None."""
    return _ALIASES.get(name) or _ALIASES.get(name.lower())


# Properties returned when a read names none (HubSpot's "default properties"; see sandbox/README.md).
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    **dict.fromkeys(ENGAGEMENT_TYPES, ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")),
}

# HubSpot's default call outcomes (hs_call_disposition GUIDs), by the dataset's neutral outcome word.
CALL_DISPOSITIONS: dict[str, str] = {
    "busy": "9d9162e7-6cf3-4944-bf63-4dff82258764",
    "connected": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
    "live_message": "a4c4c377-d246-4b32-a13b-75a56a4cd0ff",
    "voicemail": "b2cf5968-551e-4856-9783-52b3da59a7d0",
    "no_answer": "73a0d17f-1163-4015-bdd5-ec830791da20",
    "wrong_number": "17b47fee-58de-441e-a44c-c6300d46f273",
}


@dataclass(frozen=True, slots=True)
class AssociationType:
    """One directed association type: ``typeId`` from ``from_type`` to ``to_type``."""

    from_type: str
    to_type: str
    type_id: int
    category: str  # HUBSPOT_DEFINED | USER_DEFINED
    label: str | None
    inverse_id: int
    name: str | None = None


# (from, to, unlabeled id, inverse unlabeled id, primary id | None, inverse primary id | None)
_DEFAULT_PAIRS: tuple[tuple[str, str, int, int, int | None, int | None], ...] = (
    ("deals", "contacts", 3, 4, None, None),
    ("deals", "companies", 341, 342, 5, 6),
    ("contacts", "companies", 279, 280, 1, 2),
    ("tasks", "deals", 216, 215, None, None),
    ("tasks", "contacts", 204, 203, None, None),
    ("tasks", "companies", 192, 191, None, None),
    ("notes", "deals", 214, 213, None, None),
    ("notes", "contacts", 202, 201, None, None),
    ("notes", "companies", 190, 189, None, None),
    ("calls", "deals", 206, 205, None, None),
    ("calls", "contacts", 194, 193, None, None),
    ("calls", "companies", 182, 181, None, None),
    ("emails", "deals", 210, 209, None, None),
    ("emails", "contacts", 198, 197, None, None),
    ("emails", "companies", 186, 185, None, None),
    ("meetings", "deals", 212, 211, None, None),
    ("meetings", "contacts", 200, 199, None, None),
    ("meetings", "companies", 188, 187, None, None),
)

# The crm-followup contact-role labels on deal -> contact (USER_DEFINED; ids are portal-specific in HubSpot,
# these are the sandbox portal's). Each label has one id per direction, as HubSpot assigns them.
ASSOCIATION_LABEL_TYPES: tuple[tuple[str, str, int, int], ...] = (
    ("decision_maker", "Decision maker", 37, 38),
    ("economic_buyer", "Economic buyer", 39, 40),
    ("champion", "Champion", 41, 42),
    ("influencer", "Influencer", 43, 44),
    ("gatekeeper", "Gatekeeper", 45, 46),
    ("user", "User", 47, 48),
)
FIRST_CUSTOM_TYPE_ID = 100


def default_association_types() -> list[AssociationType]:
    """Every HUBSPOT_DEFINED type in both directions, "Primary" types included."""
    types: list[AssociationType] = []
    for from_type, to_type, forward, inverse, primary, inverse_primary in _DEFAULT_PAIRS:
        types.append(AssociationType(from_type, to_type, forward, "HUBSPOT_DEFINED", None, inverse))
        types.append(AssociationType(to_type, from_type, inverse, "HUBSPOT_DEFINED", None, forward))
        if primary is not None and inverse_primary is not None:
            types.append(
                AssociationType(from_type, to_type, primary, "HUBSPOT_DEFINED", "Primary", inverse_primary)
            )
            types.append(
                AssociationType(to_type, from_type, inverse_primary, "HUBSPOT_DEFINED", "Primary", primary)
            )
    return types


def role_association_types() -> list[AssociationType]:
    """The USER_DEFINED deal <-> contact role labels crm-followup reads, both directions."""
    types: list[AssociationType] = []
    for name, label, forward, inverse in ASSOCIATION_LABEL_TYPES:
        types.append(AssociationType("deals", "contacts", forward, "USER_DEFINED", label, inverse, name))
        types.append(AssociationType("contacts", "deals", inverse, "USER_DEFINED", label, forward, name))
    return types
