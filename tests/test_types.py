"""The value types beyond JSON's own: UUID, Decimal, date, time, timedelta,
Literal, unions JSON tells apart, NewType -- in a real store, in exact bytes,
and refused (values, inputs, types) with the errors the contract names.

Compiled codecs of these types are checked against the run-time ones in
test_compiled.py (tests/compiled_models.py: Typed, TypedOptions).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal, NewType

import attrs
import pytest
from conftest import HEADER, read_bytes, set_record

import persist
from persist import DecodeError, EncodeError
from persist.codecs import default_converter

ID = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
OrderId = NewType("OrderId", int)
Mode = Literal["on", "off", 0, False, None]


@attrs.define
class Order:
    id: uuid.UUID
    order: OrderId
    total: Decimal
    due: date
    at: time
    took: timedelta
    mode: Mode
    key: int | str
    amount: int | float
    note: str | None | int  # noqa: RUF036 -- None mid-union on purpose
    lines: list[int] | str
    ids: list[uuid.UUID] = attrs.Factory(list)


@attrs.define
class Options:
    """kw_only and init=False fields of the new types, with defaults."""

    name: str
    level: Literal["low", "high"] = attrs.field(default="low", kw_only=True)
    since: date = attrs.field(init=False, factory=lambda: date(2000, 1, 1))
    limit: timedelta = attrs.field(default=timedelta(seconds=1), kw_only=True)


ORDER = Order(
    id=ID,
    order=OrderId(7),
    total=Decimal("1.10"),
    due=date(2024, 2, 29),
    at=time(9, 30, 0, 250000, timezone(timedelta(hours=-3, minutes=-30))),
    took=timedelta(seconds=90, microseconds=1),
    mode="off",
    key="k1",
    amount=3,
    note=5,
    lines="none",
)
ORDER_JSON = (
    '{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","order":7,"total":"1.10",'
    '"due":"2024-02-29","at":"09:30:00.250000-03:30","took":90000001000,'
    '"mode":"off","key":"k1","amount":3,"note":5,"lines":"none","ids":[]}'
)


def encode(tp: Any, value: Any) -> bytes:
    return persist.codec_for(tp).encode(value)


def decode(tp: Any, data: bytes) -> Any:
    return persist.codec_for(tp).decode(data)


# --- round trips through a store ------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "value", "text"),
    [
        (uuid.UUID, ID, '"6ba7b810-9dad-11d1-80b4-00c04fd430c8"'),
        (Decimal, Decimal("1.10"), '"1.10"'),
        (Decimal, Decimal("-0.000"), '"-0.000"'),
        (Decimal, Decimal("1E+3"), '"1E+3"'),
        (
            Decimal,
            Decimal("123456789012345678901234567890.5"),
            '"123456789012345678901234567890.5"',
        ),
        (date, date(1, 1, 1), '"0001-01-01"'),
        (time, time(0, 0), '"00:00:00"'),
        (time, time(23, 59, 59, 999999, UTC), '"23:59:59.999999+00:00"'),
        (timedelta, timedelta(0), "0"),
        (timedelta, timedelta(microseconds=-1), "-1000"),
        (  # Go's largest Duration, to the microsecond
            timedelta,
            timedelta(days=106751, seconds=85636, microseconds=854775),
            "9223372036854775000",
        ),
        (Mode, None, "null"),
        (Mode, 0, "0"),
        (Mode, False, "false"),
        (int | str, "5", '"5"'),
        (float | str, 2.0, "2.0"),
        (OrderId, OrderId(3), "3"),
        (Order, ORDER, ORDER_JSON),
    ],
)
def test_round_trip_through_a_store(db_path, tp: Any, value: Any, text: Any) -> None:
    """set, close, reopen, get: the value comes back; the file holds the exact JSON."""
    with persist.Store(db_path) as store:
        store.map("m", tp).set("k", value)
    assert read_bytes(db_path) == HEADER + set_record("m:k", text)
    with persist.Store(db_path) as store:
        got = store.map("m", tp).get("k")
    assert got == value
    assert type(got) is type(value)


def test_decimal_keeps_every_digit_and_its_exponent() -> None:
    """A Decimal string is read exactly: trailing zeros and exponent kept."""
    for text in ["1.10", "-0.000", "1E+3", "1e-7", "+5", ".5", "5.", "3" * 60]:
        got = decode(Decimal, f'"{text}"'.encode())
        assert got.as_tuple() == Decimal(text).as_tuple()


def test_decimal_from_a_json_number() -> None:
    """An integer is exact; a number with a fraction comes through a float's text."""
    assert decode(Decimal, b"12345678901234567890123") == Decimal(
        "12345678901234567890123"
    )
    assert str(decode(Decimal, b"1.10")) == "1.1"  # documented: a float's shortest text
    assert str(decode(Decimal, b"1e2")) == "100.0"
    assert str(decode(list[Decimal], b'[0.1,"0.10"]')[0]) == "0.1"


def test_uuid_forms_go_accepts() -> None:
    """Read: canonical in any case, braces, urn:uuid:, 32 hex digits."""
    text = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
    for form in [
        text,
        text.upper(),
        "{" + text + "}",
        "urn:uuid:" + text,
        "URN:UUID:" + text.upper(),
        text.replace("-", ""),
    ]:
        assert decode(uuid.UUID, f'"{form}"'.encode()) == ID, form
    assert encode(uuid.UUID, uuid.UUID(text.upper())) == f'"{text}"'.encode()


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("12:00:00", time(12)),
        ("12:00:00.5", time(12, 0, 0, 500000)),
        ("12:00:00.123456789", time(12, 0, 0, 123456)),  # civil.Time: ns cut
        ("12:00:00Z", time(12, tzinfo=UTC)),
        ("12:00:00-01:30", time(12, tzinfo=timezone(-timedelta(hours=1.5)))),
    ],
)
def test_time_forms(text: str, want: time) -> None:
    """A time reads with 1 to 9 fraction digits and an optional offset."""
    got = decode(time, f'"{text}"'.encode())
    assert got == want
    assert got.utcoffset() == want.utcoffset()


@pytest.mark.parametrize(
    ("nanoseconds", "micros"),
    [
        (1499, 1),
        (1500, 2),  # half to even: up
        (2500, 2),  # half to even: down
        (2501, 3),
        (-1500, -2),
        (-2500, -2),
        (-2501, -3),
        (2**63 - 1, 9223372036854776),
        (-(2**63), -9223372036854776),
    ],
)
def test_timedelta_rounds_half_to_even(nanoseconds: int, micros: int) -> None:
    """Nanoseconds round to the nearest microsecond, a tie to the even one."""
    got = decode(timedelta, str(nanoseconds).encode())
    assert got == timedelta(microseconds=micros)
    assert decode(list[timedelta], f"[{nanoseconds}]".encode()) == [got]


def test_new_type_is_its_supertype() -> None:
    """A NewType field is written and read as its supertype, at every level."""
    assert persist.codec_for(OrderId).source == "builtin"
    assert decode(list[OrderId], b"[1,2]") == [1, 2]
    with pytest.raises(TypeError, match="expected int, got str"):
        encode(OrderId, "7")


def test_kw_only_and_init_false_fields() -> None:
    """A decoder passes kw_only fields by name and sets init=False ones afterwards."""
    codec = persist.codec_for(Options)
    value = Options("a", level="high", limit=timedelta(0))
    value.since = date(2020, 5, 6)
    data = codec.encode(value)
    assert data == b'{"name":"a","level":"high","since":"2020-05-06","limit":0}'
    assert codec.decode(data) == value
    assert codec.decode(b'{"name":"b"}') == Options("b")  # defaults apply
    assert codec.decode(b'{"name":"b"}').since == date(2000, 1, 1)


# --- unions and Literals --------------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "data", "want"),
    [
        (int | str, b"5", 5),
        (int | str, b'"5"', "5"),
        (int | float, b"5", 5),
        (int | float, b"5.0", 5.0),
        (float | str, b"5", 5.0),  # no int member: the float takes the integer
        (str | None | int, b"null", None),
        (str | None | int, b"7", 7),
        (list[int] | str, b"[1,2]", [1, 2]),
        (list[int] | str, b'"x"', "x"),
        (dict[str, int] | list[str], b'{"a":1}', {"a": 1}),
        (uuid.UUID | int, b'"6ba7b810-9dad-11d1-80b4-00c04fd430c8"', ID),
        (date | timedelta, b'"2020-01-02"', date(2020, 1, 2)),
        (date | timedelta, b"1000", timedelta(microseconds=1)),
        (Decimal | int, b"3", 3),
        (Decimal | int, b"3.5", Decimal("3.5")),
        (Literal["a", "b"] | int, b'"b"', "b"),
        (bool | int, b"true", True),
    ],
)
def test_union_member_is_chosen_by_json_kind(tp: Any, data: bytes, want: Any) -> None:
    """The JSON kind picks the member; what it reads is that member's type."""
    got = decode(tp, data)
    assert got == want
    assert type(got) is type(want)


@pytest.mark.parametrize(
    ("tp", "value", "data"),
    [
        (int | float, 3, b"3"),
        (int | float, 3.0, b"3.0"),
        (float | int, 3, b"3"),  # the exact type wins over the float's leniency
        (bool | int, True, b"true"),
        (bool | int, 1, b"1"),
        (str | None | int, None, b"null"),
        (date | int, date(2020, 1, 2), b'"2020-01-02"'),
        (list[int] | str, [1], b"[1]"),
    ],
)
def test_union_member_is_chosen_by_value_type(tp: Any, value: Any, data: bytes) -> None:
    """A value is written by the member of its own type."""
    assert encode(tp, value) == data


@pytest.mark.parametrize(
    ("tp", "names"),
    [
        (str | bytes, "str and bytes"),
        (str | uuid.UUID, "str and UUID"),
        (date | datetime, None),  # both strings, too
        (int | timedelta, "int and timedelta"),
        (float | Decimal, None),  # both take an integer
        (Literal["a"] | str, None),
    ],
)
def test_union_json_cannot_tell_apart_fails_at_map(
    db_path, tp: Any, names: Any
) -> None:
    """Two members of one JSON kind: TypeError at store.map(), naming the union."""
    with persist.Store(db_path) as store, pytest.raises(TypeError) as caught:
        store.map("m", tp)
    assert "JSON cannot tell" in str(caught.value)
    if names is not None:
        assert names in str(caught.value)
    assert read_bytes(db_path) == HEADER


@attrs.define
class Cat:
    meows: int


@attrs.define
class Dog:
    barks: int


@attrs.define
class Pet:
    animal: Cat | Dog


def test_two_attrs_classes_in_a_union_fail_naming_the_field(db_path) -> None:
    """A union of two attrs classes (both objects) fails, naming the field and union."""
    with persist.Store(db_path) as store, pytest.raises(TypeError) as caught:
        store.map("m", Pet)
    assert str(caught.value).startswith("Pet.animal: Cat | Dog: ")
    assert "Cat and Dog" in str(caught.value)


def test_literal_values_are_checked_both_ways() -> None:
    """A value outside the Literal: EncodeError / DecodeError naming the path."""
    codec = persist.codec_for(Order)
    with pytest.raises(EncodeError, match=r"^Order\.mode: 'of' is not one of "):
        codec.encode(attrs.evolve(ORDER, mode="of"))
    bad = ORDER_JSON.replace('"mode":"off"', '"mode":"of"').encode()
    with pytest.raises(DecodeError, match=r"^Order\.mode: 'of' is not one of "):
        codec.decode(bad)
    # 0 is listed, 1 is not; False is listed, but 0 is not False
    assert decode(Mode, b"0") == 0 and type(decode(Mode, b"0")) is int
    for data in [b"1", b'"On"', b"true", b"0.0"]:
        with pytest.raises(DecodeError, match="is not one of"):
            decode(Mode, data)
    with pytest.raises(TypeError, match="expected Literal"):
        encode(Mode, 1.5)
    with pytest.raises(EncodeError, match="True is not one of"):
        encode(Mode, True)


def test_literal_of_other_values_fails_at_map() -> None:
    """A Literal of a float (or an enum member) is refused at codec_for."""
    with pytest.raises(TypeError, match="a Literal value must be"):
        persist.codec_for(Literal[1.5])

    @attrs.define
    class Holder:
        value: Literal[b"x"]

    with pytest.raises(TypeError, match=r"^Holder\.value: Literal\[b'x'\]"):
        persist.codec_for(Holder)


# --- refused values and inputs --------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "value", "error", "message"),
    [
        (Decimal, Decimal("NaN"), EncodeError, "Decimal NaN is not valid JSON"),
        (Decimal, Decimal("sNaN"), EncodeError, "Decimal NaN is not valid JSON"),
        (Decimal, Decimal("-Infinity"), EncodeError, "-Infinity is not valid JSON"),
        (Decimal, 1.5, TypeError, "expected Decimal, got float"),
        (uuid.UUID, str(ID), TypeError, "expected UUID, got str"),
        (date, datetime(2020, 1, 2), TypeError, "expected date, got datetime"),
        (time, datetime(2020, 1, 2), TypeError, "expected time, got datetime"),
        (
            time,
            time(1, tzinfo=timezone(timedelta(seconds=30))),
            EncodeError,
            "UTC offset with seconds",
        ),
        (timedelta, timedelta(days=106752), EncodeError, "time.Duration range"),
        (timedelta, 5, TypeError, "expected timedelta, got int"),
        (Mode, [1], TypeError, "expected Literal"),
        (int | str, 1.5, TypeError, "expected int | str, got float"),
        (int | str, True, TypeError, "expected int | str, got bool"),
    ],
)
def test_refused_values_store_nothing(
    db_path, tp: Any, value: Any, error: type, message: str
) -> None:
    """What the type cannot hold is refused at the call; the file is unchanged."""
    with persist.Store(db_path) as store:
        values = store.map("m", tp)
        with pytest.raises(error, match=message):
            values.set("k", value)
        assert "k" not in values
    assert read_bytes(db_path) == HEADER


def test_refused_value_inside_a_class_names_the_field() -> None:
    """Inside a class the same refusals are EncodeErrors naming the field path."""
    codec = persist.codec_for(Order)
    cases = [
        (attrs.evolve(ORDER, total=Decimal("Infinity")), "Order.total: "),
        (attrs.evolve(ORDER, due=datetime(2020, 1, 2)), "Order.due: expected date"),
        (attrs.evolve(ORDER, key=1.5), "Order.key: expected int | str, got float"),
        (attrs.evolve(ORDER, ids=[ID, "x"]), r"Order.ids\[1\]: expected UUID"),
    ]
    for value, message in cases:
        with pytest.raises(EncodeError, match="^" + message):
            codec.encode(value)


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("id", '"6ba7b810-9dad-11d1-80b4-00c04fd430c"', "invalid UUID"),
        ("id", '"6ba7b8109-dad-11d1-80b4-00c04fd430c8"', "invalid UUID"),
        ("id", '"{6ba7b810-9dad-11d1-80b4-00c04fd430c8"', "invalid UUID"),
        ("id", "5", "expected UUID str, got int"),
        ("total", '"NaN"', "invalid Decimal"),
        ("total", '"1_000"', "invalid Decimal"),
        ("total", '" 1"', "invalid Decimal"),
        ("total", "true", "expected Decimal str or number, got bool"),
        ("due", '"2024-02-30"', "invalid date"),
        ("due", '"20240201"', "invalid date"),
        ("due", '"2024-02-01T00:00:00"', "invalid date"),
        ("at", '"24:00:00"', "invalid time"),
        ("at", '"12:00"', "invalid time"),
        ("at", '"12:00:00.1234567890"', "invalid time"),
        ("took", "1.5", "expected int of nanoseconds, got float"),
        ("took", str(2**63), "outside Go's time.Duration range"),
        ("took", '"1s"', "expected int of nanoseconds, got str"),
        ("mode", "[]", r"\[\] is not one of"),
        ("mode", '{"a":1}', "is not one of"),
        ("key", "1.5", "expected int | str, got float"),
        ("key", "null", "expected int | str, got None"),
        ("note", "[]", "expected str | None | int, got list"),
        ("lines", '[1,"2"]', r"expected int, got str"),
        ("order", '"7"', "expected int, got str"),
    ],
)
def test_refused_inputs_name_the_path(field: str, text: str, message: str) -> None:
    """A document the type cannot read is a DecodeError naming the field."""
    old = ORDER_JSON[ORDER_JSON.index(f'"{field}":') :].split(",", 1)[0]
    data = ORDER_JSON.replace(old, f'"{field}":{text}', 1).encode()
    with pytest.raises(DecodeError) as caught:
        persist.codec_for(Order).decode(data)
    assert str(caught.value).startswith(f"Order.{field}")
    assert re.search(message, str(caught.value))


def test_refused_input_in_the_file_is_a_decode_error_on_get(db_path) -> None:
    """A record Go (or damage) wrote with a bad value: DecodeError naming the path."""
    record = set_record("m:k", ORDER_JSON.replace('"due":"2024-02-29"', '"due":"x"'))
    db_path.write_bytes(HEADER + record)
    with persist.Store(db_path) as store:
        orders = store.map("m", Order)
        with pytest.raises(DecodeError, match=r"Order\.due: invalid date 'x'"):
            orders.get("k")
    assert read_bytes(db_path) == HEADER + record


# --- the cattrs level -----------------------------------------------------------------


def test_cattrs_converter_writes_the_same_bytes(db_path) -> None:
    """converter=default_converter: the same JSON, values and refusals."""
    with persist.Store(db_path) as store:
        orders = store.map("m", Order, converter=default_converter)
        assert persist.codec_for(Order, default_converter).source == "cattrs"
        orders.set("k", ORDER)
        with pytest.raises(EncodeError, match="is not one of"):
            orders.set("k2", attrs.evolve(ORDER, mode="of"))
        with pytest.raises(EncodeError, match="Decimal NaN"):
            orders.set("k2", attrs.evolve(ORDER, total=Decimal("NaN")))
    assert read_bytes(db_path) == HEADER + set_record("m:k", ORDER_JSON)
    with persist.Store(db_path) as store:
        assert store.map("m", Order, converter=default_converter).get("k") == ORDER
    codec = persist.codec_for(Order, default_converter)
    for field, text in [("mode", '"of"'), ("key", "1.5"), ("total", '"NaN"')]:
        old = ORDER_JSON[ORDER_JSON.index(f'"{field}":') :].split(",", 1)[0]
        with pytest.raises(DecodeError, match=f"\\$\\.{field}"):
            codec.decode(ORDER_JSON.replace(old, f'"{field}":{text}').encode())


def test_every_level_agrees_on_bytes() -> None:
    """Run-time class codec, builtin codecs of the fields and cattrs: one JSON text."""
    runtime = persist.codec_for(Order)
    assert runtime.source == "runtime"
    assert runtime.encode(ORDER) == ORDER_JSON.encode()
    assert persist.codec_for(Order, default_converter).encode(ORDER) == (
        ORDER_JSON.encode()
    )
    for field in attrs.fields(Order):
        builtin = persist.codec_for(field.type)
        assert builtin.source == "builtin"
        assert builtin.write(getattr(ORDER, field.name)) == runtime.write(ORDER).split(
            f'"{field.name}":', 1
        )[1].split(',"', 1)[0].removesuffix("}")


def test_copy_shares_immutable_values_and_copies_lists() -> None:
    """update()'s copy: new-type values are immutable and shared; lists are copied."""
    union = persist.codec_for(list[int] | str)
    value = [1, 2]
    copied = union.copy(value)
    assert copied == value and copied is not value
    assert union.copy("x") == "x"
    order = persist.codec_for(Order).copy(ORDER)
    assert order == ORDER and order.ids is not ORDER.ids
    assert order.total is ORDER.total


def test_the_plan_codec_agrees_with_the_python_codec() -> None:
    """A class nobody compiled: its plan codec (which writes and reads every new
    kind in C) gives the Python codec's bytes and values, falling back on none."""
    from persist import codegen

    codec = persist.codec_for(Order)
    plan_codec = codec.write.__self__
    python = codegen.make_python_codec(Order)
    before = plan_codec.fallbacks
    for value in (ORDER, attrs.evolve(ORDER, key=2, amount=2.5, note=None, lines=[1])):
        data = codec.encode(value)
        assert data == python.encode(value)
        assert codec.decode(data) == python.decode(data) == value
        assert codec.copy(value) == value
    assert plan_codec.fallbacks == before
