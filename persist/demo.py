"""``python -m persist demo``: the README's quickstart, in a temporary folder."""

from __future__ import annotations

import os
import tempfile

import attrs

import persist
from persist.schemas.examples import Config, User


def birthday(upd: persist.Update[User]) -> None:
    """One year older: an update function gets a copy of the value."""
    if upd.value is not None:
        upd.set(attrs.evolve(upd.value, age=upd.value.age + 1))


def run(folder: str) -> None:
    """Write, update, delete, reopen and shrink a store in ``folder``."""
    path = os.path.join(folder, "users.db")

    with persist.open_single_map(path, User) as users:
        users.set("alice", User("Alice Smith", "alice@example.com", 28))  # write(2) now
        bob = User("Bob", "bob@example.com", 41)
        users.set_async("bob", bob)  # on disk at the next background sync
        users.set_fsync("carol", User("Carol", "carol@example.com", 33))  # on disk
        users.update("alice", birthday)  # atomic read-modify-write
        users.delete("carol")
        print("in memory:", dict(users.items()))
    print("the file, as go-persist writes it:")
    with open(path, encoding="utf-8") as f:
        print("   ", f.read().replace("\n", "\n    ").rstrip())

    store = persist.Store()
    users = store.map("", User)  # the single map is the map named ""
    config = store.map("config", Config)
    store.open(path)
    print("reopened:", sorted(users.keys()), "alice is", users["alice"].age)
    config.set("app", Config(debug=True))
    config.update("app", lambda u: setattr(u.value, "max_connections", 500))
    store.set("motd", "hello")  # a plain record, outside any map
    print("config:", config["app"], "| motd:", store.get("motd", str))
    print("stats before shrink:", store.stats())
    store.shrink()
    print("stats after shrink: ", store.stats())
    store.close()


def main(folder: str | None = None) -> int:
    """Run the demo in ``folder`` (a temporary one by default); return 0."""
    if folder is not None:
        run(folder)
    else:
        with tempfile.TemporaryDirectory(prefix="persist-demo-") as tmp:
            run(tmp)
    print("demo finished: persist", persist.__version__, "works")
    return 0
