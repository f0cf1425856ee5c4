"""persist.codegen: plans, fingerprints, emitted source, compilation."""

import ast
import enum
import linecache
import re
import traceback
import typing
from datetime import date, datetime
from typing import Annotated, Any, NewType, Optional

import attr
import attrs
import pytest
from compiled_models import Account  # one model of private names, aliases, init=False
from persist.codegen import emit_python
from persist.codegen.plan import ClassPlan, Default, FieldPlan, Kind, TypeNode

import persist
from persist import codegen


class Color(enum.Enum):
    RED = "red"


class Plain:
    """Not attrs."""


@attrs.define
class User:
    name: str
    email: str
    age: int


@attrs.define
class Tree:
    value: int
    children: "list[Tree]"


@attrs.frozen
class Point:
    x: float
    y: float


@attrs.define
class Outer:
    @attrs.frozen
    class Inner:
        n: int

    inner: Inner
    points: list[Point]


@attrs.define
class WithAny:
    extra: Any


@attrs.define
class Empty:
    pass


UserId = NewType("UserId", int)
INT, STR, ANY = (
    TypeNode(Kind.INT, int),
    TypeNode(Kind.STR, str),
    TypeNode(Kind.ANY, Any),
)


@pytest.mark.parametrize(
    ("tp", "node"),
    [
        (str, STR),
        (list[int], TypeNode(Kind.LIST, list[int], INT)),
        (typing.List[int], TypeNode(Kind.LIST, typing.List[int], INT)),  # noqa: UP006
        (Optional[str], TypeNode(Kind.OPTIONAL, Optional[str], STR)),  # noqa: UP045
        (
            list[str] | None,
            TypeNode(
                Kind.OPTIONAL, list[str] | None, TypeNode(Kind.LIST, list[str], STR)
            ),
        ),
        (str | None, TypeNode(Kind.OPTIONAL, str | None, STR)),
        (tuple[int, ...], TypeNode(Kind.TUPLE, tuple[int, ...], INT)),
        (frozenset[str], TypeNode(Kind.FROZENSET, frozenset[str], STR)),
        (dict[str, int], TypeNode(Kind.DICT, dict[str, int], INT)),
        (dict, TypeNode(Kind.DICT, dict, ANY)),
        (list, TypeNode(Kind.LIST, list, ANY)),
        (Any, ANY),
        (None, TypeNode(Kind.NONE, None)),
        (Annotated[int, "doc"], INT),
        (UserId, INT),
        (datetime, TypeNode(Kind.DATETIME, datetime)),
        (bytes, TypeNode(Kind.BYTES, bytes)),
        (Color, TypeNode(Kind.ENUM, Color)),
        (list[User], TypeNode(Kind.LIST, list[User], TypeNode(Kind.CLASS, User))),
        (int | str, TypeNode(Kind.UNION, int | str, members=(INT, STR))),
        (int | Plain, TypeNode(Kind.OPAQUE, int | Plain)),
        (dict[int, str], TypeNode(Kind.OPAQUE, dict[int, str])),
        (tuple[int, str], TypeNode(Kind.OPAQUE, tuple[int, str])),
        (Plain, TypeNode(Kind.OPAQUE, Plain)),
        (date, TypeNode(Kind.DATE, date)),
        (complex, TypeNode(Kind.OPAQUE, complex)),
    ],
)
def test_plan_nodes(tp: Any, node: TypeNode) -> None:
    """Each annotation plans to the expected node tree."""
    assert codegen.plan_for(tp) == node


def test_class_plan_fields() -> None:
    """A class plan records names, JSON keys, init names, kw_only and defaults."""
    plan = codegen.plan_for(Account)
    assert isinstance(plan, ClassPlan)
    assert (plan.cls, plan.frozen, plan.label) == (Account, False, "Account")
    summary = [
        (f.name, f.json_key, f.init_name, f.kw_only, f.node.kind, f.default)
        for f in plan.fields
    ]
    assert summary == [
        ("_secret", "_secret", "secret", False, Kind.STR, Default.REQUIRED),
        ("name", "Name", "name", False, Kind.STR, Default.REQUIRED),
        ("level", "level", "level", True, Kind.INT, Default.VALUE),
        ("tags", "tags", "tags", False, Kind.LIST, Default.FACTORY),
        ("cache", "cache", None, False, Kind.DICT, Default.FACTORY),
    ]
    assert plan.fields[2].default_value == 1
    assert plan.fields[3].default_value is list


def test_plan_is_cached_and_frozen() -> None:
    """plan_for answers the same immutable object every time."""
    plan = codegen.plan_for(User)
    assert codegen.plan_for(User) is plan
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        plan.fields = ()  # type: ignore[misc]
    assert isinstance(plan.fields[0], FieldPlan)


def test_takes_self_factory_is_opaque() -> None:
    """A default needing the half-built instance is left to cattrs."""

    @attrs.define
    class Box:
        size: int
        label: str = attrs.Factory(lambda self: str(self.size), takes_self=True)

    assert codegen.plan_for(Box) == TypeNode(Kind.OPAQUE, Box)
    assert persist.codec_for(Box).source == "cattrs"


def test_plan_refuses_shared_json_keys() -> None:
    """Two fields with one JSON key cannot be written: TypeError."""

    @attrs.define
    class Clash:
        a: int = attrs.field(metadata={"json": "x"})
        b: int = attrs.field(metadata={"json": "x"})

    with pytest.raises(TypeError, match="two fields share a JSON key"):
        codegen.plan_for(Clash)


def test_plan_refuses_unresolvable_annotations() -> None:
    """A string annotation naming nothing is a TypeError, not a NameError."""

    @attrs.define
    class Dangling:
        a: "Missing"  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(TypeError, match="cannot resolve the annotations"):
        codegen.plan_for(Dangling)


def test_recursive_class() -> None:
    """A self-referential class plans, codes, round-trips and copies deeply."""
    codec = persist.codec_for(Tree)
    tree = Tree(1, [Tree(2, []), Tree(3, [Tree(4, [])])])
    data = codec.encode(tree)
    assert data == (
        b'{"value":1,"children":[{"value":2,"children":[]},'
        b'{"value":3,"children":[{"value":4,"children":[]}]}]}'
    )
    assert codec.decode(data) == tree
    copied = codec.copy(tree)
    copied.children[1].children.clear()
    assert tree.children[1].children == [Tree(4, [])]
    with pytest.raises(
        persist.DecodeError, match=r"^Tree\.children\[0\]\.children\[0\]\.value: "
    ):
        codec.decode(
            b'{"value":1,"children":[{"value":2,"children":[{"value":"x","children":[]}]}]}'
        )


# --- fingerprints -------------------------------------------------------------------


def _make(fields: dict[str, Any]) -> type:
    return attrs.make_class("Schema", fields)


BASE = {"a": attrs.field(type=int), "b": attrs.field(type=list[str], factory=list)}


@pytest.mark.parametrize(
    "variant",
    [
        {"a2": attrs.field(type=int), "b": attrs.field(type=list[str], factory=list)},
        {
            "a": attrs.field(type=int, metadata={"json": "A"}),
            "b": attrs.field(type=list[str], factory=list),
        },
        {"a": attrs.field(type=float), "b": attrs.field(type=list[str], factory=list)},
        {"a": attrs.field(type=int), "b": attrs.field(type=list[int], factory=list)},
        {
            "a": attrs.field(type=int, default=0),
            "b": attrs.field(type=list[str], factory=list),
        },
        {"a": attrs.field(type=int), "b": attrs.field(type=list[str], default=())},
        {
            "a": attrs.field(type=int),
            "b": attrs.field(type=list[str], factory=list, kw_only=True),
        },
        {
            "b": attrs.field(type=list[str], factory=list),
            "a": attrs.field(type=int, kw_only=True),
        },
        {
            "a": attrs.field(type=int),
            "b": attrs.field(type=list[str], factory=list),
            "c": attrs.field(type=str, default=""),
        },
    ],
)
def test_fingerprint_changes_with_fields(variant: dict[str, Any]) -> None:
    """Renaming, re-keying, re-typing, re-defaulting or adding a field: new stamp."""
    assert codegen.fingerprint(_make(variant)) != codegen.fingerprint(_make(BASE))


def test_fingerprint_is_stable() -> None:
    """The same fields give the same 16-hex-digit fingerprint, whatever the name."""
    first, second = (
        codegen.fingerprint(_make(BASE)),
        codegen.fingerprint(attrs.make_class("Other", BASE)),
    )
    assert first == second
    assert re.fullmatch(r"[0-9a-f]{16}", first)


# One change per plan attribute: (owner class, attribute) -> the changed owner.
# The base is field "b" (list[str], default factory list) of _make(BASE).
_FLIPS: dict[tuple[type, str], typing.Callable[[Any], Any]] = {
    (ClassPlan, "fields"): lambda plan: attrs.evolve(plan, fields=plan.fields[:1]),
    (ClassPlan, "frozen"): lambda plan: attrs.evolve(plan, frozen=not plan.frozen),
    (ClassPlan, "plain_init"): lambda plan: attrs.evolve(
        plan, plain_init=not plan.plain_init
    ),
    (FieldPlan, "name"): lambda field: attrs.evolve(field, name="c"),
    (FieldPlan, "json_key"): lambda field: attrs.evolve(field, json_key="B"),
    (FieldPlan, "init_name"): lambda field: attrs.evolve(field, init_name=None),
    (FieldPlan, "kw_only"): lambda field: attrs.evolve(field, kw_only=True),
    (FieldPlan, "node"): lambda field: attrs.evolve(
        field, node=TypeNode(Kind.INT, int)
    ),
    (FieldPlan, "default"): lambda field: attrs.evolve(field, default=Default.VALUE),
    (FieldPlan, "default_value"): lambda field: attrs.evolve(
        field,
        default_value=field.default_value(),  # [] instead of list: by type
    ),
    (TypeNode, "kind"): lambda node: attrs.evolve(node, kind=Kind.SET),
    (TypeNode, "type"): lambda node: attrs.evolve(node, type=list[bytes]),
    (TypeNode, "item"): lambda node: attrs.evolve(node, item=TypeNode(Kind.INT, int)),
    (TypeNode, "members"): lambda node: attrs.evolve(
        node, members=(TypeNode(Kind.INT, int),)
    ),
    (TypeNode, "values"): lambda node: attrs.evolve(node, values=("a",)),
}
_UNSPELLED = {(ClassPlan, "cls")}  # classes of the same fields share a stamp (above)


def _flipped(plan: ClassPlan, owner: type, change: typing.Callable[[Any], Any]) -> Any:
    """``plan`` with ``change`` applied to it, to its field "b" or to b's node."""
    if owner is ClassPlan:
        return change(plan)
    field = plan.fields[1]
    field = (
        change(field)
        if owner is FieldPlan
        else attrs.evolve(field, node=change(field.node))
    )
    return attrs.evolve(plan, fields=(plan.fields[0], field))


def test_fingerprint_covers_every_plan_attribute() -> None:
    """Each attribute of ClassPlan, FieldPlan and TypeNode is flipped below."""
    attributes = {
        (owner, attribute.name)
        for owner in (ClassPlan, FieldPlan, TypeNode)
        for attribute in attrs.fields(owner)
    }
    assert attributes == set(_FLIPS) | _UNSPELLED


@pytest.mark.parametrize("where", list(_FLIPS), ids=lambda where: where[1])
def test_fingerprint_changes_with_each_plan_attribute(where: tuple[type, str]) -> None:
    """A plan differing in exactly one attribute has another fingerprint."""
    from persist.codegen.fingerprint import plan_fingerprint

    plan = codegen.plan_for(_make(BASE))
    assert isinstance(plan, ClassPlan)
    flipped = _flipped(plan, where[0], _FLIPS[where])
    assert flipped != plan or where == (FieldPlan, "default_value")  # eq=False there
    assert plan_fingerprint(flipped) != plan_fingerprint(plan)


def test_fingerprint_refuses_non_attrs() -> None:
    """Only plannable attrs classes have a fingerprint."""
    with pytest.raises(TypeError, match="not an attrs class"):
        codegen.fingerprint(Plain)


# --- emitted source ----------------------------------------------------------


def test_source_header_and_names() -> None:
    """The script names class, fingerprint and generator; it defines five functions."""
    made = codegen.make_python_codec(Outer.Inner)
    lines = made.source.splitlines()
    assert lines[:3] == [
        f"# persist codec for {__name__}.Outer.Inner",
        f"# fingerprint {made.fingerprint}, "
        f"generator version {codegen.GENERATOR_VERSION}",
        "# generated by persist.codegen — do not edit",
    ]
    names = [
        node.name
        for node in ast.parse(made.source).body
        if isinstance(node, ast.FunctionDef)
    ]
    assert names == [
        f"{role}_Outer_Inner" for role in ("write", "read", "copy", "encode", "decode")
    ]


def test_source_helpers_are_prefixed_default_arguments() -> None:
    """Helpers are default arguments named _p_*; field blocks follow field order."""
    source = codegen.make_python_codec(Account).source
    for function in ast.parse(source).body:
        assert isinstance(function, ast.FunctionDef)
        names = [arg.arg for arg in function.args.args[1:]]
        assert names and all(name.startswith("_p_") for name in names)
    comments = re.findall(r"^    # (\w+)", source, re.MULTILINE)
    assert comments[:5] == ["_secret", "name", "level", "tags", "cache"]
    assert "_p_enc_tags=_p_enc_tags" in source
    assert "_p_default_level=_p_default_level" in source


def test_source_is_deterministic() -> None:
    """Emitting the same plan twice gives the same text."""
    plan = codegen.plan_for(User)
    assert isinstance(plan, ClassPlan)
    assert emit_python.emit(plan, "f" * 16) == emit_python.emit(plan, "f" * 16)


def test_any_check_only_where_any_can_be() -> None:
    """Only a class that can hold Any values checks the document for NaN."""
    assert "_p_check_any(obj)" in codegen.make_python_codec(WithAny).source
    assert "_p_check_any" not in codegen.make_python_codec(User).source
    with pytest.raises(
        persist.DecodeError, match=r"^WithAny\.extra\.k\[0\]: NaN is not valid JSON$"
    ):
        persist.codec_for(WithAny).decode(b'{"extra":{"k":[NaN]}}')


def test_nested_class_reuses_its_codec() -> None:
    """A nested class field is served by that class's own codec functions."""
    made = codegen.make_python_codec(Outer)
    assert made.write.__defaults__ is not None
    assert persist.codec_for(Outer.Inner).write in made.write.__defaults__
    outer = persist.codec_for(Outer)
    value = Outer(Outer.Inner(1), [Point(0.5, 2.0)])
    assert outer.encode(value) == b'{"inner":{"n":1},"points":[{"x":0.5,"y":2.0}]}'
    assert outer.decode(outer.encode(value)) == value


# --- compiling and linecache -------------------------------------------------


def test_function_metadata() -> None:
    """Generated functions carry module, qualname, docstring, fingerprint and source."""
    made = codegen.make_python_codec(User)
    for role in ("write", "read", "copy", "encode", "decode"):
        function = getattr(made, role)
        assert function.__module__ == __name__
        assert function.__qualname__ == f"{role}_User"
        assert function.__doc__.endswith("Generated by persist.codegen.")
        assert function.fingerprint == codegen.fingerprint(User)
        assert function.source == made.source


def test_linecache_registration_and_suffixes() -> None:
    """Each script is in linecache under a unique name; repeats get -2, -3."""

    @attrs.frozen
    class Fresh:
        n: int

    files = [
        codegen.make_python_codec(Fresh).encode.__code__.co_filename for _ in range(3)
    ]
    stamp = codegen.fingerprint(Fresh)[:8]
    base = f"<persist generated codec {__name__}.{Fresh.__qualname__} fp={stamp}"
    assert files == [base + ">", base + "-2>", base + "-3>"]
    for filename in files:
        assert (
            linecache.getline(filename, 3)
            == "# generated by persist.codegen — do not edit\n"
        )
        assert linecache.checkcache(filename) is None and filename in linecache.cache


def test_linecache_off() -> None:
    """With use_linecache=False the source is compiled but not registered."""
    made = codegen.make_python_codec(Point, use_linecache=False)
    filename = made.encode.__code__.co_filename
    assert filename == f"<persist generated codec {__name__}.Point>"
    assert filename not in linecache.cache
    assert made.encode(Point(1.0, 2.0)) == b'{"x":1.0,"y":2.0}'


@pytest.mark.parametrize("use_linecache", [True, False])
def test_traceback_shows_generated_line(use_linecache: bool) -> None:
    """An error inside generated code shows the generated line only when registered."""
    made = codegen.make_python_codec(User, use_linecache=use_linecache)
    user = User("a", "b", 3)
    object.__delattr__(user, "age")
    with pytest.raises(AttributeError) as info:
        made.encode(user)
    text = "".join(traceback.format_exception(info.value))
    assert "in write_User" in text
    assert ("    x = value.age" in text) is use_linecache


# --- generated codecs for every kind of attrs class --------------------------


@attrs.frozen
class FrozenSlots:
    a: int
    b: list[str]


@attrs.frozen(slots=False)
class FrozenDict:
    a: int
    b: list[str]


@attrs.define
class MutableSlots:
    a: int
    b: list[str]


@attrs.define(slots=False)
class MutableDict:
    a: int
    b: list[str]


@attr.s(auto_attribs=True)
class Classic:
    a: int
    b: list[str]


@pytest.mark.parametrize(
    "cls", [FrozenSlots, FrozenDict, MutableSlots, MutableDict, Classic]
)
def test_class_variants(cls: type) -> None:
    """Slots or dict, frozen or not, attr.s or attrs.define: same bytes, round trip."""
    codec = persist.codec_for(cls)
    value = cls(1, ["x"])
    assert codec.source == "runtime"
    assert codec.encode(value) == b'{"a":1,"b":["x"]}'
    decoded = codec.decode(b'{"b":["x"],"a":1}')
    assert (type(decoded), decoded) == (cls, value)
    copied = codec.copy(value)
    assert (type(copied), copied) == (cls, value)
    assert copied.b is not value.b


def test_private_alias_kw_only_init_false_and_defaults() -> None:
    """Private names, kw_only, init=False fields and factories are honoured."""
    codec = persist.codec_for(Account)
    account = Account("s", "n", level=2)
    account.cache["hits"] = 1
    data = codec.encode(account)
    assert data == b'{"_secret":"s","Name":"n","level":2,"tags":[],"cache":{"hits":1}}'
    assert codec.decode(data) == account
    assert codec.decode(data).cache == {"hits": 1}
    first, second = (codec.decode(b'{"_secret":"s","Name":"n"}') for _ in range(2))
    assert first == Account("s", "n")
    assert first.tags is not second.tags
    assert (first.level, first.cache) == (1, {})
    with pytest.raises(persist.DecodeError, match=r"^Account\.Name: missing field$"):
        codec.decode(b'{"_secret":"s","name":"n"}')


def test_empty_class() -> None:
    """A class without fields is the empty object."""
    codec = persist.codec_for(Empty)
    assert codec.encode(Empty()) == b"{}"
    assert codec.decode(b'{"x":1}') == Empty()


def test_decode_runs_validators_and_converters() -> None:
    """Decoding calls __init__: converters apply; a refused value is a DecodeError."""

    @attrs.define
    class Checked:
        age: int = attrs.field(validator=attrs.validators.ge(0))
        name: str = attrs.field(converter=str.strip, default="")

    codec = persist.codec_for(Checked)
    assert codec.decode(b'{"age":1,"name":"  x "}') == Checked(1, "x")
    with pytest.raises(
        persist.DecodeError,
        match=r"^Checked: cannot build Checked: 'age' must be >= 0: -1$",
    ):
        codec.decode(b'{"age":-1}')


def test_copy_bypasses_init() -> None:
    """copy() copies fields as they are: no converter or validator runs again."""

    @attrs.define
    class Counter:
        n: int = attrs.field(converter=lambda value: value + 1)

    counter = Counter(1)
    copied = persist.codec_for(Counter).copy(counter)
    assert (counter.n, copied.n) == (2, 2)


@pytest.mark.parametrize(("cls", "shared"), [(Point, True), (FrozenSlots, False)])
def test_frozen_copy_shares_only_when_immutable(cls: type, shared: bool) -> None:
    """A frozen class of immutable fields is its own copy; one with a list is copied."""
    value = cls(1, 2.0) if cls is Point else cls(1, ["x"])
    assert (persist.codec_for(cls).copy(value) is value) is shared
