"""Property definitions and groups, as ``/crm/v3/properties`` serves them and as writes are validated.

A portal's properties decide what a write may set: HubSpot answers 400 ``PROPERTY_DOESNT_EXIST`` for an
unknown name and ``INVALID_OPTION`` for an enumeration value it does not list, so the sandbox keeps the
definitions the worker touches (built-in ones) plus crm-followup's custom deal properties in group
``crm_followup`` (left out with ``--bare``, so ``followup setup hubspot`` can be tested creating them).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "FIELD_TYPES",
    "FOLLOWUP_GROUP",
    "PROPERTY_TYPES",
    "PropertyDef",
    "PropertyGroup",
    "PropertyOption",
]

FOLLOWUP_GROUP = "crm_followup"
PROPERTY_TYPES = frozenset({"string", "number", "bool", "enumeration", "date", "datetime", "phone_number"})
FIELD_TYPES = frozenset(
    {
        "text",
        "textarea",
        "html",
        "phonenumber",
        "file",
        "number",
        "select",
        "radio",
        "checkbox",
        "booleancheckbox",
        "date",
        "calculation_equation",
    }
)


@dataclass(frozen=True, slots=True)
class PropertyOption:
    label: str
    value: str
    display_order: int = 0
    hidden: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "displayOrder": self.display_order,
            "hidden": self.hidden,
        }


@dataclass(frozen=True, slots=True)
class PropertyDef:
    """One property definition; ``read_only`` ones are computed by the portal and ignored on writes."""

    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    description: str = ""
    options: tuple[PropertyOption, ...] = ()
    display_order: int = -1
    hubspot_defined: bool = True
    calculated: bool = False
    read_only: bool = False
    external_options: bool = False
    has_unique_value: bool = False
    hidden: bool = False
    form_field: bool = False
    created_at: str = "2019-08-06T02:41:08.029Z"
    updated_at: str = "2019-08-06T02:41:08.029Z"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The v3 ``Property`` shape."""
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [option.to_json() for option in self.options],
            "displayOrder": self.display_order,
            "calculated": self.calculated,
            "externalOptions": self.external_options,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "formField": self.form_field,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": False,
            "dataSensitivity": "non_sensitive",
        }
        if self.hubspot_defined:
            body["hubspotDefined"] = True
        body.update(self.extra)
        return body

    def with_options(self, options: tuple[PropertyOption, ...]) -> PropertyDef:
        return replace(self, options=options)


@dataclass(frozen=True, slots=True)
class PropertyGroup:
    name: str
    label: str
    display_order: int = -1
    archived: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "displayOrder": self.display_order,
            "archived": self.archived,
        }
