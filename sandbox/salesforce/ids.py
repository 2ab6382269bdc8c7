"""Salesforce record ids: 15 case-sensitive characters plus a 3-character case-safe suffix.

Real ids start with the object's key prefix (``006`` Opportunity, ``00T`` Task, ...), then a pod/instance
part and a base-62 counter. Clients compare, slice and validate them (the suffix is a checksum over the
capitalisation of the first 15 characters), so the sandbox produces ids with the same structure and a valid
suffix. The counter is zero-padded base 62 in ASCII order, so sorting ids as strings sorts them by creation.
"""

from __future__ import annotations

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_INSTANCE = "5g0"  # pod "5g" plus a reserved character, as ids of recent orgs look
_COUNTER_WIDTH = 9

ORG_ID_PREFIX = "00D"
QUERY_LOCATOR_PREFIX = "01g"


def checksum_suffix(id15: str) -> str:
    """The 3 characters that make a 15-character id case-insensitively unique."""
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX_ALPHABET[bits])
    return "".join(out)


def make_id(prefix: str, counter: int) -> str:
    """The 18-character id of the ``counter``-th record with key prefix ``prefix``."""
    digits = []
    n = counter
    while n:
        n, rem = divmod(n, 62)
        digits.append(_BASE62[rem])
    body = "".join(reversed(digits)).rjust(_COUNTER_WIDTH, "0")
    if len(body) > _COUNTER_WIDTH:
        raise ValueError(f"id counter {counter} does not fit")
    id15 = prefix + _INSTANCE + body
    return id15 + checksum_suffix(id15)


def counter_of(record_id: str) -> int:
    """The counter a sandbox id was made from (inverse of ``make_id``)."""
    n = 0
    for ch in record_id[6:15]:
        n = n * 62 + _BASE62.index(ch)
    return n


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when ``value`` is not a valid id."""
    if len(value) not in (15, 18) or not value.isalnum() or not value.isascii():
        return None
    id15 = value[:15]
    suffix = checksum_suffix(id15)
    if len(value) == 18 and value[15:].upper() != suffix:
        return None
    return id15 + suffix
