"""myproject's command: store a few bookmarks and say which codec served them.

Run (after ``pip install ./examples/myproject``): ``myproject [FILE]``
(default ``bookmarks.db``); or ``python -m myproject.main [FILE]``.
"""

from __future__ import annotations

import sys

import attrs

import persist
from myproject.schemas import Bookmark


def visit(upd: persist.Update[Bookmark]) -> None:
    """Count a visit of an existing bookmark."""
    if upd.value is not None:
        upd.set(attrs.evolve(upd.value, visits=upd.value.visits + 1))


def main(argv: list[str] | None = None) -> None:
    """Store two bookmarks, count a visit, print them and the codec's source."""
    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "bookmarks.db"
    with persist.open_single_map(path, Bookmark) as bookmarks:
        bookmarks.set("py", Bookmark("https://python.org", "Python", ["lang"]))
        bookmarks.set("go", Bookmark("https://go.dev", "Go", ["lang", "go"]))
        bookmarks.update("py", visit)
        for key, bookmark in sorted(bookmarks.items()):
            print(f"{key}: {bookmark}")
    print(f"codec: {persist.codec_for(Bookmark).source}")


if __name__ == "__main__":
    main()
