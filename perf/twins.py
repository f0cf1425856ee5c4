"""The benchmark records again, defined here where nobody compiled them.

Field for field the classes of ``persist.schemas.bench``: persist serves these
with its run-time codec (``persist.codec_for(TestStruct).source == "runtime"``),
so a row on a twin shows what an application's own, uncompiled class costs.
"""

from __future__ import annotations

import attrs


@attrs.define
class TestStruct:
    """Twin of ``persist.schemas.bench.TestStruct``."""

    field1: int = attrs.field(metadata={"json": "field1"})
    field2: str = attrs.field(metadata={"json": "field2"})


@attrs.define
class LoadMeta:
    """Twin of ``persist.schemas.bench.LoadMeta``."""

    created_at: int = attrs.field(metadata={"json": "CreatedAt"})
    updated_at: int = attrs.field(metadata={"json": "UpdatedAt"})
    tags: list[str] = attrs.field(metadata={"json": "Tags"})


@attrs.define
class LoadRecord:
    """Twin of ``persist.schemas.bench.LoadRecord``."""

    id: str = attrs.field(metadata={"json": "ID"})
    name: str = attrs.field(metadata={"json": "Name"})
    description: str = attrs.field(metadata={"json": "Description"})
    data: str = attrs.field(metadata={"json": "Data"})
    meta: LoadMeta = attrs.field(metadata={"json": "Meta"})
