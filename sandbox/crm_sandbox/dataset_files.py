"""How a generated dataset is stored on disk, so a sandbox restarts in seconds instead of regenerating.

Call ``crm_sandbox.dataset.save / load / generate_or_load``; this module is their implementation.

A saved dataset is a directory with two files:
- ``dataset.pickle``: every record as a plain tuple of its fields (pickle protocol 5), one list per kind.
- ``dataset.json``: a human-readable summary (format, generator version, seed, deals, now, counts).

Why pickle: the sandbox only ever reads files it wrote itself (never user-supplied data, which pickle must
not be used for), and pickle of tuples is the fastest round trip CPython offers without extra dependencies:
a million activities load in a few seconds, several times faster than JSON lines, because datetimes and
repeated strings (shared subjects and bodies, enum members, the UTC tzinfo) are stored once and referenced.
Tuples rather than the dataclasses themselves keep the file independent of dataclass pickling internals and
let ``FORMAT_VERSION`` guard the field order: a file with another version is refused (``load``) or rebuilt
(``generate_or_load``). Writes go to a temporary file renamed into place, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from operator import attrgetter
from pathlib import Path
from typing import Any

from crm_sandbox.dataset import (
    ActivityKind,
    Archetype,
    Dataset,
    GenActivity,
    GenCompany,
    GenContact,
    GenDeal,
    GenDealContact,
    GenFieldChange,
    GenOwner,
)
from crm_sandbox.generator import GENERATOR_VERSION, generate_dataset, paused_gc

__all__ = ["FORMAT_VERSION", "cached_dataset", "read_dataset", "write_dataset"]

FORMAT_VERSION = 1
_DATA_FILE = "dataset.pickle"
_SUMMARY_FILE = "dataset.json"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DATETIME_FIELDS = frozenset({"created_at", "modified_at", "stage_entered_at", "occurred_at", "at"})
_DATE_FIELDS = frozenset({"close_date", "next_step_date"})
_ENUM_FIELDS: dict[str, type[StrEnum]] = {"archetype": Archetype, "kind": ActivityKind}
_TABLES: tuple[tuple[str, type], ...] = (
    ("owners", GenOwner),
    ("companies", GenCompany),
    ("contacts", GenContact),
    ("deals", GenDeal),
    ("activities", GenActivity),
    ("history", GenFieldChange),  # absent from files written before histories: read as empty
)


def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(field.name for field in fields(cls))


def _encode_column(name: str, values: list[Any]) -> list[Any]:
    """Plain ints and strings pickle without per-object overhead; datetimes and enums do not."""
    if name in _DATETIME_FIELDS:
        return [None if value is None else (value - _EPOCH) // _MICROSECOND for value in values]
    if name in _DATE_FIELDS:
        return [None if value is None else value.toordinal() for value in values]
    if name in _ENUM_FIELDS:
        return [value.value for value in values]
    if name == "contacts":  # GenDeal.contacts
        return [tuple((link.contact_id, link.role, link.is_primary) for link in links) for links in values]
    return values


def _decode_column(
    name: str, values: list[Any], first_moments: list[tuple[list[Any], list[Any]]]
) -> list[Any]:
    """Decode one column of a table.

    ``first_moments`` holds the table's first datetime column (raw and decoded): later datetime columns
    reuse its objects where a row has the same stamp (an activity's created_at is usually its occurred_at),
    which saves a third of the work and the memory.
    """
    if name in _DATETIME_FIELDS:
        epoch, micro = _EPOCH, _MICROSECOND
        if not first_moments:
            moments = [None if value is None else epoch + value * micro for value in values]
            first_moments.append((values, moments))
            return moments
        raw, decoded = first_moments[0]
        return [
            known if value == seen else (None if value is None else epoch + value * micro)
            for value, seen, known in zip(values, raw, decoded, strict=True)
        ]
    if name in _DATE_FIELDS:
        return [None if value is None else date.fromordinal(value) for value in values]
    if name in _ENUM_FIELDS:
        members = {member.value: member for member in _ENUM_FIELDS[name]}
        return [members[value] for value in values]
    if name == "contacts":
        return [tuple(GenDealContact(*link) for link in links) for links in values]
    return values


def _columns(records: tuple[Any, ...], cls: type) -> dict[str, list[Any]]:
    names = _field_names(cls)
    if not records:
        return {name: [] for name in names}
    rows = map(attrgetter(*names), records)
    return {
        name: _encode_column(name, list(column))
        for name, column in zip(names, zip(*rows, strict=True), strict=True)
    }


def _records(columns: dict[str, list[Any]], cls: type) -> tuple[Any, ...]:
    first_moments: list[tuple[list[Any], list[Any]]] = []
    decoded = [_decode_column(name, columns[name], first_moments) for name in _field_names(cls)]
    return tuple(map(_fast_constructor(cls), *decoded))


def _fast_constructor(cls: type) -> type:
    """A stand-in class whose construction yields real ``cls`` instances about three times faster.

    A frozen dataclass sets each field through ``object.__setattr__`` (its own ``__setattr__`` refuses),
    which makes building a million records the bulk of ``load``. The stand-in has the same slots and a plain
    ``__init__`` that assigns them, then switches the instance's class to ``cls``; Python allows that because
    the memory layouts are identical. The result is an ordinary frozen ``cls`` instance (equal, hashable,
    immutable). Classes with a ``__post_init__`` or another layout get no stand-in: we then call ``cls``.
    """
    names = _field_names(cls)
    if (
        hasattr(cls, "__post_init__")
        or tuple(getattr(cls, "__slots__", ())) != names
        or cls.__bases__ != (object,)
    ):
        return cls
    source = (
        f"def __init__(self, {', '.join(names)}):\n"
        + "".join(f"    self.{name} = {name}\n" for name in names)
        + "    self.__class__ = target\n"
    )
    namespace: dict[str, Any] = {}
    exec(source, {"target": cls}, namespace)  # noqa: S102 - source built from the dataclass's own field names
    return type(f"_Loading{cls.__name__}", (), {"__slots__": names, "__init__": namespace["__init__"]})


def write_dataset(dataset: Dataset, directory: Path) -> None:
    """Save ``dataset`` under ``directory`` atomically (see the module docstring)."""
    directory.mkdir(parents=True, exist_ok=True)
    with paused_gc():
        payload: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "seed": dataset.seed,
            "now": dataset.now,
            "meta": dict(dataset.meta),
            "pipelines": dataset.pipelines,  # a handful of small records: plain pickle is fine
            **{table: _columns(getattr(dataset, table), cls) for table, cls in _TABLES},
        }
        data = pickle.dumps(payload, protocol=5)
    _atomic_write(directory / _DATA_FILE, data)
    summary = {
        "format": FORMAT_VERSION,
        "seed": dataset.seed,
        "now": dataset.now.isoformat(),
        "meta": dataset.meta,
        "counts": {table: len(getattr(dataset, table)) for table, _ in _TABLES},
    }
    _atomic_write(directory / _SUMMARY_FILE, json.dumps(summary, indent=2).encode() + b"\n")


def _atomic_write(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_dataset(directory: Path) -> Dataset:
    """Load what ``write_dataset`` saved; ``ValueError`` when the file has another format version."""
    with paused_gc():
        return _read(directory)


def _read(directory: Path) -> Dataset:
    with (directory / _DATA_FILE).open("rb") as file:
        payload = pickle.load(file)  # noqa: S301 - only files this module wrote (see module docstring)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{directory / _DATA_FILE}: dataset format {found!r}, expected {FORMAT_VERSION}")
    tables = {table: _records(payload[table], cls) for table, cls in _TABLES if table in payload}
    return Dataset(
        seed=payload["seed"],
        now=payload["now"],
        pipelines=tuple(payload["pipelines"]),
        meta=payload["meta"],
        **tables,
    )


def cache_directory(seed: int, deals: int, now: datetime, cache_dir: Path, history: bool = False) -> Path:
    """Where ``cached_dataset`` keeps the dataset for (seed, deals, now[, history])."""
    stamp = now.astimezone(now.tzinfo).strftime("%Y%m%dT%H%M%S%z")
    return cache_dir / f"seed{seed}-deals{deals}-{stamp}{'-history' if history else ''}"


def cached_dataset(seed: int, deals: int, now: datetime, cache_dir: Path, history: bool = False) -> Dataset:
    """Load (seed, deals, now[, history]) from ``cache_dir`` or generate and save it there."""

    directory = cache_directory(seed, deals, now, cache_dir, history)
    try:
        dataset = read_dataset(directory)
    except (FileNotFoundError, ValueError, EOFError, pickle.UnpicklingError):
        dataset = None
    if dataset is not None and dataset.meta.get("generator_version") == GENERATOR_VERSION:
        return dataset
    dataset = generate_dataset(seed, deals, now, history=history)
    write_dataset(dataset, directory)
    return dataset
