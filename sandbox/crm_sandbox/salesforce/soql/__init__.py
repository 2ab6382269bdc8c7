"""SOQL for the Salesforce sandbox.

``lexer`` (tokens with offsets), ``parser`` (recursive descent to ``ast``), ``evaluator`` (names checked
against the schema, run over the store with its indexes), ``predicates`` (comparisons, LIKE, sort keys),
``dates`` (relative date literals) and ``errors`` (Salesforce's MALFORMED_QUERY / INVALID_FIELD /
INVALID_TYPE wording).
"""

from __future__ import annotations
