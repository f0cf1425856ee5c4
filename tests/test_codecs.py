"""The codec registry and the canonical JSON every codec writes."""

import enum
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Optional

import attrs
import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import persist
from persist import codecs

UTC = UTC
PLUS3 = timezone(timedelta(hours=3))
MINUS530 = timezone(-timedelta(hours=5, minutes=30))


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.define
class User:
    name: str
    email: str
    age: int


@attrs.define
class Tagged:
    name: str
    tags: list[str]


@attrs.frozen
class Address:
    street: str
    city: str


@attrs.define
class Profile:
    """go-persist's fixture profile: JSON tags, nested struct, nil pointer/slice/map."""

    id: int
    nick: str
    score: float
    active: bool
    tags: list[str]
    attributes: dict[str, int] = attrs.field(metadata={"json": "attrs"})
    home: Address
    work: Address | None
    avatar: bytes
    created: datetime
    nickname: str = ""
    extra: dict[str, str] = attrs.Factory(dict)


@attrs.define
class GoUser:
    """single_users.db's User{Name, Email, Age}: Go field names as JSON keys."""

    name: str = attrs.field(metadata={"json": "Name"})
    email: str = attrs.field(metadata={"json": "Email"})
    age: int = attrs.field(metadata={"json": "Age"})


@attrs.define
class Product:
    name: str = attrs.field(metadata={"json": "Name"})
    price: float = attrs.field(metadata={"json": "Price"})


@attrs.define
class Note:
    text: str | None
    pinned: bool = False


class Money:
    """A type only a registered codec can store."""

    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and other.cents == self.cents


def encode_money(value: Money) -> bytes:
    if not isinstance(value, Money):
        raise TypeError(f"expected Money, got {type(value).__name__}")
    return f'"{value.cents // 100}.{value.cents % 100:02d}"'.encode()


def decode_money(data: bytes) -> Money:
    text = json.loads(data)
    if not isinstance(text, str):
        raise ValueError("Money must be a JSON string")
    return Money(int(text.replace(".", "")))


persist.register_codec(Money, encode_money, decode_money)


@attrs.define
class Order:
    id: int
    price: Money
    history: list[Money]


@attrs.define
class Box:
    """Falls to cattrs: a default that needs the half-built instance."""

    size: int
    label: str = attrs.field(
        default=attrs.Factory(lambda self: f"box {self.size}", takes_self=True)
    )


class Plain:
    """Neither attrs nor registered: nothing can store it."""


# --- what is written --------------------------------------------------------------

ENCODED = [
    (User, User("a", "b", 3), b'{"name":"a","email":"b","age":3}'),
    (str, "plain", b'"plain"'),
    (
        str,
        'q"b\\s/\b\f\n\r\t\x01\x1f\x7f',
        b'"q\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f"',
    ),
    (str, "line\u2028para\u2029", b'"line\\u2028para\\u2029"'),
    (str, "Ünïcødé 😀", '"Ünïcødé 😀"'.encode()),
    (int, 9007199254740993, b"9007199254740993"),
    (int, -(2**80), b"-1208925819614629174706176"),
    (float, 1e21, b"1e+21"),
    (float, 1.5e-07, b"1.5e-07"),
    (float, 3.0, b"3.0"),
    (float, -0.5, b"-0.5"),
    (bool, True, b"true"),
    (None, None, b"null"),
    (bytes, b"\x00\x01\x02\xfa\xff", b'"AAEC+v8="'),
    (bytes, b"", b'""'),
    (
        datetime,
        datetime(2020, 1, 2, 3, 4, 5, tzinfo=PLUS3),
        b'"2020-01-02T03:04:05+03:00"',
    ),
    (
        datetime,
        datetime(2025, 3, 14, 15, 9, 26, 535897, UTC),
        b'"2025-03-14T15:09:26.535897Z"',
    ),
    (
        datetime,
        datetime(2025, 3, 14, 15, 9, 26, 500000, UTC),
        b'"2025-03-14T15:09:26.5Z"',
    ),
    (
        datetime,
        datetime(1, 1, 1, 0, 0, 0, 10, MINUS530),
        b'"0001-01-01T00:00:00.00001-05:30"',
    ),
    (Color, Color.GREEN, b'"green"'),
    (Level, Level.LOW, b"1"),
    (list[int], [1, 2, 3], b"[1,2,3]"),
    (list[float], [1.0, 2.5], b"[1.0,2.5]"),
    (list[str], ["a", "\u2028"], b'["a","\\u2028"]'),
    (tuple[str, ...], ("a", "b"), b'["a","b"]'),
    (set[int], {7}, b"[7]"),
    (frozenset[str], frozenset({"x"}), b'["x"]'),
    (dict[str, float], {"a": 1.5, "b": 2.0}, b'{"a":1.5,"b":2.0}'),
    (dict[str, list[int]], {"k": [1]}, b'{"k":[1]}'),
    (Optional[int], None, b"null"),  # noqa: UP045 - typing.Optional itself
    (int | None, 5, b"5"),
    (
        list[Address | None],
        [None, Address("s", "c")],
        b'[null,{"street":"s","city":"c"}]',
    ),
    (
        Any,
        {"a": [1, 2.5, None, True, "x\u2028"]},
        b'{"a":[1,2.5,null,true,"x\\u2028"]}',
    ),
    (list, [1, "a", {"b": None}], b'[1,"a",{"b":null}]'),
    (dict, {"k": {"n": 1.5}}, b'{"k":{"n":1.5}}'),
    (Note, Note(None), b'{"text":null,"pinned":false}'),
    (
        Order,
        Order(1, Money(1234), [Money(5)]),
        b'{"id":1,"price":"12.34","history":["0.05"]}',
    ),
    (Money, Money(100), b'"1.00"'),
    (dict[int, str], {1: "a"}, b'{"1":"a"}'),
    (Box, Box(2, "two"), b'{"size":2,"label":"two"}'),
]


@pytest.mark.parametrize(("tp", "value", "expected"), ENCODED)
def test_encode_exact_bytes_and_round_trip(
    tp: Any, value: Any, expected: bytes
) -> None:
    """Each supported type is written as exact canonical bytes and read back equal."""
    codec = persist.codec_for(tp)
    assert codec.encode(value) == expected
    decoded = codec.decode(expected)
    assert decoded == value
    assert type(decoded) is type(value) or isinstance(value, enum.Enum) or tp is Any


@pytest.mark.parametrize(
    ("tp", "value", "expected"),
    [
        (float, 3, b"3.0"),
        (Product, Product("x", 2), b'{"Name":"x","Price":2.0}'),
        (int, Level.HIGH, b"2"),
        (Any, ("t", 1), b'["t",1]'),
        (Any, Level.LOW, b"1"),
    ],
)
def test_encode_accepts_kin(tp: Any, value: Any, expected: bytes) -> None:
    """An int for a float, an int subclass for an int, a tuple for an array."""
    assert persist.codec_for(tp).encode(value) == expected


def test_encode_matches_json_dumps_for_strings() -> None:
    """Strings are escaped as json.dumps(ensure_ascii=False) does, plus U+2028/9."""
    text = "".join(map(chr, range(0x80))) + "é\u2028"
    expected = json.dumps(text, ensure_ascii=False).replace("\u2028", "\\u2028")
    assert persist.codec_for(str).encode(text) == expected.encode()


# --- what is read -------------------------------------------------------------------

DECODED = [
    (float, b"1", 1.0),
    (float, b"-0", 0.0),
    (list[int], b"null", []),
    (tuple[int, ...], b"null", ()),
    (set[str], b"null", set()),
    (frozenset[int], b"null", frozenset()),
    (dict[str, int], b"null", {}),
    (bytes, b"null", b""),
    (list[float], b"[1,2.5]", [1.0, 2.5]),
    (list[int] | None, b"null", None),
    (
        datetime,
        b'"2025-03-14T15:09:26.535897932Z"',
        datetime(2025, 3, 14, 15, 9, 26, 535897, UTC),
    ),
    (
        datetime,
        b'"2025-03-14T15:09:26.9999999Z"',
        datetime(2025, 3, 14, 15, 9, 26, 999999, UTC),
    ),
    (
        datetime,
        b'"2025-03-14t15:09:26.1z"',
        datetime(2025, 3, 14, 15, 9, 26, 100000, UTC),
    ),
    (
        datetime,
        b'"2020-01-02T03:04:05-00:00"',
        datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
    ),
    (str, b'"Bob \\u003cBuilder\\u003e \\u0026 Co"', "Bob <Builder> & Co"),
    (str, b'"\\ud83d\\ude00"', "😀"),
    (str, b' "padded" ', "padded"),
    (
        User,
        b'{"age":3,"unknown":[1,{"x":null}],"email":"b","name":"a"}',
        User("a", "b", 3),
    ),
    (
        Profile,
        b'{"id":1,"nick":"n","score":1,"active":true,"tags":null,"attrs":null,'
        b'"home":{"street":"s","city":"c"},"work":null,"avatar":null,"created":"2020-01-02T03:04:05Z"}',
        Profile(
            1,
            "n",
            1.0,
            True,
            [],
            {},
            Address("s", "c"),
            None,
            b"",
            datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
        ),
    ),
    (Note, b'{"text":"t"}', Note("t", False)),
]


@pytest.mark.parametrize(("tp", "data", "expected"), DECODED)
def test_decode_accepts(tp: Any, data: bytes, expected: Any) -> None:
    """Go's forms are read: int for float, null for empty, nanoseconds, unknown keys."""
    decoded = persist.codec_for(tp).decode(data)
    assert decoded == expected
    assert type(decoded) is type(expected)


def test_decoded_offset_is_kept() -> None:
    """A +03:00 datetime comes back with that offset and is written with it again."""
    codec = persist.codec_for(datetime)
    value = codec.decode(b'"2020-01-02T03:04:05+03:00"')
    assert value.utcoffset() == timedelta(hours=3)
    assert codec.encode(value) == b'"2020-01-02T03:04:05+03:00"'


# --- errors ------------------------------------------------------------------

ENCODE_ERRORS = [
    (User, "x", TypeError, "expected User, got str"),
    (User, Address("s", "c"), TypeError, "expected User, got Address"),
    (int, True, TypeError, "expected int, got bool"),
    (int, 1.5, TypeError, "expected int, got float"),
    (str, b"x", TypeError, "expected str, got bytes"),
    (float, "1", TypeError, "expected float, got str"),
    (list[int], (1, 2), TypeError, "expected list, got tuple"),
    (Color, "red", TypeError, "expected Color, got str"),
    (User | None, 5, TypeError, "expected User, got int"),
    (Money, 5, TypeError, "expected Money, got int"),
    (User, User("a", "b", "3"), persist.EncodeError, "User.age: expected int, got str"),
    (
        User,
        User("a", None, 3),
        persist.EncodeError,
        "User.email: expected str, got None",
    ),
    (
        Tagged,
        Tagged("t", ["a", "b", 3]),
        persist.EncodeError,
        "Tagged.tags[2]: expected str, got int",
    ),
    (float, math.nan, persist.EncodeError, "float: NaN is not valid JSON"),
    (float, -math.inf, persist.EncodeError, "float: -Infinity is not valid JSON"),
    (float, 10**400, persist.EncodeError, "float: int too large for a float"),
    (
        Product,
        Product("p", math.nan),
        persist.EncodeError,
        "Product.Price: NaN is not valid JSON",
    ),
    (
        list[float],
        [1.0, math.inf],
        persist.EncodeError,
        "list[float][1]: Infinity is not valid JSON",
    ),
    (
        dict[str, int],
        {"a": 1, 2: 2},
        persist.EncodeError,
        "dict[str, int]: dict key must be str, got int",
    ),
    (
        dict[str, int],
        {"a": "1"},
        persist.EncodeError,
        "dict[str, int].a: expected int, got str",
    ),
    (Any, {"a": {1: 2}}, persist.EncodeError, "Any.a: dict key must be str, got int"),
    (Any, [1, [math.nan]], persist.EncodeError, "Any[1][0]: NaN is not valid JSON"),
    (Any, {"s": {1, 2}}, persist.EncodeError, "Any.s: set is not a JSON value"),
    (
        datetime,
        datetime(2020, 1, 2),
        persist.EncodeError,
        "datetime: naive datetime: RFC 3339 needs a UTC offset",
    ),
    (str, "a\ud800", persist.EncodeError, "str: lone surrogate in a str"),
    (
        list[str],
        ["ok", "\udfff"],
        persist.EncodeError,
        "list[str][1]: lone surrogate in a str",
    ),
    (
        dict[str, str],
        {"k\ud800": "v"},
        persist.EncodeError,
        "dict[str, str]: lone surrogate in a str",
    ),
    (
        Profile,
        Profile(
            1,
            "n",
            0.0,
            True,
            [],
            {},
            Address("s", 5),
            None,
            b"",
            datetime(2020, 1, 1, tzinfo=UTC),
        ),
        persist.EncodeError,
        "Profile.home.city: expected str, got int",
    ),
    (
        Order,
        Order(1, Money(1), [Money(1), "x"]),
        persist.EncodeError,
        "Order.history[1]: expected Money, got str",
    ),
]


@pytest.mark.parametrize(("tp", "value", "error", "message"), ENCODE_ERRORS)
def test_encode_errors(
    tp: Any, value: Any, error: type[Exception], message: str
) -> None:
    """A wrong top-level type is a TypeError; a wrong inner value an EncodeError."""
    with pytest.raises(error) as info:
        persist.codec_for(tp).encode(value)
    assert type(info.value) is error
    assert str(info.value) == message


DECODE_ERRORS = [
    (User, b'{"name":"a","email":"b"}', "User.age: missing field"),
    (User, b'{"name":"a","email":"b","age":1.0}', "User.age: expected int, got float"),
    (User, b'{"name":"a","email":"b","age":true}', "User.age: expected int, got bool"),
    (User, b'{"name":null,"email":"b","age":1}', "User.name: expected str, got None"),
    (User, b'["a","b",3]', "User: expected object, got list"),
    (Note, b'{"pinned":true}', "Note.text: missing field"),
    (
        Profile,
        b'{"id":1,"nick":"n","score":1,"active":true,"tags":[],"attrs":{},'
        b'"home":{"street":"s","city":5},"work":null,"avatar":"","created":"2020-01-02T03:04:05Z"}',
        "Profile.home.city: expected str, got int",
    ),
    (Tagged, b'{"name":"t","tags":["a",2]}', "Tagged.tags[1]: expected str, got int"),
    (float, b"true", "float: expected float, got bool"),
    (float, b"NaN", "float: NaN is not valid JSON"),
    (float, b"1e400", "float: Infinity is not valid JSON"),
    (float, b"-Infinity", "float: -Infinity is not valid JSON"),
    (
        Product,
        b'{"Name":"p","Price":-1e999}',
        "Product.Price: -Infinity is not valid JSON",
    ),
    (Any, b'{"a":[1,NaN]}', "Any.a[1]: NaN is not valid JSON"),
    (
        dict[str, Any],
        b'{"a":{"b":1E999}}',
        "dict[str, Any].a.b: Infinity is not valid JSON",
    ),
    (list, b"[Infinity]", "list[0]: Infinity is not valid JSON"),
    (int, b"null", "int: expected int, got None"),
    (int, b"2.0", "int: expected int, got float"),
    (str, b'"\\ud800"', "str: lone surrogate in a str"),
    (str, b'"\xed\xa0\x80"', "str: lone surrogate in a str"),
    (dict[str, str], b'{"k":"\\uDC00x"}', "dict[str, str].k: lone surrogate in a str"),
    (str, b'"a" "b"', "str: invalid JSON: Trailing data"),
    (int, b"", "int: invalid JSON: Expected object or value"),
    (Optional[int], b'"x"', "Optional[int]: expected int, got str"),  # noqa: UP045
    (list[int], b'{"a":1}', "list[int]: expected list, got dict"),
    (dict[str, int], b"[]", "dict[str, int]: expected object, got list"),
    (Color, b'"purple"', "Color: 'purple' is not a valid Color"),
    (bytes, b"5", "bytes: expected base64 str, got int"),
    (datetime, b'"2020-01-02"', "datetime: invalid RFC 3339 datetime '2020-01-02'"),
    (
        datetime,
        b'"2020-01-02T24:00:00Z"',
        "datetime: invalid RFC 3339 datetime '2020-01-02T24:00:00Z': "
        "hour must be in 0..23",
    ),
    (
        datetime,
        b'"2020-13-02T00:00:00Z"',
        "datetime: invalid RFC 3339 datetime '2020-13-02T00:00:00Z': "
        "month must be in 1..12",
    ),
    (
        Order,
        b'{"id":1,"price":"1.00","history":[7]}',
        "Order.history[0]: Money must be a JSON string",
    ),
]


@pytest.mark.parametrize(("tp", "data", "message"), DECODE_ERRORS)
def test_decode_errors(tp: Any, data: bytes, message: str) -> None:
    """Bad JSON, NaN, surrogates, wrong types, missing fields: DecodeError with path."""
    with pytest.raises(persist.DecodeError) as info:
        persist.codec_for(tp).decode(data)
    assert str(info.value) == message


def test_decode_error_for_invalid_base64() -> None:
    """Base64 is strict: bad padding is a DecodeError naming the field."""
    with pytest.raises(
        persist.DecodeError, match=r"^Profile\.avatar: invalid base64: "
    ):
        persist.codec_for(Profile).decode(
            b'{"id":1,"nick":"n","score":1,"active":true,"tags":[],"attrs":{},"home":'
            b'{"street":"s","city":"c"},"work":null,"avatar":"AAEC+v8","created":"2020-01-02T03:04:05Z"}'
        )


# --- the registry ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "source"),
    [
        (str, "builtin"),
        (int, "builtin"),
        (list[User], "builtin"),
        (datetime | None, "builtin"),
        (Any, "builtin"),
        (User, "runtime"),
        (Money, "registered"),
        (Order, "runtime"),
        (dict[int, str], "cattrs"),
        (Box, "cattrs"),
    ],
)
def test_codec_source(tp: Any, source: str) -> None:
    """codec_for says which level serves each type."""
    codec = persist.codec_for(tp)
    assert codec.source == source
    assert codec.value_type == tp


def test_codec_for_is_cached() -> None:
    """The same type gets the same codec object."""
    assert persist.codec_for(User) is persist.codec_for(User)
    assert persist.codec_for(list[int]) is persist.codec_for(list[int])


@pytest.mark.parametrize("tp", [Plain, int | complex, list[Plain], complex])
def test_unsupported_type_is_a_type_error(tp: Any) -> None:
    """A type no level can store fails at codec_for time."""
    with pytest.raises(TypeError, match="persist has no codec for"):
        persist.codec_for(tp)


def test_attrs_class_with_unsupported_field_is_a_type_error() -> None:
    """An attrs class is refused when one of its fields cannot be stored."""

    @attrs.define
    class Holder:
        thing: Plain

    with pytest.raises(TypeError, match="persist has no codec for Plain"):
        persist.codec_for(Holder)


def test_registered_codec_wins_over_runtime() -> None:
    """A codec registered for an attrs class replaces the generated one, nested too."""

    @attrs.define
    class Point:
        x: int
        y: int

    @attrs.define
    class Segment:
        ends: list[Point]

    assert persist.codec_for(Point).source == "runtime"
    persist.register_codec(
        Point,
        lambda p: f"[{p.x},{p.y}]".encode(),
        lambda data: Point(*json.loads(data)),
    )
    point = persist.codec_for(Point)
    assert point.source == "registered"
    assert point.encode(Point(1, 2)) == b"[1,2]"
    assert point.copy(Point(1, 2)) == Point(1, 2)
    segment = persist.codec_for(Segment)
    assert segment.encode(Segment([Point(1, 2)])) == b'{"ends":[[1,2]]}'
    assert segment.decode(b'{"ends":[[3,4]]}') == Segment([Point(3, 4)])


def test_registered_copy_is_used() -> None:
    """A registered copy serves copy(); without one, copy is decode(encode(v))."""

    class Tag:
        def __init__(self, name: str) -> None:
            self.name = name

    persist.register_codec(
        Tag, lambda t: json.dumps(t.name).encode(), lambda d: Tag(json.loads(d))
    )
    copied = persist.codec_for(Tag).copy(Tag("a"))
    assert (type(copied), copied.name) == (Tag, "a")
    persist.register_codec(
        Tag,
        lambda t: json.dumps(t.name).encode(),
        lambda d: Tag(json.loads(d)),
        lambda t: "copied",
    )
    assert persist.codec_for(Tag).copy(Tag("a")) == "copied"


def _compiled_functions(cls: type) -> tuple[Any, Any, Any]:
    return (lambda value: b"compiled", lambda data: cls(1), lambda value: value)


def test_register_compiled_with_matching_fingerprint() -> None:
    """A compiled codec whose fingerprint matches the class serves it."""

    @attrs.define
    class Stamped:
        n: int

    persist.codecs.register_compiled(
        Stamped, persist.codegen.fingerprint(Stamped), *_compiled_functions(Stamped)
    )
    codec = persist.codec_for(Stamped)
    assert codec.source == "compiled"
    assert codec.encode(Stamped(5)) == b"compiled"
    assert codec.decode(b"{}") == Stamped(1)


def test_register_compiled_with_stale_fingerprint_warns() -> None:
    """A compiled codec of a changed class is ignored with a warning: runtime serves."""

    @attrs.define
    class Changed:
        n: int

    persist.codecs.register_compiled(
        Changed, "0123456789abcdef", *_compiled_functions(Changed)
    )
    with pytest.warns(codecs.StaleCodecWarning, match="changed since generation"):
        codec = persist.codec_for(Changed)
    assert codec.source == "runtime"
    assert codec.encode(Changed(5)) == b'{"n":5}'


def test_user_converter_hooks_win() -> None:
    """With converter= the whole type goes through that cattrs Converter."""

    @attrs.define
    class Point:
        x: int
        y: int

    converter = cattrs.Converter()
    converter.register_unstructure_hook(Point, lambda p: [p.x, p.y])
    converter.register_structure_hook(Point, lambda value, _: Point(*value))
    codec = persist.codec_for(Point, converter=converter)
    assert codec.source == "cattrs"
    assert codec.encode(Point(1, 2)) == b"[1,2]"
    assert codec.decode(b"[3,4]") == Point(3, 4)
    assert codec.copy(Point(1, 2)) == Point(1, 2)
    assert persist.codec_for(Point).source == "runtime"


def test_cattrs_path_errors() -> None:
    """The cattrs path refuses wrong top-level types, NaN and structure failures."""
    codec = persist.codec_for(User, converter=codecs.default_converter)
    with pytest.raises(TypeError, match="expected User, got int"):
        codec.encode(5)
    with pytest.raises(
        persist.DecodeError, match=r"^User\.age: NaN is not valid JSON$"
    ):
        codec.decode(b'{"name":"a","email":"b","age":NaN}')
    with pytest.raises(
        persist.DecodeError, match=r"^User: required field missing @ \$\.age$"
    ):
        codec.decode(b'{"name":"a","email":"b"}')


# --- copies ------------------------------------------------------------------


def test_copy_is_deep_enough() -> None:
    """Mutating a copy leaves the original alone, down to nested lists and dicts."""
    profile = persist.codec_for(Profile).decode(
        b'{"id":1,"nick":"n","score":1,"active":true,"tags":["a"],"attrs":{"x":1},'
        b'"home":{"street":"s","city":"c"},"work":null,"avatar":"","created":"2020-01-02T03:04:05Z"}'
    )
    copied = persist.codec_for(Profile).copy(profile)
    copied.tags.append("b")
    copied.attributes["y"] = 2
    copied.extra["k"] = "v"
    assert copied != profile
    assert (profile.tags, profile.attributes, profile.extra) == (["a"], {"x": 1}, {})
    assert copied.home is profile.home  # frozen, all fields immutable: shared


def test_copy_does_not_encode() -> None:
    """An attrs copy is built field by field, so even an unencodable value copies."""
    product = Product("p", math.nan)
    copied = persist.codec_for(Product).copy(product)
    assert copied is not product
    assert math.isnan(copied.price)


@pytest.mark.parametrize(
    ("tp", "value"),
    [
        (list[int], [1, 2]),
        (set[str], {"a"}),
        (dict[str, list[int]], {"a": [1]}),
        (Any, {"a": [{"b": 1}]}),
        (list, [[1]]),
        (list[int] | None, [1]),
    ],
)
def test_container_copy_is_independent(tp: Any, value: Any) -> None:
    """Container copies are equal but share no mutable part with the original."""
    copied = persist.codec_for(tp).copy(value)
    assert copied == value
    assert copied is not value
    if isinstance(value, dict):
        assert next(iter(copied.values())) is not next(iter(value.values()))
    if isinstance(value, list) and isinstance(value[0], list):
        assert copied[0] is not value[0]


# --- the go-persist fixture ----------------------------------------------------------

# Value lines of /work/shared/fixtures/go-persist/multi_maps.db and single_users.db,
# as go-persist v1.9 wrote them.
GO_LINES = [
    (
        Profile,
        b'{"id":1,"nick":"neo","score":-0.5,"active":true,"tags":["a","b"],"attrs":{"x":1,"y":-2},'
        b'"home":{"street":"Main St 1","city":"Zion"},'
        b'"work":{"street":"Office","city":"Matrix"},"avatar":"AAEC+v8=",'
        b'"created":"2025-03-14T15:09:26.535897932Z","nickname":"the one",'
        b'"extra":{"k":"v"}}',
        Profile(
            1,
            "neo",
            -0.5,
            True,
            ["a", "b"],
            {"x": 1, "y": -2},
            Address("Main St 1", "Zion"),
            Address("Office", "Matrix"),
            b"\x00\x01\x02\xfa\xff",
            datetime(2025, 3, 14, 15, 9, 26, 535897, UTC),
            "the one",
            {"k": "v"},
        ),
    ),
    (
        Profile,
        b'{"id":2,"nick":"empty","score":0,"active":false,"tags":null,"attrs":null,'
        b'"home":{"street":"","city":""},"work":null,"avatar":null,"created":"2020-01-02T03:04:05+03:00"}',
        Profile(
            2,
            "empty",
            0.0,
            False,
            [],
            {},
            Address("", ""),
            None,
            b"",
            datetime(2020, 1, 2, 3, 4, 5, tzinfo=PLUS3),
        ),
    ),
    (Product, b'{"Name":"Gadget","Price":1e+21}', Product("Gadget", 1e21)),
    (Product, b'{"Name":"Tiny","Price":1.5e-07}', Product("Tiny", 1.5e-07)),
    (Product, b'{"Name":"Widget","Price":19.99}', Product("Widget", 19.99)),
    (int, b"9007199254740993", 9007199254740993),
    (int, b"-42", -42),
    (str, b'"line1\\nline2 \\u2028 \\u0001 end"', "line1\nline2 \u2028 \u0001 end"),
    (
        dict[str, Any],
        b'{"Debug":true,"MaxConnections":100}',
        {"Debug": True, "MaxConnections": 100},
    ),
    (
        GoUser,
        b'{"Name":"Bob \\u003cBuilder\\u003e \\u0026 Co",'
        b'"Email":"bob@example.com","Age":41}',
        GoUser("Bob <Builder> & Co", "bob@example.com", 41),
    ),
    (
        GoUser,
        b'{"Name":"Key\\twith\\ttabs\\nand newline","Email":"","Age":0}',
        GoUser("Key\twith\ttabs\nand newline", "", 0),
    ),
    (
        GoUser,
        '{"Name":"Carol \\"C\\" Ünïcødé 😀","Email":"carol@example.com",'
        '"Age":33}'.encode(),
        GoUser('Carol "C" Ünïcødé 😀', "carol@example.com", 33),
    ),
]


@pytest.mark.parametrize(("tp", "line", "expected"), GO_LINES)
def test_go_fixture_values(tp: Any, line: bytes, expected: Any) -> None:
    """Values go-persist wrote decode to the expected objects and survive a rewrite."""
    codec = persist.codec_for(tp)
    value = codec.decode(line)
    assert value == expected
    assert codec.decode(codec.encode(value)) == expected


# --- equivalence of the paths ---------------------------------------------------------


@attrs.define
class Item:
    name: str = attrs.field(metadata={"json": "Name"})
    qty: int
    price: float
    tags: list[str]
    counts: dict[str, int]
    codes: frozenset[int]
    when: datetime
    blob: bytes
    note: str | None
    color: Color
    extra: Any


@attrs.frozen
class Basket:
    owner: GoUser | None
    items: tuple[Item, ...]
    labels: dict[str, Address | None]


_text = st.text(max_size=8)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3)
    ),
    max_leaves=8,
)
_zones = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_items = st.builds(
    Item,
    name=_text,
    qty=st.integers(),
    price=st.floats(allow_nan=False, allow_infinity=False),
    tags=st.lists(_text, max_size=4),
    counts=st.dictionaries(_text, st.integers(), max_size=3),
    codes=st.frozensets(st.integers(-5, 5), max_size=3),
    when=st.datetimes(timezones=_zones),
    blob=st.binary(max_size=8),
    note=st.none() | _text,
    color=st.sampled_from(Color),
    extra=_json_values,
)
_baskets = st.builds(
    Basket,
    owner=st.none() | st.builds(GoUser, _text, _text, st.integers()),
    items=st.lists(_items, max_size=3).map(tuple),
    labels=st.dictionaries(
        _text, st.none() | st.builds(Address, _text, _text), max_size=3
    ),
)


@settings(max_examples=150, deadline=None)
@given(st.one_of(_items, _baskets))
def test_runtime_and_cattrs_paths_agree(value: Any) -> None:
    """Runtime and cattrs codecs write the same bytes; json.loads sees unstructure()."""
    tp = type(value)
    runtime = persist.codec_for(tp)
    reference = persist.codec_for(tp, converter=codecs.default_converter)
    data = runtime.encode(value)
    assert runtime.source == "runtime"
    assert reference.source == "cattrs"
    assert reference.encode(value) == data
    assert b"\n" not in data
    assert runtime.decode(data) == value
    assert reference.decode(data) == value
    assert runtime.copy(value) == value
    assert json.loads(data) == json.loads(
        json.dumps(codecs.default_converter.unstructure(value))
    )
