"""The README's example records (the same shapes as go-persist's README)."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class User:
    """A user account; JSON keys as Go writes its exported fields."""

    name: str = attrs.field(metadata={"json": "Name"})
    email: str = attrs.field(metadata={"json": "Email"})
    age: int = attrs.field(metadata={"json": "Age"})


@attrs.frozen
class Product:
    """A catalogue entry."""

    name: str = attrs.field(metadata={"json": "Name"})
    price: float = attrs.field(metadata={"json": "Price"})


@attrs.frozen
class Session:
    """A login session expiring at a Unix time."""

    user_id: str = attrs.field(metadata={"json": "UserID"})
    expiration: int = attrs.field(metadata={"json": "Expiration"})


@attrs.define
class Config:
    """Mutable application settings (change them with ``update``)."""

    debug: bool = attrs.field(default=False, metadata={"json": "Debug"})
    max_connections: int = attrs.field(default=100, metadata={"json": "MaxConnections"})
    extra: dict[str, Any] = attrs.field(factory=dict, metadata={"json": "Extra"})  # pyright: ignore[reportUnknownVariableType]
