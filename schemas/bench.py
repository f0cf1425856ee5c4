"""The records the benchmarks encode, decode and load."""

from __future__ import annotations

import attrs


@attrs.frozen
class Pair:
    """The two-field struct of the encode/decode micro-benchmarks."""

    key: str
    value: int


@attrs.frozen
class Meta:
    """Bookkeeping nested in every ComplexRecord."""

    created: int  # Unix time, as Go's time.Unix()
    source: str
    version: int = 1
    labels: dict[str, str] = attrs.field(factory=dict)  # pyright: ignore[reportUnknownVariableType]


@attrs.define
class ComplexRecord:
    """The load benchmark's record: every common field type, a nested class."""

    id: int
    name: str
    score: float
    active: bool
    tags: list[str]
    counts: dict[str, int]
    meta: Meta
    ratio: float | None = None
    parent: str | None = None
    history: list[float] = attrs.field(factory=list)  # pyright: ignore[reportUnknownVariableType]


@attrs.define
class TestStruct:
    """go-persist's operation benchmark value (Go's ``TestStruct``, same JSON tags)."""

    field1: int = attrs.field(metadata={"json": "field1"})
    field2: str = attrs.field(metadata={"json": "field2"})


@attrs.define
class LoadMeta:
    """Go's load benchmark ``Meta``: two Unix times and three tags."""

    created_at: int = attrs.field(metadata={"json": "CreatedAt"})
    updated_at: int = attrs.field(metadata={"json": "UpdatedAt"})
    tags: list[str] = attrs.field(metadata={"json": "Tags"})


@attrs.define
class LoadRecord:
    """Go's load benchmark ``ComplexRecord`` (~1,215 bytes of JSON), field for field."""

    id: str = attrs.field(metadata={"json": "ID"})
    name: str = attrs.field(metadata={"json": "Name"})
    description: str = attrs.field(metadata={"json": "Description"})
    data: str = attrs.field(metadata={"json": "Data"})
    meta: LoadMeta = attrs.field(metadata={"json": "Meta"})
