"""diskcache.Cache (SQLite + pickle)."""

import diskcache

label = "diskcache Cache"


def open_store(folder, records):
    cache = diskcache.Cache(folder)
    with cache.transact():
        for key, value in records.items():
            cache.set(key, value)
    return cache.get, cache.set, cache.close
