"""A recursive-descent parser for the SOQL subset the sandbox serves.

Grammar (keywords case-insensitive)::

    query     := SELECT item ("," item)* FROM name [WHERE cond] [ORDER BY order ("," order)*]
                 [LIMIT n] [OFFSET n]
    item      := path | COUNT "(" [path] ")" [alias] | "(" query ")"        -- subquery FROM a relationship
    cond      := and_or ; and_or := unary ((AND | OR) unary)*   -- mixing AND and OR needs parentheses
    unary     := NOT unary | "(" cond ")" | path op value | path [NOT] IN "(" values | query ")"
                 | path LIKE string
    value     := string | number | TRUE | FALSE | NULL | date | datetime | RELATIVE[":" n]

Anything else (GROUP BY, TYPEOF, FOR UPDATE, ...) is answered with MALFORMED_QUERY naming the token, as
Salesforce does for text it cannot parse.
"""

from __future__ import annotations

from crm_sandbox.salesforce.soql.ast import (
    And,
    Compare,
    Condition,
    Count,
    FieldRef,
    InList,
    InQuery,
    Like,
    Literal,
    Not,
    Or,
    OrderItem,
    Query,
)
from crm_sandbox.salesforce.soql.dates import RELATIVE_WITH_N, RELATIVE_WITHOUT_N
from crm_sandbox.salesforce.soql.errors import SoqlError, malformed
from crm_sandbox.salesforce.soql.lexer import Token, tokenize

MAX_OFFSET = 2000
_CLAUSE_WORDS = ("FROM", "WHERE", "ORDER", "LIMIT", "OFFSET", "GROUP", "HAVING", "WITH", "FOR", "USING")


def parse(text: str) -> Query:
    """Parse one SOQL statement; raises ``SoqlError`` (MALFORMED_QUERY) on anything outside the grammar."""
    parser = _Parser(text)
    query = parser.query(sub=False)
    parser.expect_eof()
    return query


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def unexpected(self, tok: Token | None = None) -> SoqlError:
        tok = tok or self.tok
        shown = "<EOF>" if tok.kind == "EOF" else (f"'{tok.text}'" if tok.kind == "STRING" else tok.text)
        return malformed(self.text, tok.pos, f"unexpected token: {shown}")

    def expect(self, kind: str) -> Token:
        if self.tok.kind != kind:
            raise self.unexpected()
        return self.next()

    def expect_kw(self, word: str) -> Token:
        if not self.tok.is_kw(word):
            raise self.unexpected()
        return self.next()

    def expect_eof(self) -> None:
        if self.tok.kind != "EOF":
            raise self.unexpected()

    # --- query ---------------------------------------------------------------------------------------

    def query(self, *, sub: bool) -> Query:
        start = self.expect_kw("SELECT").pos
        items: list[FieldRef | Count | Query] = [self.select_item(sub)]
        while self.tok.kind == "COMMA":
            self.next()
            items.append(self.select_item(sub))
        self.expect_kw("FROM")
        name_tok = self.expect("IDENT")
        if self.tok.kind == "IDENT" and not self.tok.is_kw(*_CLAUSE_WORDS):
            self.next()  # an alias for the object: accepted and ignored
        where = None
        if self.tok.is_kw("WHERE"):
            self.next()
            where = self.condition()
        order: list[OrderItem] = []
        if self.tok.is_kw("ORDER"):
            self.next()
            self.expect_kw("BY")
            order.append(self.order_item())
            while self.tok.kind == "COMMA":
                self.next()
                order.append(self.order_item())
        limit = offset = None
        offset_pos = 0
        if self.tok.is_kw("LIMIT"):
            self.next()
            limit = self.integer()
        if self.tok.is_kw("OFFSET"):
            offset_pos = self.next().pos
            offset = self.integer()
            if offset > MAX_OFFSET:
                raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}")
        return Query(
            source=self.text,
            select=tuple(items),
            sobject=name_tok.text,
            sobject_pos=name_tok.pos,
            where=where,
            order_by=tuple(order),
            limit=limit,
            offset=offset,
            offset_pos=offset_pos,
            pos=start,
        )

    def integer(self) -> int:
        tok = self.expect("NUMBER")
        if not tok.text.isdigit():
            raise self.unexpected(tok)
        return int(tok.text)

    def select_item(self, sub: bool) -> FieldRef | Count | Query:
        tok = self.tok
        if tok.kind == "LPAREN":
            if sub:
                raise self.unexpected()
            self.next()
            inner = self.query(sub=True)
            self.expect("RPAREN")
            return inner
        if tok.is_kw("COUNT") and self.tokens[self.i + 1].kind == "LPAREN":
            self.next()
            self.next()
            ref = None if self.tok.kind == "RPAREN" else self.path()
            self.expect("RPAREN")
            alias = None
            if self.tok.kind == "IDENT" and not self.tok.is_kw(*_CLAUSE_WORDS):
                alias = self.next().text
            return Count(ref, alias, tok.pos)
        return self.path()

    def path(self) -> FieldRef:
        if self.tok.is_kw(*_CLAUSE_WORDS):
            raise self.unexpected()
        first = self.expect("IDENT")
        parts = [first.text]
        while self.tok.kind == "DOT":
            self.next()
            parts.append(self.expect("IDENT").text)
        if self.tok.kind == "LPAREN":  # a function we do not support (e.g. toLabel, CALENDAR_YEAR)
            raise self.unexpected(first)
        return FieldRef(tuple(parts), first.pos)

    def order_item(self) -> OrderItem:
        ref = self.path()
        descending = False
        if self.tok.is_kw("ASC", "DESC"):
            descending = self.next().text.upper() == "DESC"
        nulls_first = not descending
        if self.tok.is_kw("NULLS"):
            self.next()
            if not self.tok.is_kw("FIRST", "LAST"):
                raise self.unexpected()
            nulls_first = self.next().text.upper() == "FIRST"
        return OrderItem(ref, descending, nulls_first)

    # --- conditions ----------------------------------------------------------------------------------

    def condition(self) -> Condition:
        first = self.unary()
        items = [first]
        joiner: str | None = None
        while self.tok.is_kw("AND", "OR"):
            word = self.tok.text.upper()
            if joiner is not None and word != joiner:
                raise self.unexpected()  # "a AND b OR c" needs parentheses in SOQL
            joiner = word
            self.next()
            items.append(self.unary())
        if joiner is None:
            return first
        return And(tuple(items)) if joiner == "AND" else Or(tuple(items))

    def unary(self) -> Condition:
        if self.tok.is_kw("NOT"):
            self.next()
            return Not(self.unary())
        if self.tok.kind == "LPAREN":
            self.next()
            grouped = self.condition()
            self.expect("RPAREN")
            return grouped
        ref = self.path()
        tok = self.tok
        if tok.kind == "OP":
            self.next()
            return Compare(ref, tok.text, self.value())
        negate = False
        if tok.is_kw("NOT"):
            self.next()
            negate = True
            if not self.tok.is_kw("IN"):
                raise self.unexpected()
        if self.tok.is_kw("IN"):
            self.next()
            self.expect("LPAREN")
            if self.tok.is_kw("SELECT"):
                semi = self.query(sub=True)
                self.expect("RPAREN")
                return InQuery(ref, negate, semi)
            values = [self.value()]
            while self.tok.kind == "COMMA":
                self.next()
                values.append(self.value())
            self.expect("RPAREN")
            return InList(ref, negate, tuple(values))
        if tok.is_kw("LIKE"):
            self.next()
            pattern = self.value()
            if pattern.kind != "string":
                raise malformed(self.text, pattern.pos, "unexpected token: " + self.tokens[self.i - 1].text)
            return Like(ref, pattern)
        raise self.unexpected()

    def value(self) -> Literal:
        tok = self.next()
        if tok.kind == "STRING":
            return Literal("string", tok.text, tok.pos)
        if tok.kind == "NUMBER":
            return Literal("number", float(tok.text) if "." in tok.text else int(tok.text), tok.pos)
        if tok.kind in ("DATE", "DATETIME"):
            return Literal(tok.kind.lower(), tok.text, tok.pos)
        if tok.kind == "IDENT":
            word = tok.text.upper()
            if word in ("TRUE", "FALSE"):
                return Literal("boolean", word == "TRUE", tok.pos)
            if word == "NULL":
                return Literal("null", None, tok.pos)
            if word in RELATIVE_WITHOUT_N:
                return Literal("relative", (word, None), tok.pos)
            if word in RELATIVE_WITH_N:
                self.expect("COLON")
                n_tok = self.expect("NUMBER")
                if not n_tok.text.isdigit():
                    raise self.unexpected(n_tok)
                return Literal("relative", (word, int(n_tok.text)), tok.pos)
        raise self.unexpected(tok)
