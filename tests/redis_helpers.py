"""Helpers of the Redis tests (the fixtures ``stores`` and ``raw`` live in
conftest.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from persist.redis import RedisStore


class Stores:
    """Open RedisStores for one test and close them all at its end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opened: list[RedisStore] = []

    def __call__(self, namespace: str = "persist", **options: Any) -> RedisStore:
        from persist.redis import RedisStore

        options.setdefault("sync_interval", 0.001)
        store = RedisStore(self.url, namespace, **options)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()
