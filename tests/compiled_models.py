"""attrs classes covering every field kind, for tests/test_compiled.py.

The test copies this file into a package in a temporary folder and compiles
it with ``persist.codegen.generate_module(..., build=True)``, as a user would.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, NewType

import attr
import attrs
from persist.schemas.examples import User  # compiled in another module


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Money:
    """An opaque type: the test registers its codec."""

    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return type(other) is Money and other.cents == self.cents

    def __repr__(self) -> str:
        return f"Money({self.cents})"


@attrs.frozen
class Address:
    street: str
    city: str


@attrs.define
class Everything:
    """One field of each kind the generator knows."""

    text: str = attrs.field(metadata={"json": "Text"})
    number: int
    real: float
    flag: bool
    nothing: None
    blob: bytes
    when: datetime
    color: Color
    level: Level
    anything: Any
    words: list[str]
    numbers: tuple[int, ...]
    tags: set[str]
    codes: frozenset[int]
    scores: dict[str, float]
    maybe: int | None
    home: Address
    places: list[Address | None]
    owner: User | None
    price: Money
    history: list[Money]
    by_id: dict[int, str]
    nested: dict[str, list[dict[str, Any]]]
    bare_list: list  # type: ignore[type-arg]
    bare_dict: dict  # type: ignore[type-arg]
    note: str = ""
    extra: dict[str, str] = attrs.Factory(dict)


@attrs.frozen(slots=False)
class FrozenDict:
    a: int
    b: list[str] = attrs.Factory(list)


@attrs.define(slots=False)
class MutableDict:
    a: int
    b: str | None = None


@attr.s(auto_attribs=True)
class Classic:
    a: int
    b: list[int]


@attrs.define
class Account:
    """A private name, a JSON alias, kw_only, init=False, a factory."""

    _secret: str
    name: str = attrs.field(metadata={"json": "Name"})
    level: int = attrs.field(default=1, kw_only=True)
    tags: list[str] = attrs.Factory(list)
    cache: dict[str, int] = attrs.field(init=False, factory=dict)


@attrs.define
class Checked:
    """Decoding must call __init__: a validator and a converter."""

    age: int = attrs.field(validator=attrs.validators.ge(0))
    name: str = attrs.field(converter=str.strip, default="")


@attrs.frozen(cache_hash=True)
class Hashed:
    a: int
    b: str


@attrs.define
class Tree:
    value: int
    children: list[Tree]


@attrs.define
class Outer:
    @attrs.frozen
    class Inner:
        n: int

    inner: Inner
    items: list[Inner]


@attrs.frozen
class Empty:
    pass


@attrs.frozen
class Keys:
    """JSON keys that need escaping, are not ASCII, or are empty."""

    quoted: int = attrs.field(metadata={"json": 'q"\\\n'})
    unicode: int = attrs.field(metadata={"json": "é\u2028😀"})
    empty: int = attrs.field(metadata={"json": ""})


UserId = NewType("UserId", int)


@attrs.define
class Typed:
    """UUID, Decimal, date, time, timedelta, Literals, unions and a NewType."""

    id: uuid.UUID
    price: Decimal
    day: date
    at: time
    took: timedelta
    mode: Literal["a", "b", 1, True, None]
    either: int | str
    number: int | float
    mixed: str | None | int  # noqa: RUF036 -- None mid-union on purpose
    listed: list[int] | str
    user: UserId
    days: list[date]
    maybe_id: uuid.UUID | None
    durations: dict[str, timedelta]
    stamps: list[datetime | int | list[Literal["x", "y"]]]


@attrs.frozen
class TypedOptions:
    """New types in kw_only and init=False fields, with defaults."""

    name: str
    level: Literal["low", "high"] = attrs.field(default="low", kw_only=True)
    since: date = attrs.field(init=False, factory=lambda: date(2000, 1, 1))
    ticket: uuid.UUID | int = attrs.field(default=0, kw_only=True)


@attrs.define
class Chain:
    """A recursive class through a union (a linked list ending in an int, "end" or
    None), and a union holding an Enum."""

    value: int
    next: Chain | int | Literal["end"] | None = None
    tag: Color | int = 0
