"""SOQL tokens with their offsets, so every error can point at the row and column Salesforce would."""

from __future__ import annotations

import re
from dataclasses import dataclass

from crm_sandbox.salesforce.soql.errors import malformed

_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\dT])")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("!=", "<>", "<=", ">=", "=", "<", ">")
_PUNCT = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA", ".": "DOT", ":": "COLON"}
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # IDENT STRING NUMBER DATE DATETIME OP LPAREN RPAREN COMMA DOT COLON EOF
    text: str  # the source text (strings: the unescaped value)
    pos: int

    def is_kw(self, *words: str) -> bool:
        return self.kind == "IDENT" and self.text.upper() in words


def tokenize(query: str) -> list[Token]:
    """Split ``query`` into tokens; an unterminated string or a stray character is MALFORMED_QUERY."""
    tokens: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "'":
            i = _string(query, i, tokens)
            continue
        if ch.isdigit() or (ch in "+-" and i + 1 < n and (query[i + 1].isdigit() or query[i + 1] == ".")):
            m = _DATETIME.match(query, i) or None
            if m:
                tokens.append(Token("DATETIME", m.group(), i))
                i = m.end()
                continue
            m = _DATE.match(query, i)
            if m:
                tokens.append(Token("DATE", m.group(), i))
                i = m.end()
                continue
            m = _NUMBER.match(query, i)
            if m:
                tokens.append(Token("NUMBER", m.group(), i))
                i = m.end()
                continue
        m = _IDENT.match(query, i)
        if m:
            tokens.append(Token("IDENT", m.group(), i))
            i = m.end()
            continue
        op = next((o for o in _OPERATORS if query.startswith(o, i)), None)
        if op:
            tokens.append(Token("OP", "!=" if op == "<>" else op, i))
            i += len(op)
            continue
        if ch in _PUNCT:
            tokens.append(Token(_PUNCT[ch], ch, i))
            i += 1
            continue
        raise malformed(query, i, f"unexpected token: '{ch}'")
    tokens.append(Token("EOF", "", n))
    return tokens


def _string(query: str, start: int, tokens: list[Token]) -> int:
    out: list[str] = []
    i = start + 1
    while i < len(query):
        ch = query[i]
        if ch == "\\":
            nxt = query[i + 1] if i + 1 < len(query) else ""
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in "%_":  # LIKE escapes stay escaped for the pattern compiler
                out.append("\\" + nxt)
            else:
                raise malformed(query, i, "Invalid string literal: Illegal escape sequence")
            i += 2
            continue
        if ch == "'":
            tokens.append(Token("STRING", "".join(out), start))
            return i + 1
        out.append(ch)
        i += 1
    raise malformed(query, start, "unexpected token: <EOF>")
