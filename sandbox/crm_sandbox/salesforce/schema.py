"""The sObjects of one sandbox org: the single source for describe, SOQL and DML checks.

Each ``Schema`` is built per sandbox instance, because a bare org (``bare=True``) lacks crm-followup's
custom fields until setup adds them at run time (``add_field``, through the Metadata API). The types live
in ``fields``, the object catalogue in ``catalog``; both are re-exported here.
"""

from __future__ import annotations

from crm_sandbox.salesforce.catalog import (
    CHILD_RELATIONSHIPS,
    custom_field_defs,
    standard_objects,
    system_fields,
)
from crm_sandbox.salesforce.fields import (
    CLOSED_TASK_STATUSES,
    FORECAST_CATEGORIES,
    NUMBER_TYPES,
    OPPORTUNITY_ROLES,
    SOAP_TYPES,
    TASK_STATUSES,
    TEXT_TYPES,
    ChildRelationship,
    FieldDef,
    ObjectDef,
)

__all__ = [
    "CLOSED_TASK_STATUSES",
    "FORECAST_CATEGORIES",
    "NUMBER_TYPES",
    "OPPORTUNITY_ROLES",
    "SOAP_TYPES",
    "TASK_STATUSES",
    "TEXT_TYPES",
    "ChildRelationship",
    "FieldDef",
    "ObjectDef",
    "Schema",
]


class Schema:
    """All sObject definitions of one sandbox org; custom fields can be added while it runs."""

    def __init__(self, *, bare: bool = False) -> None:
        self.objects: dict[str, ObjectDef] = {}
        for name, prefix, label, fields in standard_objects():
            all_fields = [*system_fields(), *fields]
            self.objects[name.lower()] = ObjectDef(
                name=name,
                key_prefix=prefix,
                label=label,
                label_plural=label + "s" if not label.endswith("s") else label,
                fields={f.name.lower(): f for f in all_fields},
            )
        for parent, rel, child, fld in CHILD_RELATIONSHIPS:
            self.objects[parent.lower()].children[rel.lower()] = ChildRelationship(rel, child, fld)
        for obj in ("opportunitystage", "taskstatus"):  # configuration, not data: read-only through REST
            self.objects[obj].createable = self.objects[obj].updateable = self.objects[obj].deletable = False
        if not bare:
            for obj_name, defs in custom_field_defs().items():
                for fd in defs:
                    self.add_field(obj_name, fd)
        self.by_prefix: dict[str, list[ObjectDef]] = {}
        for o in self.objects.values():
            self.by_prefix.setdefault(o.key_prefix, []).append(o)

    def get(self, name: str) -> ObjectDef | None:
        return self.objects.get(name.lower())

    def add_field(self, object_name: str, fd: FieldDef) -> None:
        self.objects[object_name.lower()].fields[fd.name.lower()] = fd

    def object_of_id(self, record_id: str) -> ObjectDef | None:
        """The object an id's key prefix names (the first of several for a shared prefix such as 01J)."""
        objects = self.by_prefix.get(record_id[:3])
        return objects[0] if objects else None

    def objects_of_prefix(self, prefix: str) -> list[ObjectDef]:
        return self.by_prefix.get(prefix, [])
