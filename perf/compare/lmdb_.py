"""lmdb with pickled values, one write transaction per set, synced (lmdb's default)."""

import pickle

import lmdb

label = "lmdb (sync)"
fsync = True  # every write transaction is fsync'd: a peer of persist's set_fsync


def open_store(folder, records, sync=True):
    env = lmdb.open(folder, map_size=1 << 34, sync=sync)
    if records:
        with env.begin(write=True) as txn:
            for key, value in records.items():
                txn.put(key.encode(), pickle.dumps(value))

    def get(key):
        with env.begin() as txn:
            raw = txn.get(key.encode())
        return None if raw is None else pickle.loads(raw)

    def set_(key, value):
        with env.begin(write=True) as txn:
            txn.put(key.encode(), pickle.dumps(value))

    return get, set_, env.close
