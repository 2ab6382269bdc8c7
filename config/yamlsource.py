"""Line-aware YAML with limits: the data plus the position of every key, so errors can say ``file:line:col``.

Only safe YAML is loaded (no tags, no objects): a policy or settings file is data and can never execute
code. A configuration file is also never trusted to be small or well-formed, so reading it is bounded:

- at most ``MAX_BYTES`` bytes (checked before parsing: a 50 MB file is refused at once);
- at most ``MAX_DEPTH`` levels of nesting (deeper input would exhaust Python's recursion limit);
- aliases may add at most ``MAX_ALIAS_NODES`` values in all (a "billion laughs" file expands to 10^9
  values from a few hundred bytes), and an alias may not refer to a node that contains it;
- no key twice in one mapping (PyYAML keeps the last silently: the file would mean something else than it
  says);
- numbers are finite (no ``.nan``, ``.inf``) and integers fit in 64 bits; dates are real dates.

Every violation is a ``ConfigError`` line ``file:line:col: message``. The file is parsed once: the node
graph gives the positions and the checks, and the data is constructed from that same graph.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.errors import ConfigError

Loc = tuple[str | int, ...]

MAX_BYTES = 1024 * 1024  # the shipped policy folder is 9 KB; a settings file with 100 accounts about 30 KB
MAX_DEPTH = 50  # the deepest key either file format has is 7 levels down
MAX_ALIAS_NODES = 10_000  # values that aliases may add (a shared block merged into a few dozen overrides)
MAX_INT = 2**63 - 1  # no setting is larger; beyond this an integer is a typo or an attack


@dataclass(frozen=True)
class Located:
    """Parsed YAML and a map from key paths to their ``(line, column)``, both 1-based."""

    data: Any
    marks: Mapping[Loc, tuple[int, int]]
    filename: str

    def where(self, loc: Sequence[str | int]) -> str:
        """``file:line:col`` of the nearest node on the path ``loc`` (the file's start if there is none)."""
        path: Loc = tuple(loc)
        while path and path not in self.marks:
            path = path[:-1]
        line, column = self.marks.get(path, (1, 1))
        return f"{self.filename}:{line}:{column}"

    def key_path(self, loc: Sequence[str | int]) -> Loc:
        """``loc`` without the names pydantic adds for union members (``cron.fields.x`` is ``cron.x``)."""
        path: Loc = ()
        loc = loc[:-1] if loc[-1:] == ("[key]",) else loc  # an error in a key is placed at the key
        for i, part in enumerate(loc):
            if (*path, part) not in self.marks and i + 1 < len(loc) and (*path, loc[i + 1]) in self.marks:
                continue
            path = (*path, part)
        return path

    def problems_from(self, error: ValidationError, prefix: Loc = ()) -> list[str]:
        """One ``file:line:col: path: message`` line per pydantic error."""
        lines = []
        for err in error.errors(include_url=False):
            loc = self.key_path(prefix + tuple(err["loc"]))
            dotted = ".".join(str(p) for p in loc) or "(top level)"
            lines.append(f"{self.where(loc)}: {dotted}: {_message(err)}")
        return lines


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    return str(error["msg"]).removeprefix("Value error, ")


class _LimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the limits above enforced while composing and constructing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._alias_nodes = 0
        self._open_anchors: set[str] = set()
        self._sizes: dict[int, int] = {}
        self.node_paths: dict[int, Loc] = {}  # filled by ``_index`` before construction: for messages

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open_anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"alias *{event.anchor} refers to a node that contains it", _mark(event)
                )
            node = super().compose_node(parent, index)
            assert node is not None  # an alias always names a composed node
            self._alias_nodes += self._size(node)
            if self._alias_nodes > MAX_ALIAS_NODES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"aliases expand to more than {MAX_ALIAS_NODES:,} values; write the values out "
                    "or share fewer of them",
                    _mark(event),
                )
            return node
        if self._depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_DEPTH} levels deep", _mark(event)
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open_anchors.add(anchor)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open_anchors.discard(anchor)
        return node

    def _size(self, node: yaml.Node) -> int:
        """How many values ``node`` stands for once every alias inside it is expanded (memoised)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._size(k) + self._size(v) for k, v in node.value)
        self._sizes[id(node)] = size
        return size

    def _refuse(self, node: yaml.Node, message: str) -> yaml.constructor.ConstructorError:
        path = self.node_paths.get(id(node))
        where = f"{'.'.join(str(p) for p in path) or '(top level)'}: " if path is not None else ""
        return yaml.constructor.ConstructorError(None, None, where + message, node.start_mark)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # e.g. 2026-02-30 from the timestamp constructor
            raise self._refuse(node, f"{node.value!r} is not a valid {_kind(node)}: {exc}") from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(str(node.value)) > 70:  # decimal, hex, octal, binary or sexagesimal: far beyond 64 bits
            raise self._refuse(node, f"integer too large (more than {len(str(MAX_INT))} digits)")
        value: int = super().construct_yaml_int(node)
        if abs(value) > MAX_INT:
            raise self._refuse(node, f"integer too large ({value} is beyond 64 bits)")
        return value

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value: float = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise self._refuse(node, f"{node.value!r} is not a finite number")
        return value


_LimitedLoader.add_constructor("tag:yaml.org,2002:int", _LimitedLoader.construct_yaml_int)
_LimitedLoader.add_constructor("tag:yaml.org,2002:float", _LimitedLoader.construct_yaml_float)


def _mark(event: yaml.Event) -> yaml.Mark | None:
    mark = event.start_mark
    return mark if isinstance(mark, yaml.Mark) else None  # the pure-Python parser makes yaml.Mark


def _kind(node: yaml.Node) -> str:
    return {"tag:yaml.org,2002:timestamp": "date"}.get(node.tag, "value")


Duplicates = dict[int, tuple[int, int, str]]  # id of the second key node -> line, column, message


def _index(
    node: yaml.Node,
    path: Loc,
    marks: dict[Loc, tuple[int, int]],
    duplicates: Duplicates,
    paths: dict[int, Loc],
) -> None:
    marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    paths.setdefault(id(node), path)
    if isinstance(node, yaml.MappingNode):
        seen: set[tuple[str, str]] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            child = (*path, key)
            # Point at the key: that is where a person looks for "unknown key" and "bad value" alike.
            marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            identity = (key_node.tag, str(key))
            if identity in seen and id(key_node) not in duplicates:
                dotted = ".".join(str(p) for p in child)
                duplicates[id(key_node)] = (
                    key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                    f"{dotted}: duplicate key (the earlier value would be ignored)",
                )
            seen.add(identity)
            _index(value_node, child, marks, duplicates, paths)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), marks, duplicates, paths)


def _place(filename: str, mark: yaml.Mark | None) -> str:
    return f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else f"{filename}:1:1"


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def parse_located(text: str, filename: str) -> Located:
    """Parse YAML text within the limits; any problem becomes a ``ConfigError`` with its position."""
    if len(text) > MAX_BYTES:
        raise ConfigError([_too_big(filename, len(text.encode("utf-8")))])
    loader: _LimitedLoader | None = None
    try:
        loader = _LimitedLoader(text)  # the reader checks every character here
        root = loader.get_single_node()
        marks: dict[Loc, tuple[int, int]] = {}
        duplicates: Duplicates = {}
        if root is not None:
            _index(root, (), marks, duplicates, loader.node_paths)
        if duplicates:
            raise ConfigError(f"{filename}:{ln}:{col}: {msg}" for ln, col, msg in sorted(duplicates.values()))
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(
            [f"{_place(filename, mark)}: {exc.problem or exc.context or 'invalid YAML'}"]
        ) from None
    except yaml.reader.ReaderError as exc:
        line, column = _line_col(text, exc.position)
        raise ConfigError(
            [f"{filename}:{line}:{column}: character #x{exc.character:04x} is not allowed in YAML"]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{filename}:1:1: invalid YAML: {exc}"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return Located(data, marks, filename)


def _too_big(filename: str, size: int) -> str:
    return (
        f"{filename}:1:1: the file has {size:,} bytes; a configuration file may have at most "
        f"{MAX_BYTES:,} (is this the right file?)"
    )


def read_limited(path: Path, limit: int) -> tuple[bytes, int]:
    """At most ``limit + 1`` bytes of the file and its full size: a huge file is never read whole."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if stat.S_ISREG(os.fstat(handle.fileno()).st_mode) and size > limit:
            return b"", size  # refused on its size alone, never read
        data = handle.read(limit + 1)  # a pipe or device: read no more than one byte past the limit
        return data, len(data)


def load_located(path: Path) -> Located:
    """Read and parse a YAML file within the limits (size first, then syntax, nesting, aliases, keys)."""
    try:
        raw, size = read_limited(path, MAX_BYTES)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    if size > MAX_BYTES:
        raise ConfigError([_too_big(str(path), size)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError([f"{path}:{line}:{column}: not UTF-8 text (byte 0x{raw[exc.start]:02x})"]) from None
    return parse_located(text, str(path))
