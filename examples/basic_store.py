"""go-persist's "Using the Basic Store API", in Python: records outside any map.

Stores a ``Config`` under the key ``system_config`` of ``app.db`` (in the
current folder) with ``Store.set``, reads it back with ``Store.get``, changes
it and stores it again. Go reads the record with
``persist.Get[Config](store, "system_config")``.

Run: ``python examples/basic_store.py``
"""

from __future__ import annotations

import attrs

import persist


@attrs.define
class Config:
    """Go's ``Config{Debug, MaxConnections}``."""

    debug: bool = attrs.field(metadata={"json": "Debug"})
    max_connections: int = attrs.field(metadata={"json": "MaxConnections"})


def main() -> None:
    """Run the Go README's basic Store API example."""
    with persist.Store("app.db") as store:
        # Store configuration directly
        store.set("system_config", Config(debug=True, max_connections=100))

        config = store.get("system_config", Config)
        print(f"Config: Debug={config.debug}, MaxConnections={config.max_connections}")

        # When you need to update the config
        config.max_connections = 200
        store.set("system_config", config)


if __name__ == "__main__":
    main()
