"""lmdb with pickled values, one write transaction per set."""

import pickle

import lmdb

label = "lmdb"


def open_store(folder, records):
    env = lmdb.open(folder, map_size=1 << 30)
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
