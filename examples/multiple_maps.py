"""go-persist's "Using Multiple Typed Maps Together", in Python: three maps, one file.

Registers the maps ``users``, ``products`` and ``sessions`` on a ``Store``,
opens ``app.db`` (in the current folder), starts auto-shrink and writes one
record to each map, the session with ``set_async``. The records are the Go
structs' shapes (``S users:u1`` then ``{"Name":"Admin","Age":35}``), so
go-persist reads the file with the same three ``persist.Map`` calls.

Run: ``python examples/multiple_maps.py``
"""

from __future__ import annotations

import attrs

import persist


@attrs.frozen
class User:
    """Go's ``User{Name, Age}``."""

    name: str = attrs.field(metadata={"json": "Name"})
    age: int = attrs.field(metadata={"json": "Age"})


@attrs.frozen
class Product:
    """Go's ``Product{Name, Price}``."""

    name: str = attrs.field(metadata={"json": "Name"})
    price: float = attrs.field(metadata={"json": "Price"})


@attrs.frozen
class Session:
    """Go's ``Session{UserID, Expiration}`` (a Unix time)."""

    user_id: str = attrs.field(metadata={"json": "UserID"})
    expiration: int = attrs.field(metadata={"json": "Expiration"})


def main() -> None:
    """Run the Go README's multiple-maps example."""
    store = persist.Store()
    # Create typed maps for different entity types
    users = store.map("users", User)
    products = store.map("products", Product)
    sessions = store.map("sessions", Session)

    # Create or load the store file
    store.open("app.db")
    with store:  # close() on leaving the block, as Go's defer store.Close()
        # Set up automatic compaction
        store.start_auto_shrink(60.0, 1.8)

        # Use each map independently
        users.set("u1", User(name="Admin", age=35))
        products.set("p1", Product(name="Widget", price=19.99))
        sessions.set_async("sess123", Session(user_id="u1", expiration=1718557123))
        print(f"users={len(users)} products={len(products)} sessions={len(sessions)}")


if __name__ == "__main__":
    main()
