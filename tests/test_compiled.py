"""Compiled codecs: found on import; same bytes, values and errors as at run time.

The package's own schemas (persist.schemas) are compiled by its build. The
classes of tests/compiled_models.py, which cover every field kind, are
compiled here as a user would: copied into a package in a temporary folder
and built with ``persist.codegen.generate_module(..., build=True)``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import shutil
import struct
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
import ujson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from persist.codegen import emit_cython
from persist.codegen.build import schema_plans
from persist.codegen.plan import ClassPlan, Kind, TypeNode, plan_for
from persist.schemas import bench, examples
from test_hostile import run_in_small_thread

import persist
from persist import cli, codecs, codegen
from persist._cjson import TooDeep, TooDeepToDecode

SCHEMA_CLASSES = [
    examples.User,
    examples.Product,
    examples.Session,
    examples.Config,
    bench.Pair,
    bench.Meta,
    bench.ComplexRecord,
]
PACKAGE = "persist_test_models"
DATA = Path(__file__).parent / "data" / "go-persist"
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- a user's module, compiled in a temporary package -------------------------


def encode_money(value: Any) -> bytes:
    if type(value).__name__ != "Money":
        raise TypeError(f"expected Money, got {type(value).__name__}")
    return str(value.cents).encode()


@contextlib.contextmanager
def _unoptimized_c() -> Iterator[None]:
    """Compile with -O0: the suite checks behaviour, not speed, and gcc is faster so."""
    previous = os.environ.get("CFLAGS")
    os.environ["CFLAGS"] = "-O0"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["CFLAGS"]
        else:
            os.environ["CFLAGS"] = previous


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A package folder on sys.path holding compiled_models.py as ``models``."""
    root = tmp_path_factory.mktemp("compiled")
    folder = root / PACKAGE
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    shutil.copy(Path(__file__).with_name("compiled_models.py"), folder / "models.py")
    sys.path.insert(0, str(root))
    try:
        yield folder
    finally:
        sys.path.remove(str(root))


@pytest.fixture(scope="module")
def models(package: Path) -> ModuleType:
    """The models module, its codecs compiled with generate_module(build=True)."""
    with _unoptimized_c():
        path = codegen.generate_module(f"{PACKAGE}.models", build=True)
    assert path == package / "_persist_models.pyx"
    module = importlib.import_module(f"{PACKAGE}.models")

    def decode_money(data: bytes) -> Any:
        cents = json.loads(data)
        if type(cents) is not int:
            raise ValueError("Money must be an int")
        return module.Money(cents)

    persist.register_codec(module.Money, encode_money, decode_money)
    return module


def model_classes(models: ModuleType) -> list[type]:
    return [plan.cls for plan in schema_plans(models)]


# --- strict comparison and outcomes -------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal, of the same types all the way down, floats bit for bit, dicts in order.

    A loop, not a recursion: documents nest 1,000 deep, past what Python 3.12+
    allows a recursion through C calls (map, all).
    """
    pending = [(a, b)]
    while pending:
        a, b = pending.pop()
        if type(a) is not type(b):
            return False
        if isinstance(a, float):
            if struct.pack("<d", a) != struct.pack("<d", b):
                return False
        elif isinstance(a, datetime):
            if not (a == b and a.utcoffset() == b.utcoffset()):
                return False
        elif isinstance(a, (list, tuple)):
            if len(a) != len(b):
                return False
            pending += zip(a, b, strict=True)
        elif isinstance(a, dict):
            if list(a) != list(b):
                return False
            pending += ((a[key], b[key]) for key in a)
        elif attrs.has(type(a)):
            pending += (
                (getattr(a, field.name), getattr(b, field.name))
                for field in attrs.fields(type(a))
            )
        elif not bool(a == b):
            return False
    return True


def outcome(function: Callable[[Any], Any], argument: Any) -> tuple[Any, ...]:
    """``("ok", result)`` or ``("error", type, message)``."""
    try:
        return ("ok", function(argument))
    except Exception as error:
        return ("error", type(error), str(error))


_runtime: dict[type, codegen.GeneratedCodec] = {}


def runtime(cls: type) -> codegen.GeneratedCodec:
    """The run-time (generated Python) codec of ``cls``, made once."""
    if cls not in _runtime:
        _runtime[cls] = codegen.make_python_codec(cls)
    return _runtime[cls]


def assert_same_encoding(cls: type, value: Any) -> tuple[Any, ...]:
    """Compiled and run-time encode alike (bytes, or error type and message)."""
    compiled = persist.codec_for(cls)
    assert compiled.source == "compiled"
    got, want = outcome(compiled.encode, value), outcome(runtime(cls).encode, value)
    assert got == want
    if got[0] == "ok":  # nested text: the same once U+2028/9 are escaped, as at the end
        assert _escaped(compiled.write(value)) == _escaped(runtime(cls).write(value))
    return got


def _escaped(text: str) -> str:
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def assert_same_decoding(cls: type, data: Any) -> tuple[Any, ...]:
    """Compiled and run-time decode alike (strictly equal values, or the same error)."""
    got = outcome(persist.codec_for(cls).decode, data)
    want = outcome(runtime(cls).decode, data)
    if got[0] == want[0] == "ok":
        assert same(got[1], want[1]), (got[1], want[1])
    else:
        assert got == want
    return got


def fallbacks(cls: type) -> int:
    """How many values and documents the compiled codec of ``cls`` handed on."""
    return persist.codec_for(cls).write.__self__.fallbacks


# --- values of any planned type -----------------------------------------------

SPECIAL_CHARS = '"\\/\b\f\n\r\t\x00\x1f\x7f\x80é\u2028\u2029\uffff😀'
_text = st.text(
    st.characters(exclude_categories=["Cs"]) | st.sampled_from(SPECIAL_CHARS)
)
_ints = st.integers() | st.sampled_from([0, -1, 2**53 + 1, 2**63, -(2**63) - 1, 10**30])
_floats = st.floats() | st.sampled_from([-0.0, 1e21, 1e16, 5e-324, 1.5e-07, 0.1, 1e-05])
_DECIMALS = [Decimal("1.10"), Decimal("-0"), Decimal("1E+3"), Decimal("sNaN")]
_DURATIONS = [timedelta(microseconds=-1), timedelta(days=106751, seconds=86399)]
_zones = st.sampled_from([UTC, timezone(timedelta(hours=3, minutes=30))])
_json = st.recursive(
    st.none() | st.booleans() | _ints | _floats | _text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3)
    ),
    max_leaves=6,
)


def values(
    node: TypeNode | ClassPlan, models: ModuleType | None = None, *, kin: bool = True
) -> st.SearchStrategy[Any]:
    """Values of a planned type, odd ones included (NaN, control characters, huge ints).

    :param kin: ints for float fields too (which the cattrs path writes as ints)
    """
    if isinstance(node, ClassPlan):
        fields = {
            field.name: values(field.node, models, kin=kin) for field in node.fields
        }
        return st.builds(_make, st.just(node.cls), st.fixed_dictionaries(fields))
    kind = node.kind
    simple = {
        Kind.STR: _text,
        Kind.INT: _ints,
        Kind.FLOAT: _floats | _ints if kin else _floats,
        Kind.BOOL: st.booleans(),
        Kind.NONE: st.none(),
        Kind.BYTES: st.binary(max_size=8),
        Kind.DATETIME: st.datetimes(timezones=_zones),
        Kind.UUID: st.uuids(),
        Kind.DECIMAL: st.decimals() | st.sampled_from(_DECIMALS),
        Kind.DATE: st.dates(),
        Kind.TIME: st.times(timezones=st.none() | _zones),
        Kind.TIMEDELTA: st.timedeltas() | st.sampled_from(_DURATIONS),
        Kind.ANY: _json,
    }
    if kind in simple:
        return simple[kind]
    if kind is Kind.LITERAL:
        return st.sampled_from(node.values)
    if kind is Kind.UNION:
        return st.one_of([values(member, models, kin=kin) for member in node.members])
    if kind is Kind.ENUM:
        return st.sampled_from(list(node.type))
    if kind is Kind.CLASS:
        return st.deferred(lambda: values(plan_for(node.type), models, kin=kin))
    if kind is Kind.OPAQUE:  # compiled_models: Money and dict[int, str]
        if models is not None and node.type is models.Money:
            return st.integers().map(models.Money)
        return st.dictionaries(st.integers(), _text, max_size=3)
    assert node.item is not None
    item = values(node.item, models, kin=kin)
    containers = {
        Kind.LIST: st.lists(item, max_size=3),
        Kind.TUPLE: st.lists(item, max_size=3).map(tuple),
        Kind.SET: st.sets(item, max_size=3),
        Kind.FROZENSET: st.frozensets(item, max_size=3),
        Kind.DICT: st.dictionaries(_text, item, max_size=3),
        Kind.OPTIONAL: st.none() | item,
    }
    return containers[kind]


def _make(cls: type, fields: dict[str, Any]) -> Any:
    """An instance with these field values, set directly (validators not run)."""
    value = object.__new__(cls)
    for name, field_value in fields.items():
        object.__setattr__(value, name, field_value)
    return value


class StrSub(str):
    """A str subclass: written by the run-time codec, never by the fast path."""


class IntSub(int):
    pass


WRONG = [None, 1, "x", 1.5, True, [1], {"a": 1}, b"x", StrSub("s"), IntSub(3), math.nan]


# --- found and used -----------------------------------------------------------


@pytest.mark.parametrize("cls", SCHEMA_CLASSES)
def test_package_schemas_are_compiled(cls: type) -> None:
    """persist's build compiled the schema classes; the registry serves them."""
    codec = persist.codec_for(cls)
    assert codec.source == "compiled"
    assert codec.encode.__module__ == codegen.compiled_module_name(cls.__module__)


def test_user_module_gets_compiled_codecs(models: ModuleType) -> None:
    """generate_module(build=True) builds an extension beside the module; it serves."""
    classes = model_classes(models)
    assert {cls.__name__ for cls in classes} >= {"Everything", "Tree", "Inner", "Keys"}
    for cls in classes:
        assert persist.codec_for(cls).source == "compiled", cls


def test_fast_path_serves_plain_values(models: ModuleType) -> None:
    """Plain values and canonical documents never reach the run-time codec."""
    user = examples.User("Ann", "ann@example.com", 41)
    tree = models.Tree(1, [models.Tree(2, [])])
    for cls, value in [(examples.User, user), (models.Tree, tree)]:
        codec = persist.codec_for(cls)
        before = fallbacks(cls)
        assert codec.decode(codec.encode(value)) == value
        assert fallbacks(cls) == before
    before = fallbacks(examples.User)
    persist.codec_for(examples.User).encode(examples.User(StrSub("a"), "b", 1))
    assert fallbacks(examples.User) == before + 1


# --- same bytes, values and errors --------------------------------------------


@SETTINGS
@given(st.data())
def test_schemas_agree_with_runtime_and_cattrs(data: st.DataObject) -> None:
    """Compiled, run-time and cattrs codecs: the same bytes, the same values."""
    cls = data.draw(st.sampled_from(SCHEMA_CLASSES))
    value = data.draw(values(plan_for(cls), kin=False))
    result = assert_same_encoding(cls, value)
    reference = persist.codec_for(cls, converter=codecs.default_converter)
    if result[0] == "ok":
        assert reference.encode(value) == result[1]
        decoded = assert_same_decoding(cls, result[1])
        assert same(decoded[1], reference.decode(result[1]))
        assert same(persist.codec_for(cls).copy(value), runtime(cls).copy(value))
    else:
        assert outcome(reference.encode, value)[:2] == result[:2]


@SETTINGS
@given(st.data())
def test_models_agree_with_runtime(models: ModuleType, data: st.DataObject) -> None:
    """Every field kind: same bytes, values, copies and errors as the run-time codec."""
    cls = data.draw(st.sampled_from(model_classes(models)))
    value = data.draw(values(plan_for(cls), models))
    result = assert_same_encoding(cls, value)
    if result[0] == "ok":
        assert_same_decoding(cls, result[1])
        assert same(persist.codec_for(cls).copy(value), runtime(cls).copy(value))


@SETTINGS
@given(st.data())
def test_wrong_field_values_fail_alike(models: ModuleType, data: st.DataObject) -> None:
    """A wrong or odd value in any field: the same error (or bytes) from both codecs."""
    cls = data.draw(st.sampled_from([*SCHEMA_CLASSES, *model_classes(models)]))
    plan = plan_for(cls)
    assert isinstance(plan, ClassPlan)
    value = data.draw(values(plan, models))
    if plan.fields:
        field = data.draw(st.sampled_from(plan.fields))
        wrong = data.draw(st.sampled_from(WRONG) | st.lists(st.sampled_from(WRONG)))
        object.__setattr__(value, field.name, wrong)
    assert_same_encoding(cls, value)
    assert_same_encoding(cls, "not a value")


def _mutations(data: st.DataObject, document: bytes) -> bytes:
    """Change a valid document the way other writers, or damage, would."""
    obj = json.loads(document)
    kind = data.draw(st.integers(0, 9))
    if kind == 0:  # other layout: spaces, \\u escapes for every non-ASCII char
        return json.dumps(
            obj, indent=data.draw(st.sampled_from([None, 1])), ensure_ascii=True
        ).encode()
    if kind == 1 and isinstance(obj, dict):  # other key order, an unknown key
        items = data.draw(st.permutations(list(obj.items())))
        items.insert(
            data.draw(st.integers(0, len(items))), (data.draw(_text), data.draw(_json))
        )
        return json.dumps(dict(items), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )
    if (
        kind == 2 and isinstance(obj, dict) and obj
    ):  # a key dropped, or a value replaced
        key = data.draw(st.sampled_from(sorted(obj)))
        if data.draw(st.booleans()):
            del obj[key]
        else:
            obj[key] = data.draw(_json)
        return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if kind == 3 and document.startswith(b"{") and len(document) > 2:  # a duplicate key
        first = document[1 : document.index(b":") + 1]
        return (
            b"{"
            + first
            + data.draw(st.sampled_from([b"1", b'"x"', b"null", b"[]"]))
            + b","
            + document[1:]
        )
    if kind == 4:  # numbers in forms ujson reads
        for old, new in [
            (b"0", b"-0"),
            (b"1", b"01"),
            (b"1", b"1.0"),
            (b"2", b"2E2"),
            (b"3", b"1e999"),
            (b"5", b"NaN"),
        ]:
            if old in document and data.draw(st.booleans()):
                return document.replace(old, new, 1)
        return document
    if kind == 5:  # strings with escapes, lone surrogates, raw control characters
        new = data.draw(
            st.sampled_from(
                [
                    b'"\\u0041"',
                    b'"\\ud83d\\ude00"',
                    b'"\\ud800"',
                    b'"\\udc00x"',
                    b'"a\nb"',
                    b'"\xed\xa0\x80"',
                    b'"\xff"',
                    b'"\\x"',
                    b'"\\/"',
                    b'"\\u00e9\\""',
                    b'"\x00"',
                ]
            )
        )
        return (
            document.replace(b'""', new, 1)
            if b'""' in document
            else document.replace(b'"', new[:-1], 1)
        )
    if kind == 6:  # damage: cut, or a byte changed or inserted
        position = data.draw(st.integers(0, len(document)))
        byte = bytes([data.draw(st.integers(0, 255))])
        how = data.draw(st.integers(0, 2))
        if how == 0:
            return document[:position]
        return document[:position] + byte + document[position + (how == 1) :]
    if kind == 7:  # an escaped member name
        return (
            document.replace(b'{"', b'{"\\u0061', 1)
            if document.startswith(b'{"')
            else document
        )
    if kind == 8:  # nulls for containers, bytes and classes
        return (
            document.replace(b"[]", b"null")
            .replace(b"{}", b"null")
            .replace(b'""', b"null")
        )
    return document


@SETTINGS
@given(st.data())
def test_decoding_agrees_on_changed_documents(
    models: ModuleType, data: st.DataObject
) -> None:
    """Reordered, respaced, escaped, duplicated, damaged documents: same outcome."""
    cls = data.draw(st.sampled_from([*SCHEMA_CLASSES, *model_classes(models)]))
    value = data.draw(values(plan_for(cls), models))
    encoded = outcome(runtime(cls).encode, value)
    if encoded[0] == "ok":
        assert_same_decoding(cls, _mutations(data, encoded[1]))


EDGE_DOCUMENTS = [
    b'  {"Name" : "a" , "Email":"b","Age":1}\n',
    b'{"Age":1,"Email":"b","Name":"a"}',
    b'{"Name":"a","Email":"b","Age":1,"Name":"c"}',
    b'{"Name":"a","Email":"b","Age":1,"x":{"y":[1,2.5e3,"\\u00e9",null,true]}}',
    b'{"Name":"a","Email":"b","Age":1,"x":1e999}',
    b'{"Name":"a","Email":"b","Age":1,"x":"\\ud800"}',
    b'{"Name":"a","Email":"b","Age":1,"x":"\xed\xa0\x80"}',
    b'{"Name":"a","Email":"b","Age":1,"x":"\xff"}',
    b'{"Name":"a","Email":"b","Age":1,"x":NaN}',
    b'{"N\\u0061me":"a","Email":"b","Age":1}',
    b'{"Name":"a","Email":"b","Age":123456789012345678901234567890}',
    b'{"Name":"a","Email":"b","Age":-0}',
    b'{"Name":"a","Email":"b","Age":01}',
    b'{"Name":"a","Email":"b","Age":1.0}',
    b'{"Name":"a","Email":"b","Age":1,}',
    b'{"Name":"a","Email":"b","Age":1} x',
    b'{"Name":"a","Email":"b"}',
    b'{"Name":"a\\nb\\t\\"\\\\\\/\\b\\f\\r\\u0000","Email":"\\ud83d\\ude00","Age":1}',
    b'{"Name":"a","Email":"b","Age":1,"deep":' + b"[" * 600 + b"]" * 600 + b"}",
    b"",
    b"null",
    b"[]",
    b'{"Name":"a","Email":"b","Age":' + b"9" * 5000 + b"}",
]


@pytest.mark.parametrize("data", EDGE_DOCUMENTS)
def test_decoding_agrees_on_edge_documents(data: bytes) -> None:
    """Whitespace, order, duplicates, unknown members, odd numbers, damage."""
    assert_same_decoding(examples.User, data)


@pytest.mark.parametrize(
    "data", [bytearray(b'{"key":"k","value":1}'), '{"key":"k","value":1}']
)
def test_decoding_agrees_on_other_inputs(data: Any) -> None:
    """Input that is not bytes goes to the run-time codec."""
    assert_same_decoding(bench.Pair, data)


@settings(max_examples=500, deadline=None)
@given(_floats.filter(math.isfinite), st.sampled_from(["r", ".17g", ".6e", ".3f"]))
def test_float_text(number: float, form: str) -> None:
    """Floats are written as float.__repr__ does and read as ujson does, bit for bit."""
    codec = persist.codec_for(examples.Product)
    data = codec.encode(examples.Product("p", number))
    assert data == b'{"Name":"p","Price":' + repr(number).encode() + b"}"
    text = repr(number) if form == "r" else format(number, form)
    price = codec.decode(b'{"Name":"p","Price":' + text.encode() + b"}").price
    assert same(price, float(ujson.loads(text)))


# --- behaviour around the codec -----------------------------------------------


def test_copies_are_deep_enough(models: ModuleType) -> None:
    """A copy shares no mutable part; frozen immutable values are their own copy."""
    account = models.Account("s", "n", tags=["a"])
    copied = persist.codec_for(models.Account).copy(account)
    assert copied == account and copied.tags is not account.tags
    address = models.Address("s", "c")
    assert persist.codec_for(models.Address).copy(address) is address
    record = bench.ComplexRecord(1, "n", 0.5, True, ["t"], {"c": 1}, bench.Meta(1, "s"))
    copied = persist.codec_for(bench.ComplexRecord).copy(record)
    assert copied == record
    assert (
        copied.tags is not record.tags and copied.meta.labels is not record.meta.labels
    )


def test_decoding_honours_init(models: ModuleType) -> None:
    """Validators and converters run; what they refuse is the run-time DecodeError."""
    codec = persist.codec_for(models.Checked)
    assert codec.decode(b'{"age":1,"name":"  x "}') == models.Checked(1, "x")
    with pytest.raises(persist.DecodeError, match=r"^Checked: cannot build Checked: "):
        codec.decode(b'{"age":-1}')
    hashed = persist.codec_for(models.Hashed).decode(b'{"a":1,"b":"x"}')
    assert hash(hashed) == hash(models.Hashed(1, "x"))


def _records(path: Path) -> Iterator[tuple[bool, str, bytes]]:
    """``(is a set, full key, value line)`` of each record of a go-persist file."""
    lines = path.read_bytes().split(b"\n")[1:]
    for head, value in zip(lines[::2], lines[1::2], strict=False):
        yield head.startswith(b"S "), head[2:].decode(), value


GO_MAPS = {"": examples.User, "users": examples.User, "products": examples.Product}
GO_MAPS |= {"sessions": examples.Session, "system_config": examples.Config}


@pytest.mark.parametrize("name", ["single_users.db", "multi_maps.db"])
def test_go_fixture_values(name: str) -> None:
    """go-persist's records decode as at run time; the last ones give the state."""
    expected = json.loads((DATA / name).with_suffix(".expected.json").read_text())
    state = {}
    for is_set, key, line in _records(DATA / name):
        map_name, _, short = (
            key.rpartition(":") if ":" in key else ("<orphans>", "", key)
        )
        cls = GO_MAPS.get(map_name if ":" in key else key)
        if cls is not None and is_set:
            state[map_name, short] = cls, assert_same_decoding(cls, line)[1]
        elif cls is not None:
            del state[map_name, short]
    assert len(state) >= 4
    for (map_name, short), (cls, value) in state.items():
        written = json.loads(persist.codec_for(cls).encode(value))
        assert written.items() >= expected[map_name][short].items()


def test_stale_codec_falls_back_with_a_warning(
    models: ModuleType, package: Path
) -> None:
    """A class changed since generation: StaleCodecWarning; the run-time codec."""
    source = "import attrs\n\n\n@attrs.define\nclass Thing:\n    a: int\n"
    (package / "stale.py").write_text(source)
    with _unoptimized_c():
        codegen.generate_module(f"{PACKAGE}.stale", build=True)
    (package / "stale.py").write_text(source + "    b: int = 0\n")
    del sys.modules[f"{PACKAGE}.stale"]
    importlib.invalidate_caches()
    stale = importlib.import_module(f"{PACKAGE}.stale")
    with pytest.warns(codecs.StaleCodecWarning, match="changed since generation"):
        codec = persist.codec_for(stale.Thing)
    assert codec.source == "runtime"
    assert codec.encode(stale.Thing(1)) == b'{"a":1,"b":0}'


def test_registered_codec_replaces_compiled_code(models: ModuleType) -> None:
    """A codec registered for a type compiled code writes itself retires that code."""
    assert persist.codec_for(models.Outer).source == "compiled"
    persist.register_codec(
        models.Outer.Inner,
        lambda inner: str(inner.n).encode(),
        lambda data: models.Outer.Inner(int(data)),
    )
    outer = models.Outer(models.Outer.Inner(1), [models.Outer.Inner(2)])
    codec = persist.codec_for(models.Outer)
    assert codec.source == "runtime"
    assert codec.encode(outer) == b'{"inner":1,"items":[2]}'
    assert codec.decode(b'{"inner":1,"items":[2]}') == outer


def test_registered_codec_serves_inside_compiled_code(models: ModuleType) -> None:
    """Compiled code uses the registered codec of an opaque type, even a new one."""
    value = persist.codec_for(models.Everything).decode(_everything_document())
    assert value.price == models.Money(5)
    persist.register_codec(
        models.Money,
        lambda money: f'"{money.cents}c"'.encode(),
        lambda data: models.Money(int(json.loads(data)[:-1])),
    )
    codec = persist.codec_for(models.Everything)
    assert codec.source == "compiled"
    assert b'"price":"5c"' in codec.encode(value)


def _everything_document() -> bytes:
    return (
        b'{"Text":"t","number":1,"real":1.5,"flag":true,"nothing":null,"blob":"AP8=",'
        b'"when":"2020-01-02T03:04:05Z","color":"red","level":2,"anything":[1],'
        b'"words":[],"numbers":[1],"tags":["s"],"codes":[3],"scores":{"k":2},"maybe":null,'
        b'"home":{"street":"s","city":"c"},"places":[null],"owner":null,"price":5,'
        b'"history":[],"by_id":{"1":"a"},"nested":{},"bare_list":[],"bare_dict":{}}'
    )


# --- the generator's output and entry points ----------------------------------


def test_generated_source_shape() -> None:
    """Directives first, a header per class, entry points named after the class."""
    plans = schema_plans(examples)
    stamps = {plan.cls: codegen.fingerprint(plan.cls) for plan in plans}
    source = emit_cython.emit(examples.__name__, plans, stamps)
    lines = source.splitlines()
    assert lines[0].startswith("# cython: language_level=3")
    assert "# generated by persist.codegen — do not edit" in lines[:5]
    assert (
        f"# fingerprint {stamps[examples.User]}, "
        f"generator version {codegen.GENERATOR_VERSION}" in lines
    )
    for name in ("User", "Product", "Session", "Config"):
        assert f"# schema class persist.schemas.examples.{name}" in lines
        for function in ("def encode_", "def decode_", "cpdef object copy_"):
            assert any(line.startswith(function + name + "(") for line in lines)
    assert source == emit_cython.emit(examples.__name__, plans, stamps)


def test_cythonize_schemas_returns_extensions(
    models: ModuleType, package: Path
) -> None:
    """The setup.py helper writes the .pyx and returns one Extension per module."""
    [extension] = codegen.cythonize_schemas([models], quiet=True)
    assert extension.name == f"{PACKAGE}._persist_models"
    assert Path(extension.sources[0]).suffix == ".c"
    assert codegen.compiled_module_name("pkg.mod") == "pkg._persist_mod"
    assert codegen.compiled_module_name("mod") == "_persist_mod"


def test_cli_codegen(
    models: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``persist codegen MODULE -o DIR`` writes the .pyx there and names it."""
    assert cli.main(["codegen", f"{PACKAGE}.models", "-o", str(tmp_path)]) == 0
    written = tmp_path / "_persist_models.pyx"
    assert written.read_text().startswith("# cython:")
    assert str(written) in capsys.readouterr().out
    assert cli.main(["codegen", "json"]) == 1


def test_no_compiled_module_means_runtime() -> None:
    """A class whose module has no compiled codecs gets the run-time codec, silently."""

    @attrs.define
    class Local:
        n: int

    assert persist.codec_for(Local).source == "runtime"


def test_value_types_take_the_fast_path(models: ModuleType) -> None:
    """UUID, Decimal, date, time, timedelta and Literals are written and read in C,
    unions through the registry's parts: no hand-over to the run-time codec."""
    value = models.Typed(
        id=uuid.UUID("0123ABCD-4567-89ab-cdef-0123456789AB"),
        price=Decimal("-1.10"),
        day=date(2024, 2, 29),
        at=time(23, 59, 59, 5),
        took=timedelta(days=-1, microseconds=3),
        mode=True,
        either="1",
        number=2.5,
        mixed=None,
        listed=[1],
        user=models.UserId(7),
        days=[date(1, 1, 1)],
        maybe_id=None,
        durations={"k": timedelta(0)},
        stamps=[datetime(2020, 1, 2, tzinfo=UTC), 5, ["y"]],
    )
    codec = persist.codec_for(models.Typed)
    before = fallbacks(models.Typed)
    data = codec.encode(value)
    assert data == (
        b'{"id":"0123abcd-4567-89ab-cdef-0123456789ab","price":"-1.10",'
        b'"day":"2024-02-29","at":"23:59:59.000005","took":-86399999997000,'
        b'"mode":true,"either":"1","number":2.5,"mixed":null,"listed":[1],"user":7,'
        b'"days":["0001-01-01"],"maybe_id":null,"durations":{"k":0},'
        b'"stamps":["2020-01-02T00:00:00Z",5,["y"]]}'
    )
    upper = data.replace(b"0123abcd", b"0123ABCD")
    assert codec.decode(upper) == value
    assert codec.decode(data.replace(b"-86399999997000", b"-86399999996501")) == value
    assert fallbacks(models.Typed) == before
    braced = data.replace(b'"0123abcd', b'"{0123abcd').replace(b'9ab"', b'9ab}"', 1)
    assert_same_decoding(models.Typed, braced)
    assert codec.decode(braced) == value


def test_kw_only_and_init_false_fields_of_value_types(models: ModuleType) -> None:
    """Compiled decoding passes kw_only fields by name, sets init=False ones after
    __init__ (a frozen class), and fills defaults, as the run-time codec does."""
    codec = persist.codec_for(models.TypedOptions)
    assert codec.source == "compiled"
    before = fallbacks(models.TypedOptions)
    data = b'{"name":"a","level":"high","since":"2021-03-04","ticket":"%s"}' % (
        str(uuid.UUID(int=1)).encode()
    )
    value = codec.decode(data)
    assert (value.name, value.level, value.ticket) == ("a", "high", uuid.UUID(int=1))
    assert value.since == date(2021, 3, 4)
    assert codec.encode(value) == data
    default = codec.decode(b'{"name":"b"}')
    assert (default.level, default.since, default.ticket) == (
        "low",
        date(2000, 1, 1),
        0,
    )
    assert fallbacks(models.TypedOptions) == before
    for document in [data, b'{"name":"b"}', b'{"name":"b","level":"mid"}']:
        assert_same_decoding(models.TypedOptions, document)


def test_recursive_union_is_depth_checked(models: ModuleType) -> None:
    """A class nested in itself through a union: compiled all the way down, and a
    chain too deep is an EncodeError / DecodeError, in a small-stack thread too."""
    codec = persist.codec_for(models.Chain)
    for end in (7, "end", None):
        chain = models.Chain(0, end, models.Color.RED)
        for value in range(1, 100):
            chain = models.Chain(value, chain, value)
        before = fallbacks(models.Chain)
        data = codec.encode(chain)
        assert data.startswith(b'{"value":99,"next":{"value":98,"next":')
        innermost = b'{"value":0,"next":' + json.dumps(end).encode() + b',"tag":"red"}'
        assert innermost in data and data.endswith(b',"tag":99}')
        assert codec.decode(data) == chain and codec.copy(chain) == chain
        assert fallbacks(models.Chain) == before
        assert_same_decoding(models.Chain, data)
    deep = models.Chain(0)
    for value in range(100_000):
        deep = models.Chain(value, deep)
    for call in (lambda: codec.encode(deep), lambda: codec.copy(deep)):
        with pytest.raises(persist.EncodeError):
            run_in_small_thread(call)
    document = b'{"value":1,"next":' * 5000 + b"1" + b"}" * 5000
    with pytest.raises(persist.DecodeError):
        run_in_small_thread(lambda: codec.decode(document))


@pytest.mark.parametrize("levels", [256, 257, 511, 600])
def test_trees_are_read_as_deep_as_they_are_written(
    models: ModuleType, levels: int
) -> None:
    """A recursive class 256 levels deep is written and read, in a small-stack
    thread too; a deeper document is a DecodeError of its own, never handed to
    the run-time codec (which would come back to compiled code for every level,
    on the same C stack) -- the C frames grew on Python 3.12+."""
    codec = persist.codec_for(models.Chain)
    chain = models.Chain(0)
    for _ in range(levels - 1):
        chain = models.Chain(1, chain)
    document = (
        b'{"value":1,"next":' * (levels - 1) + b'{"value":0}' + b"}" * (levels - 1)
    )
    before = fallbacks(models.Chain)
    if levels <= 256:
        assert run_in_small_thread(lambda: codec.decode(document)) == chain
        data = run_in_small_thread(lambda: codec.encode(chain))
        assert run_in_small_thread(lambda: codec.decode(data)) == chain
    else:
        with pytest.raises(persist.EncodeError, match="deeper than 256 levels"):
            run_in_small_thread(lambda: codec.encode(chain))
        with pytest.raises(
            persist.DecodeError, match=r"^Chain: nested deeper than 256 levels$"
        ):
            run_in_small_thread(lambda: codec.decode(document))
    assert fallbacks(models.Chain) == before


class Count(int):
    """An int subclass: compiled code hands a value holding one on."""


@pytest.mark.parametrize("levels", [255, 256, 257, 600, 5_000, 100_000])
def test_trees_handed_to_the_runtime_codec_are_counted_too(
    models: ModuleType, levels: int
) -> None:
    """A chain whose top field name is escaped goes to the run-time codec, which
    comes back to compiled code once per level on the same C stack (a segfault at
    600 levels in a small-stack thread): those levels count against the same 256.
    So do a chain of int subclasses written, and its copy."""
    codec = persist.codec_for(models.Chain)
    plain = b'{"value":1,"next":' * (levels - 1) + b'{"value":0}' + b"}" * (levels - 1)
    document = plain.replace(b'"value"', b'"valu\\u0065"', 1)
    subclassed = models.Chain(Count(0))
    for _ in range(levels - 1):
        subclassed = models.Chain(Count(1), subclassed)
    if levels <= 256:
        chain = models.Chain(0)
        for _ in range(levels - 1):
            chain = models.Chain(1, chain)
        assert run_in_small_thread(lambda: codec.decode(document)) == chain
        written = run_in_small_thread(lambda: codec.encode(subclassed))
        assert written == codec.encode(chain)
        assert run_in_small_thread(lambda: codec.copy(subclassed)) == chain
        return
    expected = TooDeepToDecode if levels < 1_000 else persist.DecodeError
    with pytest.raises(expected):
        run_in_small_thread(lambda: codec.decode(document))
    with pytest.raises(TooDeep, match=r"^Chain: nested deeper than 256 levels"):
        run_in_small_thread(lambda: codec.encode(subclassed))
    with pytest.raises(TooDeep, match=r"^Chain: cannot copy: nested deeper than 256"):
        run_in_small_thread(lambda: codec.copy(subclassed))
