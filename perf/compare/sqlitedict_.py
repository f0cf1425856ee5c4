"""sqlitedict.SqliteDict with autocommit (each write committed)."""

from sqlitedict import SqliteDict

label = "sqlitedict"


def open_store(folder, records):
    path = f"{folder}/db.sqlite"
    with SqliteDict(path) as bulk:
        bulk.update(records)
        bulk.commit()
    d = SqliteDict(path, autocommit=True)
    return d.get, d.__setitem__, d.close
