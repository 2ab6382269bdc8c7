"""Associations v4: directed edges with type ids, both directions kept in step, built lazily per pair.

HubSpot stores one association per record pair with one or more types (the unlabeled default plus any
labels), and every type has an inverse for the other direction. The seeded edges of a pair (say the million
task -> deal links) are built only when that pair is first read or written, from a builder the loader
registers, so a large sandbox starts in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from crm_sandbox.hubspot.catalog import FIRST_CUSTOM_TYPE_ID, AssociationType

__all__ = ["AssociationStore", "EdgeBuilder"]

Edges = dict[int, dict[int, tuple[int, ...]]]
# yields (from_id, to_id, type ids from -> to) for the pair it was registered for
EdgeBuilder = Callable[[], Iterable[tuple[int, int, tuple[int, ...]]]]


class AssociationStore:
    """Edges per directed pair of object types, plus the association type definitions (labels)."""

    def __init__(self, types: Iterable[AssociationType]) -> None:
        self.types: dict[int, AssociationType] = {}
        for t in types:
            self.types[t.type_id] = t
        self._edges: dict[tuple[str, str], Edges] = {}
        self._builders: dict[tuple[str, str], EdgeBuilder] = {}
        self._next_type_id = max([FIRST_CUSTOM_TYPE_ID, *self.types]) + 1
        self._interned: dict[tuple[int, ...], tuple[int, ...]] = {}

    # -- definitions -----------------------------------------------------------------------------------
    def types_between(self, from_type: str, to_type: str) -> list[AssociationType]:
        return sorted(
            (t for t in self.types.values() if t.from_type == from_type and t.to_type == to_type),
            key=lambda t: t.type_id,
        )

    def default_type(self, from_type: str, to_type: str) -> AssociationType | None:
        """The unlabeled HUBSPOT_DEFINED type of a pair (what ``associate/default`` uses)."""
        for t in self.types_between(from_type, to_type):
            if t.category == "HUBSPOT_DEFINED" and t.label is None:
                return t
        return None

    def create_label(
        self, from_type: str, to_type: str, label: str, name: str, inverse_label: str | None
    ) -> list[AssociationType]:
        """A new USER_DEFINED label: one type per direction, as HubSpot assigns them."""
        forward_id, inverse_id = self._next_type_id, self._next_type_id + 1
        self._next_type_id += 2
        forward = AssociationType(from_type, to_type, forward_id, "USER_DEFINED", label, inverse_id, name)
        inverse = AssociationType(
            to_type, from_type, inverse_id, "USER_DEFINED", inverse_label or label, forward_id, name
        )
        self.types[forward_id] = forward
        self.types[inverse_id] = inverse
        return [forward, inverse] if inverse_label else [forward]

    def remove_label(self, type_id: int) -> None:
        t = self.types.pop(type_id)
        self.types.pop(t.inverse_id, None)
        for pair in ((t.from_type, t.to_type), (t.to_type, t.from_type)):
            edges = self._edges.get(pair)
            if edges is None:
                continue
            for targets in edges.values():
                for to_id, type_ids in list(targets.items()):
                    kept = tuple(i for i in type_ids if i not in (type_id, t.inverse_id))
                    if kept != type_ids:
                        targets[to_id] = self._intern(kept) if kept else ()
                        if not kept:
                            del targets[to_id]

    # -- edges -----------------------------------------------------------------------------------------
    def register(self, from_type: str, to_type: str, builder: EdgeBuilder) -> None:
        """Seed a pair lazily: ``builder`` runs the first time either direction is touched."""
        self._builders[(from_type, to_type)] = builder

    def _intern(self, type_ids: tuple[int, ...]) -> tuple[int, ...]:
        return self._interned.setdefault(type_ids, type_ids)

    def _pair(self, from_type: str, to_type: str) -> Edges:
        edges = self._edges.get((from_type, to_type))
        if edges is not None:
            return edges
        forward: Edges = {}
        backward: Edges = {}
        self._edges[(from_type, to_type)] = forward
        self._edges[(to_type, from_type)] = backward
        for key, reverse in (((from_type, to_type), False), ((to_type, from_type), True)):
            builder = self._builders.pop(key, None)
            if builder is None:
                continue
            for a, b, type_ids in builder():
                if reverse:
                    self._link(backward, forward, a, b, type_ids)
                else:
                    self._link(forward, backward, a, b, type_ids)
        return forward

    def _link(self, forward: Edges, backward: Edges, a: int, b: int, type_ids: tuple[int, ...]) -> None:
        current = forward.setdefault(a, {}).get(b, ())
        merged = self._intern(tuple(sorted(set(current) | set(type_ids))))
        forward[a][b] = merged
        inverse = self._intern(tuple(sorted({self.types[i].inverse_id for i in merged if i in self.types})))
        backward.setdefault(b, {})[a] = inverse

    def targets(self, from_type: str, to_type: str, from_id: int) -> dict[int, tuple[int, ...]]:
        """``to_id -> type ids`` for one record (empty when none)."""
        return self._pair(from_type, to_type).get(from_id, {})

    def add(
        self, from_type: str, to_type: str, from_id: int, to_id: int, type_ids: Iterable[int]
    ) -> tuple[int, ...]:
        """Associate (merging with existing types); returns the pair's type ids from -> to."""
        forward = self._pair(from_type, to_type)
        backward = self._edges[(to_type, from_type)]
        self._link(forward, backward, from_id, to_id, tuple(type_ids))
        return forward[from_id][to_id]

    def remove(
        self, from_type: str, to_type: str, from_id: int, to_id: int, type_ids: Iterable[int] | None = None
    ) -> bool:
        """Remove the given types (all when None); returns whether anything was associated."""
        forward = self._pair(from_type, to_type)
        backward = self._edges[(to_type, from_type)]
        current = forward.get(from_id, {}).get(to_id)
        if current is None:
            return False
        drop = set(current) if type_ids is None else set(type_ids)
        kept = tuple(i for i in current if i not in drop)
        if kept:
            forward[from_id][to_id] = self._intern(kept)
            backward[to_id][from_id] = self._intern(tuple(sorted(self.types[i].inverse_id for i in kept)))
        else:
            del forward[from_id][to_id]
            backward.get(to_id, {}).pop(from_id, None)
        return True

    def iter_pairs(self) -> Iterator[tuple[str, str]]:
        yield from self._edges

    # -- snapshots -------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "types": dict(self.types),
            "edges": {pair: {a: dict(t) for a, t in edges.items()} for pair, edges in self._edges.items()},
            "builders": dict(self._builders),
            "next_type_id": self._next_type_id,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.types = dict(state["types"])
        self._edges = {pair: {a: dict(t) for a, t in edges.items()} for pair, edges in state["edges"].items()}
        self._builders = dict(state["builders"])
        self._next_type_id = state["next_type_id"]
