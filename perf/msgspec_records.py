"""The load record for the floors: msgspec Structs and dicts, with Go's JSON names."""

from __future__ import annotations

import msgspec


class Meta(msgspec.Struct):
    created_at: int = msgspec.field(name="CreatedAt")
    updated_at: int = msgspec.field(name="UpdatedAt")
    tags: list[str] = msgspec.field(name="Tags")


class Record(msgspec.Struct):
    id: str = msgspec.field(name="ID")
    name: str = msgspec.field(name="Name")
    description: str = msgspec.field(name="Description")
    data: str = msgspec.field(name="Data")
    meta: Meta = msgspec.field(name="Meta")


def from_attrs(record) -> Record:
    """A ``persist.schemas.bench.LoadRecord`` as a Record (before timing)."""
    m = record.meta
    return Record(
        record.id,
        record.name,
        record.description,
        record.data,
        Meta(m.created_at, m.updated_at, list(m.tags)),
    )


def to_go_dict(record) -> dict:
    """A ``LoadRecord`` as the dict Go's JSON has (for the orjson floor)."""
    m = record.meta
    return {
        "ID": record.id,
        "Name": record.name,
        "Description": record.description,
        "Data": record.data,
        "Meta": {"CreatedAt": m.created_at, "UpdatedAt": m.updated_at, "Tags": m.tags},
    }
