"""shelve (dbm + pickle), behind a lock: dbm handles are not thread-safe."""

import shelve
import threading

label = "shelve"


def open_store(folder, records):
    db = shelve.open(f"{folder}/db")  # noqa: SIM115 - closed by the caller
    db.update(records)
    lock = threading.Lock()

    def get(key):
        with lock:
            return db.get(key)

    def set_(key, value):
        with lock:
            db[key] = value

    return get, set_, db.close
