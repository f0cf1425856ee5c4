"""diskcache.Index: the persistent, ordered dict built on diskcache's Cache."""

import diskcache

label = "diskcache Index"


def open_store(folder, records):
    index = diskcache.Index(folder)
    index.update(records)
    return index.get, index.__setitem__, index.cache.close
