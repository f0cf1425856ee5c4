"""shelve (dbm + pickle)."""

import shelve

label = "shelve"


def open_store(folder, records):
    db = shelve.open(f"{folder}/db")  # noqa: SIM115 - closed by the caller
    db.update(records)
    return db.get, db.__setitem__, db.close
