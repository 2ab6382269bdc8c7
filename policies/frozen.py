"""``direct_init``: a faster ``__init__`` for frozen, slotted dataclasses that are built in bulk.

A frozen dataclass's generated ``__init__`` stores every field through ``object.__setattr__`` (to get past
the ``__setattr__`` that makes it frozen): a type lookup and a checked call per field. The engine builds
about a dozen frozen objects per deal (actions, explanations, evidence, verdicts; some forty fields), and
that detour made up about a tenth of its time. ``direct_init`` replaces the generated ``__init__`` by one
that calls each slot's own descriptor, which stores the value without the detour: same signature, same
defaults, still frozen afterwards (``__setattr__`` is untouched), about half the cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields, is_dataclass
from inspect import signature
from typing import Any, TypeVar

T = TypeVar("T")


def direct_init(cls: type[T]) -> type[T]:
    """Class decorator, applied on top of ``@dataclass(frozen=True, slots=True)``."""
    options = getattr(cls, "__dataclass_params__", None)
    if not is_dataclass(cls) or options is None or not options.frozen or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__}: direct_init needs a frozen dataclass with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: direct_init does not run __post_init__")
    namespace: dict[str, Any] = {}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for field in fields(cls):
        if not field.init or field.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{field.name}: direct_init supports plain fields only")
        param = field.name
        if field.default is not MISSING:
            namespace[f"_default_{field.name}"] = field.default
            param += f"=_default_{field.name}"
        (keyword if field.kw_only else positional).append(param)
        namespace[f"_set_{field.name}"] = getattr(cls, field.name).__set__  # the slot's own setter
        body.append(f"    _set_{field.name}(self, {field.name})\n")
    arguments = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    exec(f"def __init__({arguments}):\n{''.join(body) or '    pass'}\n", namespace)  # noqa: S102
    init = namespace["__init__"]
    if _parameters(init) != _parameters(cls.__init__):  # the same call accepts the same arguments
        raise TypeError(f"{cls.__name__}: direct_init would change the signature of __init__")
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def _parameters(function: Callable[..., object]) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in signature(function).parameters.values()]
