"""SOQL errors worded as Salesforce words them, with its row/column pointer into the query text."""

from __future__ import annotations


class SoqlError(Exception):
    """A query Salesforce would reject: ``code`` is its errorCode (MALFORMED_QUERY, INVALID_FIELD, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def located(query: str, pos: int, text: str) -> str:
    """``text`` after the offending line, a caret and ``ERROR at Row:r:Column:c``, as Salesforce words it."""
    pos = max(0, min(pos, len(query)))
    line_start = query.rfind("\n", 0, pos) + 1
    line_end = query.find("\n", pos)
    line = query[line_start : line_end if line_end >= 0 else len(query)]
    row = query.count("\n", 0, pos) + 1
    col = pos - line_start + 1
    return f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{text}"


def malformed(query: str, pos: int, text: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", located(query, pos, text))


def invalid_field(query: str, pos: int, text: str) -> SoqlError:
    return SoqlError("INVALID_FIELD", located(query, pos, text))


def no_such_column(query: str, pos: int, column: str, entity: str) -> SoqlError:
    return invalid_field(
        query,
        pos,
        f"No such column '{column}' on entity '{entity}'. If you are attempting to use a custom field, "
        "be sure to append the '__c' after the custom field name. Please reference your WSDL or the "
        "describe call for the appropriate names.",
    )


def invalid_type(query: str, pos: int, name: str) -> SoqlError:
    return SoqlError(
        "INVALID_TYPE",
        located(
            query,
            pos,
            f"sObject type '{name}' is not supported. If you are attempting to use a custom object, "
            "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
            "describe call for the appropriate names.",
        ),
    )
