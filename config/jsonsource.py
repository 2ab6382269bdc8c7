"""JSON files people hand us (``followup plan --snapshot``): read within limits, errors at ``file:line:col``.

The JSON itself is parsed by pydantic (its parser is fast, limits nesting to 200 levels and reports syntax
errors with a line and column); this module adds the size limit and, only when something is wrong, finds
where a value on a JSON path is in the text, so a validation error names its line and column like the YAML
files do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from config.errors import ConfigError
from config.yamlsource import read_limited

Loc = tuple[str | int, ...]

MAX_JSON_BYTES = 64 * 1024 * 1024  # ~50,000 deals like the example (14 MB: 10,800); larger: use --settings
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')
_SYNTAX_PLACE = re.compile(r"^(?P<what>.*) at line (?P<line>\d+) column (?P<col>\d+)$")


@dataclass(frozen=True)
class JsonText:
    """A JSON document's text and where it came from; ``places`` finds the positions of paths on demand."""

    text: str
    filename: str

    def places(self, locs: Iterable[Loc]) -> dict[Loc, str]:
        """``file:line:col`` of the value at each path (of its key inside an object), in one pass over the
        text; a path that does not exist gets the place of its nearest existing parent."""
        locs = [tuple(loc) for loc in locs]
        found = _offsets(self.text, {loc[:n] for loc in locs for n in range(len(loc) + 1)})
        out = {}
        for loc in locs:
            path = loc
            while path and path not in found:
                path = path[:-1]
            offset = found.get(path, 0)
            line = self.text.count("\n", 0, offset) + 1
            column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
            out[loc] = f"{self.filename}:{line}:{column}"
        return out

    def key_paths(self, locs: Iterable[Loc]) -> dict[Loc, Loc]:
        """Each pydantic ``loc`` as a JSON path: without the names pydantic adds for union members."""
        locs = [tuple(loc) for loc in locs]
        known = set(_offsets(self.text, {loc[:n] for loc in locs for n in range(len(loc) + 1)}))
        out = {}
        for loc in locs:
            path: Loc = ()
            for i, part in enumerate(loc):
                if (*path, part) not in known and i + 1 < len(loc) and (*path, loc[i + 1]) in known:
                    continue
                path = (*path, part)
            out[loc] = path
        return out

    def existing(self, locs: Iterable[Loc]) -> set[Loc]:
        """Which of these paths and their parents exist in the document (one pass)."""
        return set(_offsets(self.text, {loc[:n] for loc in locs for n in range(len(loc) + 1)}))

    def syntax_problem(self, message: str) -> str:
        """A parser message ``... at line L column C`` as ``file:L:C: ...``."""
        match = _SYNTAX_PLACE.match(message)
        if match is None:
            return f"{self.filename}:1:1: {message}"
        column = max(1, int(match["col"]))  # the parser says column 0 at the start of an empty line
        return f"{self.filename}:{match['line']}:{column}: {match['what']}"


@dataclass
class _Frame:
    path: Loc  # of the object or array
    is_array: bool
    member: str | int  # the current key or index
    expecting: bool = True  # a key (object) or an item (array) comes next

    @property
    def child(self) -> Loc:
        return (*self.path, self.member)


def _offsets(text: str, wanted: set[Loc]) -> dict[Loc, int]:
    """The text offset of every path in ``wanted`` that exists: a member's key, an array item's start.

    A tokenizer over text that pydantic already parsed (or that failed later than these paths), so it
    only tracks nesting, keys and indexes; on malformed input it stops with what it found.
    """
    found: dict[Loc, int] = {(): 0} if () in wanted else {}
    stack: list[_Frame] = []
    for match in _TOKEN.finditer(text):
        piece = match.group()
        top = stack[-1] if stack else None
        if top is not None and top.expecting and piece not in ",]}":
            top.expecting = False
            if not top.is_array:
                try:
                    top.member = json.loads(piece)
                except ValueError:
                    return found
            if top.child in wanted and top.child not in found:
                found[top.child] = match.start()
            if not top.is_array:
                continue
        if piece in "{[":
            stack.append(_Frame(top.child if top else (), piece == "[", 0 if piece == "[" else ""))
        elif piece in "}]":
            if not stack:
                return found
            stack.pop()
        elif piece == "," and top is not None:
            top.expecting = True
            if top.is_array and isinstance(top.member, int):
                top.member += 1
    return found


def read_json_text(path: Path, limit: int = MAX_JSON_BYTES) -> JsonText:
    """The file's text, refused with a located message when it is too big or not UTF-8."""
    try:
        raw, size = read_limited(path, limit)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    if size > limit:
        raise ConfigError(
            [
                f"{path}:1:1: the file has {size:,} bytes; a snapshot may have at most {limit:,} "
                "(pull live with --settings instead)"
            ]
        )
    try:
        return JsonText(raw.decode("utf-8"), str(path))
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError([f"{path}:{line}:{column}: not UTF-8 text (byte 0x{raw[exc.start]:02x})"]) from None
