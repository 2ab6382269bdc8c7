"""Line-aware YAML: the data plus the position of every key, so errors can say ``file:line:col``.

Only safe YAML is loaded (no tags, no objects): a policy file is data and can never execute code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.errors import ConfigError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Located:
    """Parsed YAML and a map from key paths to their ``(line, column)``, both 1-based."""

    data: Any
    marks: Mapping[Loc, tuple[int, int]]
    filename: str

    def where(self, loc: Sequence[str | int]) -> str:
        """``file:line:col`` of the nearest node that exists on the path ``loc``."""
        path: Loc = tuple(loc)
        while path and path not in self.marks:
            path = path[:-1]
        mark = self.marks.get(path)
        return self.filename if mark is None else f"{self.filename}:{mark[0]}:{mark[1]}"

    def problems_from(self, error: ValidationError, prefix: Loc = ()) -> list[str]:
        """One ``file:line:col: path: message`` line per pydantic error."""
        lines = []
        for err in error.errors(include_url=False):
            loc = prefix + tuple(err["loc"])
            dotted = ".".join(str(p) for p in loc) or "(top level)"
            lines.append(f"{self.where(loc)}: {dotted}: {err['msg']}")
        return lines


def _index(node: yaml.Node, path: Loc, marks: dict[Loc, tuple[int, int]]) -> None:
    marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            child = (*path, key)
            # Point at the key: that is where a person looks for "unknown key" and "bad value" alike.
            marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _index(value_node, child, marks)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), marks)


def parse_located(text: str, filename: str) -> Located:
    """Parse YAML text; syntax errors become a ``ConfigError`` with the position of the problem."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        raise ConfigError([f"{where}: {exc.problem or exc.context or 'invalid YAML'}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{filename}: invalid YAML: {exc}"]) from None
    marks: dict[Loc, tuple[int, int]] = {}
    if root is not None:
        _index(root, (), marks)
    return Located(data, marks, filename)


def load_located(path: Path) -> Located:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    return parse_located(text, str(path))
