"""The fingerprint of an attrs class: changes whenever generated code would.

A compiled codec stores the fingerprint of the class it was generated from;
the registry uses it only while the live class still has the same one.
"""

from __future__ import annotations

import enum
import hashlib
import re
from typing import cast

import attrs

from .plan import ClassPlan, Kind, TypeNode, plan_for

GENERATOR_VERSION = 6
"""Bumped when generated code changes shape, which makes every fingerprint stale."""

_UNSPELLED = frozenset({"cls"})
"""Plan attributes left out: the class itself (its codec is registered for it,
and classes with the same fields share a fingerprint)."""
_BY_TYPE = frozenset({"default_value"})
"""Plan attributes spelled by their type only: a default value or factory,
which compiled modules look up when they import (and whose repr may hold an
address)."""


def fingerprint(cls: type) -> str:
    """Return 16 hex chars of sha256 over the generator version and the class's plan.

    Raises TypeError for a class that is not a plannable attrs class.
    """
    plan = plan_for(cls)
    if not isinstance(plan, ClassPlan):
        raise TypeError(f"{cls!r} is not an attrs class the generator can plan")
    return plan_fingerprint(plan)


def plan_fingerprint(plan: ClassPlan) -> str:
    """Return the fingerprint of a class plan (see :func:`spell`)."""
    digest = hashlib.sha256(f"persist.codegen {GENERATOR_VERSION}\n".encode())
    digest.update(spell(plan).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


def spell(value: object) -> str:
    """Spell a plan stably: every attrs attribute by name, recursively.

    Walks ``attrs.fields`` of ClassPlan, FieldPlan and TypeNode, so an
    attribute added to them later is part of the fingerprint too; only those
    in ``_UNSPELLED`` are left out and those in ``_BY_TYPE`` spelled by type.
    Types are spelled by qualified name, other values by repr with any
    ``at 0x...`` address removed.
    """
    kind = type(value)
    if attrs.has(kind):
        parts: list[str] = []
        for attribute in attrs.fields(kind):
            if attribute.name in _UNSPELLED:
                continue
            item: object = getattr(value, attribute.name)
            spelled = (
                _type_name(type(item)) if attribute.name in _BY_TYPE else spell(item)
            )
            parts.append(f"{attribute.name}={spelled}")
        return f"{kind.__name__}({', '.join(parts)})"
    if isinstance(value, tuple):
        return f"({', '.join(map(spell, cast('tuple[object, ...]', value)))})"
    if isinstance(value, enum.Enum):  # Kind, Default: by name (the build imports
        return f"{type(value).__qualname__}.{value.name}"  # codegen under another name)
    if isinstance(value, type):
        return _type_name(value)
    return re.sub(r" at 0x[0-9A-Fa-f]+", "", repr(value))


def _type_name(tp: type) -> str:
    return f"{tp.__module__}.{tp.__qualname__}"


def type_key(node: TypeNode) -> str:
    """Spell a type node for the fingerprint, e.g. ``list[tests.models.Address]``."""
    if node.kind in (Kind.CLASS, Kind.ENUM):
        return f"{node.type.__module__}.{node.type.__qualname__}"
    if node.kind is Kind.OPAQUE:
        tp = node.type
        return (
            f"{tp.__module__}.{tp.__qualname__}" if isinstance(tp, type) else repr(tp)
        )
    if node.item is not None:
        return f"{node.kind.value}[{type_key(node.item)}]"
    return node.kind.value
