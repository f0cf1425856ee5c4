"""A reader process beside the owner: ``Store(path, readonly=True)`` and ``refresh()``.

The owner (this script, started with ``owner``) holds ``prices.db`` and writes;
the reader (this script without arguments) starts the owner as a second
process, opens the same file read-only while the owner still holds it, and
follows what the owner appends, then the owner's shrink, with ``refresh()``.
The two talk over the owner's stdin/stdout only to take turns.

Run: ``python examples/reader.py``
"""

from __future__ import annotations

import subprocess
import sys

import attrs

import persist


@attrs.frozen
class Price:
    """A quote, as a Go service might store it."""

    symbol: str = attrs.field(metadata={"json": "Symbol"})
    cents: int = attrs.field(metadata={"json": "Cents"})


def owner() -> None:
    """Own the file: write what each line of stdin asks, answer "done" per line."""
    prices = persist.open_single_map("prices.db", Price)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "set":
            prices.set(args[0], Price(args[0], int(args[1])))
        elif command == "delete":
            prices.delete(args[0])
        elif command == "shrink":
            prices.store.shrink()
        print("done", flush=True)
    prices.store.close()


def main() -> None:
    """Start an owner, read its file read-only, refresh after each of its steps."""
    with subprocess.Popen(
        [sys.executable, __file__, "owner"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        to_owner, from_owner = process.stdin, process.stdout
        assert to_owner is not None and from_owner is not None

        def tell(command: str) -> None:
            to_owner.write(command + "\n")
            to_owner.flush()
            assert from_owner.readline() == "done\n"

        tell("set ACME 1250")
        prices = persist.open_single_map("prices.db", Price, readonly=True)
        print("at open:", sorted(prices.items()))
        for command in ("set INIT 990", "set ACME 1300", "delete INIT"):
            tell(command)
            print(f"{command}: {prices.store.refresh()}", sorted(prices.items()))
        tell("shrink")
        print(f"shrink: {prices.store.refresh()}", sorted(prices.items()))
        try:
            prices.set("ACME", Price("ACME", 0))
        except persist.ReadOnlyError:
            print("writing here: ReadOnlyError")
        prices.store.close()
        to_owner.close()


if __name__ == "__main__":
    if sys.argv[1:] == ["owner"]:
        owner()
    else:
        main()
