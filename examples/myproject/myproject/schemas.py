"""The records myproject stores; compiled into ``myproject._persist_schemas`` at build.

Only attrs classes and what they need: setup.py imports this module at build
time, where just persist-kv and attrs are installed.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Bookmark:
    """A saved link."""

    url: str
    title: str
    tags: list[str] = attrs.field(factory=list)  # pyright: ignore[reportUnknownVariableType]
    visits: int = 0
