"""shelve (dbm + pickle)."""

import shelve

label = "shelve"


def open_store(folder, records):
    db = shelve.open(f"{folder}/db")
    db.update(records)
    return db.get, db.__setitem__, db.close
