"""Type plans: what the codecs need to know about a value type, worked out once.

``plan_for(tp)`` turns a type into a small immutable tree: a :class:`TypeNode`
(kind + item) for plain types and containers, a :class:`ClassPlan` for an
attrs class. Both emitters (Python now, Cython later) and the builtin codecs
read plans, never the annotations.

A field whose type is an attrs class holds a reference node
(``TypeNode(Kind.CLASS, cls)``), not the nested plan: nested classes are
planned on their own and bound late, by the registry, so a self-referential
class plans (and codes) without looping.

A union of several types is a ``Kind.UNION`` node when JSON tells its members
apart (each JSON kind -- string, integer, float, bool, null, array, object --
picks at most one member); two members of one JSON kind are a TypeError. A
type the generator cannot handle becomes ``Kind.OPAQUE`` -- a class that is
not attrs, a union holding one (or Any), ``dict[int, T]``, an attrs class
with a ``Factory(takes_self=True)`` default or a generic attrs class; the
registry serves those from a registered codec or cattrs.
"""

from __future__ import annotations

import enum
import types
import typing
import uuid
from collections.abc import Collection, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import attrs


class Kind(enum.StrEnum):
    """What a node is; decides how its values are written, read and copied."""

    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    NONE = "None"
    BYTES = "bytes"
    DATETIME = "datetime"
    UUID = "UUID"
    DECIMAL = "Decimal"
    DATE = "date"
    TIME = "time"
    TIMEDELTA = "timedelta"
    ENUM = "enum"
    LITERAL = "Literal"
    ANY = "Any"
    LIST = "list"
    TUPLE = "tuple"
    SET = "set"
    FROZENSET = "frozenset"
    DICT = "dict"
    OPTIONAL = "Optional"
    UNION = "Union"
    CLASS = "class"
    OPAQUE = "opaque"


_IMMUTABLE_KINDS = frozenset(
    {Kind.STR, Kind.INT, Kind.FLOAT, Kind.BOOL, Kind.NONE, Kind.BYTES}
    | {Kind.DATETIME, Kind.ENUM, Kind.LITERAL}
    | {Kind.UUID, Kind.DECIMAL, Kind.DATE, Kind.TIME, Kind.TIMEDELTA}
)
_WRAPPER_KINDS = frozenset({Kind.TUPLE, Kind.FROZENSET, Kind.OPTIONAL})
_SHALLOW_KINDS = frozenset({Kind.LIST, Kind.SET, Kind.DICT})


@attrs.frozen
class TypeNode:
    """A planned type: ``kind``, the annotation it came from, and its item.

    ``item`` is the element of a list, tuple, set or frozenset, the value of a
    dict, the inner type of an Optional; None otherwise. ``members`` are the
    nodes of a union, in declaration order; ``values`` the values of a
    Literal.
    """

    kind: Kind
    type: Any
    item: TypeNode | None = None
    members: tuple[TypeNode, ...] = ()
    values: tuple[str | int | bool | None, ...] = ()

    @property
    def immutable(self) -> bool:
        """Whether a value of this type can be shared by a copy (False if unsure)."""
        if self.kind in _IMMUTABLE_KINDS:
            return True
        return (
            self.kind in _WRAPPER_KINDS
            and self.item is not None
            and self.item.immutable
        )

    @property
    def copied_shallow(self) -> bool:
        """Whether a copy is the container rebuilt around the same items (immutable)."""
        item = self.item
        return self.kind in _SHALLOW_KINDS and item is not None and item.immutable


class Default(enum.Enum):
    """Where a missing field's value comes from."""

    REQUIRED = "required"
    VALUE = "value"
    FACTORY = "factory"


@attrs.frozen
class FieldPlan:
    """One attrs field: names, JSON key, type node and default."""

    name: str  # the attribute, e.g. "_secret"
    json_key: str  # metadata["json"] or the attribute name
    init_name: str | None  # the __init__ parameter (attrs alias); None if init=False
    kw_only: bool
    node: TypeNode
    default: Default
    default_value: Any = attrs.field(default=None, eq=False)  # the value or factory


@attrs.frozen
class ClassPlan:
    """An attrs class: its fields in declaration order.

    ``plain_init``: the class's ``__init__`` only stores its arguments (attrs
    made it; no validator, converter, pre/post-init hook, init=False field,
    cached hash or own ``__new__``), so a decoder may build an instance with
    ``object.__new__`` and set the fields itself.
    """

    cls: type
    fields: tuple[FieldPlan, ...]
    frozen: bool
    plain_init: bool = False

    kind: typing.ClassVar[Kind] = Kind.CLASS

    @property
    def immutable(self) -> bool:
        """Whether a value is its own copy: frozen, and every field immutable."""
        return self.frozen and all(field.node.immutable for field in self.fields)

    @property
    def label(self) -> str:
        """The name used in messages and generated function names."""
        return type_label(self.cls)


Plan = TypeNode | ClassPlan

_plans: dict[Any, Plan] = {}
_SIMPLE = {
    str: Kind.STR,
    int: Kind.INT,
    float: Kind.FLOAT,
    bool: Kind.BOOL,
    bytes: Kind.BYTES,
    datetime: Kind.DATETIME,
    uuid.UUID: Kind.UUID,
    Decimal: Kind.DECIMAL,
    date: Kind.DATE,
    time: Kind.TIME,
    timedelta: Kind.TIMEDELTA,
}
_BARE_CONTAINERS = {
    list: Kind.LIST,
    tuple: Kind.TUPLE,
    set: Kind.SET,
    frozenset: Kind.FROZENSET,
    dict: Kind.DICT,
}
_ANY = TypeNode(Kind.ANY, Any)
_FACTORY: type[Any] = type(
    attrs.Factory(object)
)  # attrs.Factory is typed as a function


def plan_for(tp: Any) -> Plan:
    """Return the plan of ``tp``: a ClassPlan for an attrs class, else a TypeNode.

    Cached per type. Raises TypeError when an attrs class's annotations cannot
    be resolved or two of its fields share a JSON key.
    """
    try:
        return _plans[tp]
    except KeyError:
        pass
    plan = _class_plan(tp) if _is_attrs_class(tp) else node_for(tp)
    _plans[tp] = plan
    return plan


def node_for(tp: Any) -> TypeNode:
    """Plan an annotation as a TypeNode; an attrs class gives a reference node.

    Raises TypeError for a union whose members JSON cannot tell apart and for
    a Literal of other values than str, int, bool and None.
    """
    tp = _unwrap(tp)
    if tp is None or tp is types.NoneType:
        return TypeNode(Kind.NONE, tp)
    if tp is Any:
        return _ANY
    if isinstance(tp, type):
        cls: type[Any] = tp
        if issubclass(cls, enum.Enum):
            return TypeNode(Kind.ENUM, cls)
        if attrs.has(cls):
            return TypeNode(Kind.CLASS, tp)
        if tp in _SIMPLE:
            return TypeNode(_SIMPLE[tp], tp)
        if tp in _BARE_CONTAINERS:
            return TypeNode(_BARE_CONTAINERS[tp], tp, _ANY)
        return TypeNode(Kind.OPAQUE, tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        others = [arg for arg in args if arg is not types.NoneType]
        if len(others) == 1 and len(args) == 2:
            return TypeNode(Kind.OPTIONAL, tp, node_for(others[0]))
        return _union_node(tp, args)
    elif origin is typing.Literal:
        return _literal_node(tp, args)
    elif origin in (list, set, frozenset) and len(args) == 1:
        return TypeNode(_BARE_CONTAINERS[origin], tp, node_for(args[0]))
    elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return TypeNode(Kind.TUPLE, tp, node_for(args[0]))
    elif origin is dict and len(args) == 2 and args[0] is str:
        return TypeNode(Kind.DICT, tp, node_for(args[1]))
    return TypeNode(Kind.OPAQUE, tp)


_LITERAL_TYPES = frozenset({str, int, bool, types.NoneType})


def _literal_node(tp: Any, args: tuple[Any, ...]) -> TypeNode:
    for value in args:
        if type(value) not in _LITERAL_TYPES:
            raise TypeError(
                f"{type_label(tp)}: a Literal value must be a str, int, bool or "
                f"None, not {value!r}"
            )
    return TypeNode(Kind.LITERAL, tp, values=args)


def _union_node(tp: Any, args: tuple[Any, ...]) -> TypeNode:
    members = tuple(node_for(arg) for arg in args)
    if any(member.kind in (Kind.OPAQUE, Kind.ANY) for member in members):
        return TypeNode(Kind.OPAQUE, tp)  # no telling its JSON kinds: cattrs
    node = TypeNode(Kind.UNION, tp, members=members)
    union_choices(node)  # raises TypeError if two members share a JSON kind
    return node


class JSONKind(enum.StrEnum):
    """What a parsed JSON value is; a union picks its member by this."""

    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOL = "bool"
    NULL = "null"
    ARRAY = "array"
    OBJECT = "object"


_STRING_KINDS = {Kind.STR, Kind.BYTES, Kind.DATETIME, Kind.UUID, Kind.DATE, Kind.TIME}
_ARRAY_KINDS = {Kind.LIST, Kind.TUPLE, Kind.SET, Kind.FROZENSET}
_VALUE_KINDS: dict[type[object], JSONKind] = {
    str: JSONKind.STRING,
    int: JSONKind.INTEGER,
    float: JSONKind.FLOAT,
    bool: JSONKind.BOOL,
    types.NoneType: JSONKind.NULL,
}


def json_kinds(node: TypeNode) -> tuple[set[JSONKind], set[JSONKind]]:
    """Return the JSON kinds a node reads: its own, and those it also accepts.

    The second set is what it takes when no other union member claims it: a
    float field reads an integer, a Decimal reads numbers.
    """
    kind = node.kind
    if kind in _STRING_KINDS:
        return {JSONKind.STRING}, set()
    if kind is Kind.DECIMAL:
        return {JSONKind.STRING}, {JSONKind.INTEGER, JSONKind.FLOAT}
    if kind in (Kind.INT, Kind.TIMEDELTA):
        return {JSONKind.INTEGER}, set()
    if kind is Kind.FLOAT:
        return {JSONKind.FLOAT}, {JSONKind.INTEGER}
    if kind is Kind.BOOL:
        return {JSONKind.BOOL}, set()
    if kind is Kind.NONE:
        return {JSONKind.NULL}, set()
    if kind in _ARRAY_KINDS:
        return {JSONKind.ARRAY}, set()
    if kind in (Kind.DICT, Kind.CLASS):
        return {JSONKind.OBJECT}, set()
    if kind is Kind.OPTIONAL:
        assert node.item is not None
        own, also = json_kinds(node.item)
        return own | {JSONKind.NULL}, also
    if kind is Kind.ENUM:
        values = tuple(member.value for member in node.type)
        return _value_kinds(node, values), set()
    if kind is Kind.LITERAL:
        return _value_kinds(node, node.values), set()
    if kind is Kind.UNION:
        return set(union_choices(node)), set()
    raise TypeError(f"{type_label(node.type)} cannot be told apart in a union")


def _value_kinds(node: TypeNode, values: tuple[object, ...]) -> set[JSONKind]:
    kinds = {_VALUE_KINDS.get(type(value)) for value in values}
    if None in kinds:
        raise TypeError(f"{type_label(node.type)} cannot be told apart in a union")
    return typing.cast(set[JSONKind], kinds)


def union_choices(node: TypeNode) -> dict[JSONKind, TypeNode]:
    """Map each JSON kind a union reads to the one member that reads it.

    A member's own kinds come first; a kind no member owns goes to the member
    that also accepts it (an integer to the float of ``float | str``). Two
    members for one kind: TypeError naming the union.
    """
    owners: dict[JSONKind, list[TypeNode]] = {}
    takers: dict[JSONKind, list[TypeNode]] = {}
    for member in node.members:
        own, also = json_kinds(member)
        for json_kind in own:
            owners.setdefault(json_kind, []).append(member)
        for json_kind in also:
            takers.setdefault(json_kind, []).append(member)
    choices: dict[JSONKind, TypeNode] = {}
    for json_kind in JSONKind:
        candidates = owners.get(json_kind) or takers.get(json_kind) or []
        if len(candidates) > 1:
            names = " and ".join(type_label(member.type) for member in candidates)
            raise TypeError(
                f"{node_label(node)}: JSON cannot tell {names} apart (both "
                f"are a JSON {json_kind}); use one of them, or register a codec"
            )
        if candidates:
            choices[json_kind] = candidates[0]
    return choices


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``NewType``, which do not change the JSON."""
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = tp.__origin__
        elif isinstance(tp, typing.NewType):
            tp = tp.__supertype__
        else:
            return tp


def _is_attrs_class(tp: Any) -> bool:
    return isinstance(tp, type) and attrs.has(tp)


def _class_plan(cls: type[Any]) -> Plan:
    try:
        attrs.resolve_types(cls)
    except (NameError, TypeError) as error:
        raise TypeError(
            f"cannot resolve the annotations of {cls!r}: {error}"
        ) from error
    fields: list[FieldPlan] = []
    for attribute in attrs.fields(cls):
        if isinstance(attribute.default, _FACTORY) and attribute.default.takes_self:
            return TypeNode(Kind.OPAQUE, cls)  # needs the half-built instance
        fields.append(_field_plan(cls, attribute))
    keys = [field.json_key for field in fields]
    if len(set(keys)) != len(keys):
        raise TypeError(f"{type_label(cls)}: two fields share a JSON key in {keys}")
    frozen = getattr(cls.__setattr__, "__name__", "") == "_frozen_setattrs"
    return ClassPlan(cls, tuple(fields), frozen, _plain_init(cls))


def _plain_init(cls: type[object]) -> bool:
    # Read from the class itself, not attrs' ClassProps (attrs >= 25.4 only), so
    # the build and the run time agree whatever their attrs versions.
    init = cls.__dict__.get("__init__")
    code = getattr(init, "__code__", None)
    if code is None or not code.co_filename.startswith("<attrs generated"):
        return False  # no __init__ of attrs' making
    if "_attrs_cached_hash" in code.co_consts + code.co_names:
        return False  # cache_hash=True: __init__ also resets the cached hash
    if issubclass(cls, BaseException) or cls.__new__ is not object.__new__:
        return False
    if hasattr(cls, "__attrs_pre_init__") or hasattr(cls, "__attrs_post_init__"):
        return False
    return all(
        field.init and field.validator is None and field.converter is None
        for field in attrs.fields(typing.cast(Any, cls))
    )


def _field_plan(cls: type[Any], attribute: attrs.Attribute[Any]) -> FieldPlan:
    key = attribute.metadata.get("json", attribute.name)
    if not isinstance(key, str):
        raise TypeError(f"{type_label(cls)}.{attribute.name}: JSON key must be a str")
    given: Any = attribute.default
    if given is attrs.NOTHING:
        default, value = Default.REQUIRED, None
    elif isinstance(given, _FACTORY):
        default, value = Default.FACTORY, given.factory
    else:
        default, value = Default.VALUE, given
    return FieldPlan(
        name=attribute.name,
        json_key=key,
        init_name=attribute.alias if attribute.init else None,
        kw_only=attribute.kw_only,
        node=_field_node(cls, attribute),
        default=default,
        default_value=value,
    )


def _field_node(cls: type[Any], attribute: attrs.Attribute[Any]) -> TypeNode:
    if attribute.type is None:
        return _ANY
    try:
        return node_for(attribute.type)
    except TypeError as error:
        raise TypeError(f"{type_label(cls)}.{attribute.name}: {error}") from None


def walk(plan: ClassPlan) -> Iterator[TypeNode]:
    """Yield every node of the fields' type trees, not entering nested classes."""
    for field in plan.fields:
        yield from chain(field.node)


def chain(node: TypeNode) -> Iterator[TypeNode]:
    """Yield ``node``, its item, the item's item, ... and every union member's."""
    pending = [node]
    while pending:
        item = pending.pop()
        yield item
        pending.extend(reversed(item.members))
        if item.item is not None:
            pending.append(item.item)


def left_to_registry(node: TypeNode, classes: Collection[type]) -> bool:
    """Tell whether compiled code for ``classes`` takes ``node`` from the registry.

    Compiled modules handle every kind themselves except opaque types, attrs
    classes they do not define and unions holding one of those (at any
    depth); those go through the registry's parts.
    """
    if node.kind is Kind.UNION:
        return any(
            left_to_registry(inner, classes)
            for member in node.members
            for inner in chain(member)
        )
    return node.kind is Kind.OPAQUE or (
        node.kind is Kind.CLASS and node.type not in classes
    )


def may_hold_any(plan: Plan, _seen: frozenset[Any] = frozenset()) -> bool:
    """Tell whether a value of this plan can contain Any values (opaque: maybe).

    Decoders trust Any values and check the whole document instead, when the
    type can hold them; this decides whether that check is needed.
    """
    if isinstance(plan, ClassPlan):
        seen = _seen | {plan.cls}
        return any(may_hold_any(field.node, seen) for field in plan.fields)
    if plan.kind is Kind.CLASS:
        return plan.type not in _seen and may_hold_any(plan_for(plan.type), _seen)
    if plan.kind in (Kind.ANY, Kind.OPAQUE):
        return True
    if any(may_hold_any(member, _seen) for member in plan.members):
        return True
    return plan.item is not None and may_hold_any(plan.item, _seen)


def recursive(plan: ClassPlan) -> bool:
    """Tell whether a value of the class can contain another of itself (a tree).

    Such values nest as deep as the data goes, so their codecs guard the depth.
    """
    pending = [plan]
    seen: set[type] = set()
    while pending:
        for node in walk(pending.pop()):
            if node.kind is not Kind.CLASS:
                continue
            if node.type is plan.cls:
                return True
            if node.type not in seen:
                seen.add(node.type)
                inner = plan_for(node.type)
                if isinstance(inner, ClassPlan):
                    pending.append(inner)
    return False


def type_label(tp: Any) -> str:
    """Name a type for messages: ``User``, ``list[int]``, ``Optional[str]``."""
    if isinstance(tp, type):
        return tp.__qualname__.rpartition("<locals>.")[2]
    return repr(tp).replace("typing.", "")


def node_label(node: TypeNode) -> str:
    """Name a node's type for messages; a union by its members: ``Cat | Dog``."""
    if node.kind is Kind.UNION:
        return " | ".join(node_label(member) for member in node.members)
    return type_label(node.type)
