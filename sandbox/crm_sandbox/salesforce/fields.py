"""The shapes of the schema: ``FieldDef``, ``ObjectDef``, child relationships, and Salesforce's field types.

Also the default picklists of a new org (task statuses, contact roles, forecast categories) that both the
catalogue and the write rules need.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Salesforce field types (describe "type") and the SOAP type describe reports alongside them.
SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "string": "xsd:string",
    "textarea": "xsd:string",
    "picklist": "xsd:string",
    "combobox": "xsd:string",
    "email": "xsd:string",
    "phone": "xsd:string",
    "url": "xsd:string",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
}
TEXT_TYPES = frozenset(
    {"id", "reference", "string", "textarea", "picklist", "combobox", "email", "phone", "url"}
)
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int"})

OPPORTUNITY_ROLES = (
    "Business User",
    "Decision Maker",
    "Economic Buyer",
    "Economic Decision Maker",
    "Evaluator",
    "Executive Sponsor",
    "Influencer",
    "Technical Buyer",
    "Other",
    "Gatekeeper",  # the org's custom value (docs/crm-fields.md)
)
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
CLOSED_TASK_STATUSES = frozenset({"Completed"})
FORECAST_CATEGORIES = ("Omitted", "Pipeline", "Best Case", "Commit", "Closed")


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field as describe reports it; ``createable``/``updateable`` drive DML checks."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    custom: bool = False
    external_id: bool = False
    unique: bool = False
    restricted: bool = False
    picklist: tuple[str, ...] = ()
    default_value: str | None = None
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    required: bool = False  # required on create (nillable=False and not defaulted)

    @property
    def polymorphic(self) -> bool:
        return len(self.reference_to) > 1


@dataclass(frozen=True, slots=True)
class ChildRelationship:
    name: str
    child: str
    field: str


@dataclass(slots=True)
class ObjectDef:
    name: str
    key_prefix: str
    label: str
    label_plural: str
    fields: dict[str, FieldDef]  # keyed by lower-case name
    children: dict[str, ChildRelationship] = field(default_factory=dict)  # lower-case relationship name
    createable: bool = True
    updateable: bool = True
    deletable: bool = True

    def field(self, name: str) -> FieldDef | None:
        return self.fields.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The lookup field whose relationship name is ``name`` (``Owner`` -> ``OwnerId``)."""
        lower = name.lower()
        for f in self.fields.values():
            if f.relationship_name and f.relationship_name.lower() == lower:
                return f
        return None
