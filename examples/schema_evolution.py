"""Schema evolution: a file written by version 1 of a class loads with version 2.

Version 1 of ``Profile`` writes ``profiles.db`` (in the current folder).
Version 2 changes the class three ways, and the old file still loads:

- a field added with a default (``verified``): old records get the default;
- a field removed (``nickname``): its key in old records is ignored, as Go's
  JSON decoder ignores unknown keys;
- a field renamed (``fullname`` -> ``display_name``) that keeps its old JSON
  key with ``metadata={"json": "fullname"}``, as a Go struct tag would.

Records written after the change have version 2's shape; both kinds live
in the file until a shrink rewrites it.

Run: ``python examples/schema_evolution.py`` (it starts from an empty file)
"""

from __future__ import annotations

from pathlib import Path

import attrs

import persist

PATH = Path("profiles.db")


@attrs.frozen
class ProfileV1:
    """Version 1, as the program used to define ``Profile``."""

    fullname: str
    email: str
    nickname: str


@attrs.frozen
class ProfileV2:
    """Version 2: ``nickname`` removed, ``verified`` added, ``fullname`` renamed."""

    display_name: str = attrs.field(metadata={"json": "fullname"})
    email: str
    verified: bool = False


def main() -> None:
    """Write with version 1, read and write with version 2, show the file."""
    PATH.unlink(missing_ok=True)  # a fresh file: every run prints the same

    with persist.open_single_map(PATH, ProfileV1) as profiles:
        profiles.set("ada", ProfileV1("Ada Lovelace", "ada@example.com", "ada"))
        profiles.set("alan", ProfileV1("Alan Turing", "alan@example.com", "prof"))

    with persist.open_single_map(PATH, ProfileV2) as profiles:
        for key, profile in sorted(profiles.items()):
            print(f"{key}: {profile}")
        profiles.set("grace", ProfileV2("Grace Hopper", "grace@example.com", True))

    print(PATH.read_text(encoding="utf-8"), end="")


if __name__ == "__main__":
    main()
