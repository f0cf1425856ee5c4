"""go-persist's "Quick Start Example", in Python: one map in one file.

Opens ``users.db`` (in the current folder) as a single map of ``User``, sets,
gets, updates, counts, iterates and deletes, as the Go README does. The JSON
keys are the Go struct's field names, so go-persist opens the same file with
``persist.OpenSingleMap[User]("users.db")``.

Run: ``python examples/quick_start.py``
"""

from __future__ import annotations

import sys

import attrs

import persist


@attrs.define
class User:
    """Go's ``User{Name, Email, Age}``; mutable, so an update may change it in place."""

    name: str = attrs.field(metadata={"json": "Name"})
    email: str = attrs.field(metadata={"json": "Email"})
    age: int = attrs.field(metadata={"json": "Age"})


def birthday(upd: persist.Update[User]) -> None:
    """Add a year to a user; leave an absent user absent."""
    if upd.value is None:  # the user doesn't exist (upd.exists is False)
        upd.cancel()  # don't do anything
        return
    upd.value.age += 1  # modify the copy: it is stored when this returns


def show(key: str, user: User) -> bool:
    """Print one user; True goes on to the next."""
    print(f"Key: {key}, User: {user}")
    return True


def main() -> None:
    """Run the Go README's quick start."""
    with persist.open_single_map("users.db", User) as users:
        users.set("alice", User(name="Alice Smith", email="alice@example.com", age=28))

        alice = users.get("alice")
        if alice is None:
            sys.exit("User not found")
        print(f"User: {alice}")

        users.update("alice", birthday)
        print(f"Total users: {users.size()}")
        users.range(show)

        users.delete("alice")


if __name__ == "__main__":
    main()
