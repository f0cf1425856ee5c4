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
    labels: dict[str, str] = attrs.field(factory=dict)


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
    history: list[float] = attrs.field(factory=list)
