"""The fingerprint of an attrs class: changes whenever generated code would.

A compiled codec stores the fingerprint of the class it was generated from;
the registry uses it only while the live class still has the same one.
"""

from __future__ import annotations

import hashlib

from .plan import ClassPlan, Kind, TypeNode, plan_for

GENERATOR_VERSION = 3
"""Bumped when generated code changes shape, which makes every fingerprint stale."""


def fingerprint(cls: type) -> str:
    """Return 16 hex chars of sha256 over the generator version and the fields.

    Per field, in order: name, JSON key, type (by qualified name, recursively
    through containers), default marker, and how ``__init__`` takes it; then
    whether decoders may bypass ``__init__`` (a validator added since
    generation makes compiled code stale). Raises TypeError for a class that
    is not a plannable attrs class.
    """
    plan = plan_for(cls)
    if not isinstance(plan, ClassPlan):
        raise TypeError(f"{cls!r} is not an attrs class the generator can plan")
    digest = hashlib.sha256(f"persist.codegen {GENERATOR_VERSION}\n".encode())
    for field in plan.fields:
        if field.init_name is None:
            init = "no-init"
        else:
            init = f"{'keyword' if field.kw_only else 'positional'} {field.init_name}"
        line = "\0".join(
            (
                field.name,
                field.json_key,
                type_key(field.node),
                field.default.value,
                init,
            )
        )
        digest.update(line.encode("utf-8", "surrogatepass") + b"\n")
    digest.update(b"plain init\n" if plan.plain_init else b"calls init\n")
    return digest.hexdigest()[:16]


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
