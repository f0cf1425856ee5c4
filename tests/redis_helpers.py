"""Helpers of the Redis tests: stores closed at teardown, a raw client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from persist.redis import RedisStore


class Stores:
    """Open RedisStores for one test and close them all at its end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opened: list[RedisStore] = []

    def __call__(self, namespace: str = "persist", **options: Any) -> RedisStore:
        options.setdefault("sync_interval", 0.001)
        store = RedisStore(self.url, namespace, **options)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture
def stores(redis_url: str) -> Iterator[Stores]:
    """A factory of RedisStores on the session server (1 ms background sync)."""
    made = Stores(redis_url)
    yield made
    made.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client on the session server (bytes in, bytes out)."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
