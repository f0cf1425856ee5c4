"""Run-time plan codecs (persist._plancodec): the build-time compiled codecs' twins.

For the schema classes and the classes of tests/compiled_models.py, a plan
codec (made here for the class and every class it nests) writes the bytes the
build-time compiled codec writes, decodes what it decodes to equal values and
refuses what it refuses with the same error -- hostile input included. The
builtin codecs of plain types, compiled nodes over the Python codecs, agree
with those Python codecs the same way.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from types import ModuleType
from typing import Any, Optional

import attrs
import pytest
import ujson
from hypothesis import given
from hypothesis import strategies as st
from persist.codegen.plan import ClassPlan, plan_for
from persist.schemas import examples
from test_compiled import (  # noqa: F401 (package is a fixture)
    PACKAGE,
    SCHEMA_CLASSES,
    SETTINGS,
    WRONG,
    StrSub,
    model_classes,
    outcome,
    package,
    same,
    values,
)
from test_compiled import models as models_compiled_here  # noqa: F401 (a fixture)

import persist
from persist import _plancodec, codecs

_plan_codecs: dict[type, Any] = {}


def compiled_classes(models: ModuleType) -> list[type]:
    """The model classes a compiled codec serves (test_compiled registers some)."""
    classes = [
        cls
        for cls in model_classes(models)
        if persist.codec_for(cls).source == "compiled"
    ]
    assert {cls.__name__ for cls in classes} >= {"Everything", "Tree", "Keys"}
    return classes


@pytest.fixture(scope="module")
def models(request: pytest.FixtureRequest) -> ModuleType:
    """test_compiled's compiled models module: the one it made, else made here."""
    module = sys.modules.get(f"{PACKAGE}.models")
    if module is None:
        module = request.getfixturevalue("models_compiled_here")
    return module


def plan_codec(cls: type) -> Any:
    """The plan codec of ``cls``, its nested classes served by plan codecs too."""
    codec = _plan_codecs.get(cls)
    if codec is None:
        plan = plan_for(cls)
        if not isinstance(plan, ClassPlan):
            return None
        codec = _plan_codecs[cls] = _plancodec.PlanCodec(plan)
        codec.bind(plan_codec, codecs._registered)
    return codec


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=5,
)
_deep = st.integers(1, 700).map(lambda depth: [[]] if depth < 2 else _nest(depth))


def _nest(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def hostile_values(draw: st.DrawFn, cls: type, module: ModuleType | None) -> Any:
    """A value of ``cls``, maybe with one field of a wrong or unwritable value."""
    plan = plan_for(cls)
    value = draw(values(plan, module))
    if plan.fields and draw(st.booleans()):
        field = draw(st.sampled_from(plan.fields))
        wrong = st.sampled_from(WRONG) | _json_values | st.datetimes()
        object.__setattr__(value, field.name, draw(wrong))
    return value


@st.composite
def hostile_documents(
    draw: st.DrawFn, encode: Callable[[Any], bytes], sample: st.SearchStrategy[Any]
) -> bytes:
    """A document ``encode`` wrote, changed: members dropped, nulled, retyped,
    added, nested deep, NaN, cut short, invalid UTF-8 -- or any bytes at all."""
    try:
        data = encode(draw(sample))
    except Exception:
        data = b"{}"
    change = draw(st.sampled_from(["none", "member", "bytes", "anything"]))
    if change == "anything":
        return draw(st.binary(max_size=40))
    if change == "bytes":
        at = draw(st.integers(0, len(data)))
        insert = draw(st.sampled_from([b"", b"\xff", b"\xc3", b" ", b"\\", b"NaN"]))
        return data[:at] + insert + data[at + draw(st.integers(0, 2)) :]
    document = ujson.loads(data)
    if change == "member" and type(document) is dict:
        key = draw(st.sampled_from([*document, "unknown"]))
        how = draw(st.sampled_from(["drop", "null", "value", "nan", "deep"]))
        if how == "drop":
            document.pop(key, None)
        else:
            document[key] = {
                "null": None,
                "value": draw(_json_values),
                "nan": float("nan"),
                "deep": draw(_deep),
            }[how]
    return json.dumps(document, ensure_ascii=draw(st.booleans())).encode()


def assert_same(got: tuple[Any, ...], want: tuple[Any, ...]) -> None:
    """Outcomes agree: strictly equal values, or the same error type and message."""
    if got[0] == want[0] == "ok":
        assert same(got[1], want[1]), (got[1], want[1])
    else:
        assert got == want


def check_twins(cls: type, value: Any, document: bytes) -> None:
    """The plan codec and the compiled codec of ``cls`` agree on both."""
    compiled = persist.codec_for(cls)
    assert compiled.source == "compiled"
    codec = plan_codec(cls)
    assert outcome(codec.dumps, value) == outcome(compiled.encode, value)
    assert_same(outcome(codec.loads, document), outcome(compiled.decode, document))
    written = outcome(compiled.encode, value)
    if written[0] == "ok":
        data = written[1]
        assert_same(outcome(codec.loads, data), outcome(compiled.decode, data))
        assert_same(outcome(codec.copy, value), outcome(compiled.copy, value))


# --- the twins of the compiled codecs -------------------------------------------


@pytest.mark.parametrize("cls", SCHEMA_CLASSES, ids=lambda cls: cls.__name__)
@SETTINGS
@given(data=st.data())
def test_schema_classes_agree(cls: type, data: st.DataObject) -> None:
    """persist's compiled schemas and their plan codecs: same bytes, values, errors."""
    value = data.draw(hostile_values(cls, None))
    sample = values(plan_for(cls), None)
    document = data.draw(hostile_documents(persist.codec_for(cls).encode, sample))
    check_twins(cls, value, document)


@SETTINGS
@given(data=st.data())
def test_model_classes_agree(models: ModuleType, data: st.DataObject) -> None:
    """Every field kind (compiled_models.py, compiled as a user would): the same."""
    cls = data.draw(st.sampled_from(compiled_classes(models)))
    value = data.draw(hostile_values(cls, models))
    sample = values(plan_for(cls), models)
    document = data.draw(hostile_documents(persist.codec_for(cls).encode, sample))
    check_twins(cls, value, document)


def _fell_back(codec: Any, function: Callable[[Any], Any], argument: Any) -> bool:
    """Whether ``codec`` (a ClassCodec) handed ``function(argument)`` on."""
    before = codec.fallbacks
    outcome(function, argument)
    return bool(codec.fallbacks != before)


@SETTINGS
@given(data=st.data())
def test_plan_codecs_take_what_compiled_code_takes(
    models: ModuleType, data: st.DataObject
) -> None:
    """One fast path: a value or document one codec hands on, the other does too."""
    cls = data.draw(st.sampled_from([*SCHEMA_CLASSES, *compiled_classes(models)]))
    value = data.draw(values(plan_for(cls), models))
    compiled = persist.codec_for(cls)
    codec, owner = plan_codec(cls), compiled.write.__self__
    assert _fell_back(codec, codec.dumps, value) == _fell_back(
        owner, compiled.encode, value
    )
    written = outcome(compiled.encode, value)
    if written[0] == "ok":
        assert _fell_back(codec, codec.loads, written[1]) == _fell_back(
            owner, compiled.decode, written[1]
        )


def test_plain_values_stay_on_the_fast_path() -> None:
    """A canonical value and its document never reach the Python codec."""
    codec = plan_codec(examples.User)
    user = examples.User("Ann", "ann@example.com", 41)
    assert not _fell_back(codec, codec.dumps, user)
    assert not _fell_back(codec, codec.loads, codec.dumps(user))


def test_deep_trees_are_refused_alike(models: ModuleType) -> None:
    """A recursive class nested past the compiled depth: the same EncodeError."""
    tree = models.Tree(0, [])
    for number in range(300):
        tree = models.Tree(number, [tree])
    compiled = persist.codec_for(models.Tree)
    assert outcome(plan_codec(models.Tree).dumps, tree) == outcome(
        compiled.encode, tree
    )
    copied = outcome(plan_codec(models.Tree).copy, tree)
    assert copied == outcome(compiled.copy, tree)
    assert issubclass(copied[1], persist.EncodeError)


# --- builtin codecs ---------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    ONE = 1
    SEPARATOR = "a\u2028b"  # written escaped


BUILTIN_TYPES = [
    str,
    int,
    float,
    bool,
    None,
    bytes,
    datetime,
    Color,
    Any,
    list[int],
    tuple[str, ...],
    set[int],
    frozenset[str],
    dict[str, float],
    Optional[str],  # noqa: UP045 (the typing spelling is planned too)
    list[datetime | None],
    dict[str, list[Any]],
    list[examples.User],
]


@pytest.mark.parametrize("tp", BUILTIN_TYPES, ids=str)
@SETTINGS
@given(data=st.data())
def test_builtin_codecs_agree_with_python(tp: Any, data: st.DataObject) -> None:
    """Compiled nodes at the top of a map: the Python codec's bytes, values, errors."""
    codec = persist.codec_for(tp)
    python = codecs._python_builtin_codec(plan_for(tp))
    assert codec.source == "builtin"
    sample = values(plan_for(tp))
    value = data.draw(sample | st.sampled_from(WRONG) | _json_values)
    assert outcome(codec.encode, value) == outcome(python.encode, value)
    document = data.draw(hostile_documents(python.encode, sample))
    assert_same(outcome(codec.decode, document), outcome(python.decode, document))


@SETTINGS
@given(
    stamp=st.datetimes(
        timezones=st.none()
        | st.just(UTC)
        | st.builds(
            timezone, st.integers(-1439, 1439).map(lambda m: timedelta(minutes=m))
        )
        | st.builds(
            timezone, st.integers(-86399, 86399).map(lambda s: timedelta(seconds=s))
        )
    )
)
def test_datetimes_in_c_as_in_python(stamp: datetime) -> None:
    """RFC 3339 written and read in C: byte for byte the Python rule, any offset."""
    codec = persist.codec_for(datetime)
    python = codecs._python_builtin_codec(plan_for(datetime))
    written = outcome(codec.encode, stamp)
    assert written == outcome(python.encode, stamp)
    if written[0] == "ok":
        assert same(codec.decode(written[1]), stamp)


@pytest.mark.parametrize(
    "text",
    [
        "2020-01-02T03:04:05Z",
        "2020-01-02t03:04:05.5z",
        "2020-01-02T03:04:05.123456789-00:00",
        "2020-02-29T23:59:59.000001+23:59",
        "2021-02-29T00:00:00Z",
        "2020-01-02T24:00:00Z",
        "2020-01-02T03:04:60Z",
        "2020-01-02T03:04:05+05:60",
        "2020-01-02T03:04:05+24:00",
        "0000-01-02T03:04:05Z",
        "2020-01-02T03:04:05.Z",
        "2020-01-02 03:04:05Z",
        "2020-01-02T03:04:05",
        "2020-1-02T03:04:05Z",
        "\uff12020-01-02T03:04:05Z",  # a fullwidth digit
    ],
)
def test_datetime_texts_read_as_in_python(text: str) -> None:
    """Edge texts: the C reader takes what the Python rule takes, with equal values."""
    data = json.dumps(text, ensure_ascii=False).encode()
    python = codecs._python_builtin_codec(plan_for(datetime))
    assert_same(
        outcome(persist.codec_for(datetime).decode, data), outcome(python.decode, data)
    )


@pytest.mark.parametrize(
    "data",
    [
        *(b'"red"', b' "red" ', b'"r\\u0065d"', b'"a\\u2028b"', b'"re"', b'"redx"'),
        *(b"1", b"1.0", b"true", b'"RED"', b"null", b'["red"]'),
    ],
)
def test_enum_members_read_as_in_python(data: bytes) -> None:
    """A str member's text is matched in place; anything else reads as in Python."""
    python = codecs._python_builtin_codec(plan_for(Color))
    assert_same(
        outcome(persist.codec_for(Color).decode, data), outcome(python.decode, data)
    )


class Shown(enum.Enum):
    """An Enum whose ``value`` is its own: written as ``value`` says."""

    A = 1

    @property
    def value(self) -> int:  # type: ignore[override]
        return 2


def test_enum_with_its_own_value_property() -> None:
    """The fast path writes ``_value_`` only where ``value`` is Enum's own."""
    assert persist.codec_for(Shown).encode(Shown.A) == b"2"
    assert persist.codec_for(Color).encode(Color.ONE) == b"1"


# --- which tier serves -------------------------------------------------------------


@attrs.define
class Node:
    value: int
    children: list[Node] = attrs.Factory(list)


@attrs.frozen
class Left:
    right: Right | None


@attrs.frozen
class Right:
    left: Left | None


def test_classes_nobody_compiled_get_plan_codecs() -> None:
    """source "runtime": a PlanCodec serves it, nested and recursive classes too."""
    codec = persist.codec_for(Node)
    assert codec.source == "runtime"
    assert isinstance(codec.write.__self__, _plancodec.PlanCodec)
    tree = Node(1, [Node(2), Node(3, [Node(4)])])
    data = codec.encode(tree)
    assert data == (
        b'{"value":1,"children":[{"value":2,"children":[]},'
        b'{"value":3,"children":[{"value":4,"children":[]}]}]}'
    )
    assert codec.decode(data) == tree
    copied = codec.copy(tree)
    assert copied == tree and copied.children is not tree.children
    pair = Left(Right(Left(None)))
    assert persist.codec_for(Left).source == "runtime"
    assert persist.codec_for(Left).decode(persist.codec_for(Left).encode(pair)) == pair
    assert persist.codec_for(Left).encode(pair) == b'{"right":{"left":{"right":null}}}'


def test_plan_codec_hands_on_what_it_does_not_take() -> None:
    """An int subclass, or a wrong type: the Python codec writes it or says why."""
    codec = persist.codec_for(Node)
    compiled = codec.write.__self__
    before = compiled.fallbacks
    assert codec.encode(Node(IntSub(1))) == b'{"value":1,"children":[]}'
    assert compiled.fallbacks == before + 1
    with pytest.raises(persist.DecodeError, match=r"^Node\.value: expected int"):
        codec.decode(b'{"value":"1"}')
    assert compiled.fallbacks == before + 2
    with pytest.raises(
        persist.EncodeError, match=r"^Node\.children\[0\]: expected Node"
    ):
        codec.encode(Node(1, ["x"]))


class IntSub(int):
    pass


@pytest.mark.parametrize(
    ("tp", "value", "data"),
    [(str, "héllo", b'"h\xc3\xa9llo"'), (int, 123456789, b"123456789")],
)
def test_str_and_int_maps_are_compiled(tp: type, value: Any, data: bytes) -> None:
    """The hot map types: compiled entry points, still source "builtin"."""
    codec = persist.codec_for(tp)
    assert codec.source == "builtin"
    assert isinstance(codec.encode.__self__, _plancodec.ValueCodec)
    assert codec.encode(value) == data
    assert codec.decode(data) == value
    assert codec.encode(StrSub("s") if tp is str else IntSub(7)) == (
        b'"s"' if tp is str else b"7"
    )
    with pytest.raises(TypeError):
        codec.encode(1.5)
