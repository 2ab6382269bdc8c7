"""A minimal Metadata API (SOAP), so ``followup setup salesforce`` can set up a bare org.

simple-salesforce's ``sf.mdapi`` (zeep, the bundled v63 WSDL) POSTs SOAP envelopes to
``/services/Soap/m/{version}/`` with the session in ``SessionHeader``. Served operations:
- ``createMetadata`` of CustomField (``Opportunity.X__c``, ``Task.X__c``, ``Event.X__c`` or
  ``Activity.X__c``, which adds the field to Task and Event): Text, TextArea, LongTextArea, Date, DateTime,
  Number, Percent, Currency, Checkbox, Picklist (valueSet values); ``externalId``, ``unique``, ``length``.
  An existing field fails with DUPLICATE_DEVELOPER_NAME, a name without ``__c`` with
  FIELD_INTEGRITY_EXCEPTION.
- ``createMetadata`` / ``upsertMetadata`` of PermissionSet: a PermissionSet row (Name = fullName) that
  ``PermissionSetAssignment`` can point at. Field-level security is not modelled: a new field is readable
  and writable at once (sandbox/README.md lists this choice).
- ``readMetadata`` of CustomField.
Anything else answers a SOAP fault ``sf:INVALID_TYPE``; a bad session ``sf:INVALID_SESSION_ID`` (HTTP 500,
as Salesforce's SOAP faults are).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

from crm_sandbox.salesforce.errors import ApiError, not_found
from crm_sandbox.salesforce.http import check_version
from crm_sandbox.salesforce.org import SalesforceOrg
from crm_sandbox.salesforce.schema import FieldDef
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MD = "http://soap.sforce.com/2006/04/metadata"
SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_TYPES = {
    "Text": "string",
    "TextArea": "textarea",
    "LongTextArea": "textarea",
    "Date": "date",
    "DateTime": "datetime",
    "Number": "double",
    "Percent": "percent",
    "Currency": "currency",
    "Checkbox": "boolean",
    "Picklist": "picklist",
    "Email": "email",
    "Phone": "phone",
    "Url": "url",
}
_MD_TYPES = {v: k for k, v in _TYPES.items() if k not in ("TextArea",)}


class SoapFault(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _text(el: ET.Element, name: str) -> str | None:
    c = _child(el, name)
    return c.text if c is not None else None


def _envelope(body: str) -> Response:
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAPENV}" '
        f'xmlns="{MD}" xmlns:xsi="{XSI}"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>'
    )
    return Response(xml, media_type="text/xml;charset=UTF-8")


def _fault(code: str, message: str) -> Response:
    body = (
        f"<soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{escape(code)}: {escape(message)}"
        "</faultstring></soapenv:Fault>"
    )
    response = _envelope(body)
    response.status_code = 500
    return response


def _save_result(full_name: str, error: tuple[str, str] | None, extra: str = "") -> str:
    if error is None:
        return f"<result>{extra}<fullName>{escape(full_name)}</fullName><success>true</success></result>"
    code, message = error
    return (
        f"<result><errors><message>{escape(message)}</message><statusCode>{code}</statusCode></errors>"
        f"<fullName>{escape(full_name)}</fullName><success>false</success></result>"
    )


def metadata_route(org: SalesforceOrg) -> list[Route]:
    async def endpoint(request: Request) -> Response:
        if not org.metadata_api:
            return not_found().response()
        try:
            check_version(request.path_params.get("version"))
        except ApiError:
            return _fault("UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL")
        try:
            root = ET.fromstring(await request.body())  # noqa: S314
        except ET.ParseError as exc:
            return _fault("INVALID_XML", str(exc))
        header, body = _child(root, "Header"), _child(root, "Body")
        session = header and _child(header, "SessionHeader")
        token = _text(session, "sessionId") if session is not None else None
        try:
            org.authenticate(f"Bearer {token}" if token else None)
            org.usage.spend(org.clock.now())
        except ApiError as exc:
            if exc.code == "INVALID_SESSION_ID":
                return _fault(
                    "INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session"
                )
            return _fault(exc.code, exc.message)
        operation = body[0] if body is not None and len(body) else None
        if operation is None:
            return _fault("INVALID_XML", "no operation in the SOAP body")
        try:
            with org.store.lock:
                result = _dispatch(org, _local(operation.tag), operation)
        except SoapFault as exc:
            return _fault(exc.code, exc.message)
        return _envelope(result)

    path = "/services/Soap/m/{version}"
    return [Route(path, endpoint, methods=["POST"]), Route(path + "/", endpoint, methods=["POST"])]


def _dispatch(org: SalesforceOrg, op: str, el: ET.Element) -> str:
    if op in ("createMetadata", "upsertMetadata"):
        results = []
        for item in (c for c in el if _local(c.tag) == "metadata"):
            kind = _local(item.get(f"{{{XSI}}}type", "")).split(":")[-1]
            full_name = _text(item, "fullName") or ""
            if kind == "CustomField":
                error = _create_field(org, item, full_name, upsert=op == "upsertMetadata")
                extra = "<created>true</created>" if op == "upsertMetadata" and error is None else ""
                results.append(_save_result(full_name, error, extra))
            elif kind == "PermissionSet":
                created = _upsert_permission_set(org, item, full_name)
                extra = f"<created>{str(created).lower()}</created>" if op == "upsertMetadata" else ""
                results.append(_save_result(full_name, None, extra))
            else:
                raise SoapFault("INVALID_TYPE", f"The sandbox does not serve metadata type {kind or '?'}")
        return f"<{op}Response>{''.join(results)}</{op}Response>"
    if op == "readMetadata":
        kind = _text(el, "type") or ""
        if kind != "CustomField":
            raise SoapFault("INVALID_TYPE", f"The sandbox does not serve metadata type {kind}")
        names = [c.text or "" for c in el if _local(c.tag) == "fullNames"]
        records = "".join(_read_field(org, n) for n in names)
        return f"<readMetadataResponse><result>{records}</result></readMetadataResponse>"
    raise SoapFault("INVALID_TYPE", f"The sandbox does not serve the Metadata API operation {op}")


def _targets(obj_name: str) -> list[str]:
    return ["Task", "Event"] if obj_name.lower() == "activity" else [obj_name]


def _create_field(
    org: SalesforceOrg, item: ET.Element, full_name: str, *, upsert: bool
) -> tuple[str, str] | None:
    obj_name, _, field_name = full_name.partition(".")
    targets = _targets(obj_name)
    if any(org.schema.get(t) is None for t in targets):
        return ("INVALID_CROSS_REFERENCE_KEY", f"In field: fullName - no CustomObject named {obj_name} found")
    if not field_name.endswith("__c") or len(field_name) <= 3:
        return ("FIELD_INTEGRITY_EXCEPTION", f"Invalid custom field name {field_name}: it must end in __c")
    md_type = _text(item, "type") or ""
    sf_type = _TYPES.get(md_type)
    if sf_type is None:
        return ("FIELD_INTEGRITY_EXCEPTION", f"The sandbox does not serve field type {md_type!r}")
    objects = [o for o in (org.schema.get(t) for t in targets) if o is not None]
    if any(o.field(field_name) is not None for o in objects) and not upsert:
        return ("DUPLICATE_DEVELOPER_NAME", f"There is already a field named {field_name} on {obj_name}.")
    length = int(_text(item, "length") or (255 if sf_type == "string" else 0))
    if md_type == "LongTextArea":
        length = int(_text(item, "length") or 32768)
    values: list[str] = []
    value_set = _child(item, "valueSet")
    definition = _child(value_set, "valueSetDefinition") if value_set is not None else None
    if definition is not None:
        values = [(_text(v, "fullName") or "") for v in definition if _local(v.tag) == "value"]
    fd = FieldDef(
        name=field_name,
        type=sf_type,
        label=_text(item, "label") or field_name,
        length=length,
        custom=True,
        external_id=(_text(item, "externalId") or "false") == "true",
        unique=(_text(item, "unique") or "false") == "true",
        picklist=tuple(values),
    )
    for t in targets:
        org.schema.add_field(t, fd)
        org.store.table(t).refresh_index_fields()
    return None


def _upsert_permission_set(org: SalesforceOrg, item: ET.Element, full_name: str) -> bool:
    table = org.store.table("PermissionSet")
    label = _text(item, "label") or full_name
    for rec in table.rows.values():
        if rec.get("Name") == full_name and not rec.get("IsDeleted"):
            org.store.replace(table, rec, {"Label": label}, org.store.integration_user_id)
            return False
    org.store.insert(
        table, {"Name": full_name, "Label": label, "IsOwnedByProfile": False}, org.store.integration_user_id
    )
    return True


def _read_field(org: SalesforceOrg, full_name: str) -> str:
    obj_name, _, field_name = full_name.partition(".")
    obj = org.schema.get(_targets(obj_name)[0])
    fd = obj.field(field_name) if obj is not None else None
    if fd is None or not fd.custom:
        return '<records xsi:type="CustomField"/>'
    parts: dict[str, Any] = {
        "fullName": full_name,
        "externalId": str(fd.external_id).lower(),
        "label": fd.label,
        "length": fd.length if fd.type in ("string", "textarea") else None,
        "type": _MD_TYPES.get(fd.type, "Text"),
        "unique": str(fd.unique).lower(),
    }
    inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in parts.items() if v is not None)
    return f'<records xsi:type="CustomField">{inner}</records>'
