"""sqlitedict.SqliteDict with autocommit: each write committed (SQLite fsyncs it)."""

from sqlitedict import SqliteDict

label = "sqlitedict (autocommit)"
fsync = True  # SQLite's default synchronous=FULL fsyncs every commit


def open_store(folder, records, autocommit=True):
    path = f"{folder}/db.sqlite"
    if records:
        with SqliteDict(path) as bulk:
            bulk.update(records)
            bulk.commit()
    d = SqliteDict(path, autocommit=autocommit)

    def close():
        d.commit()
        d.close()

    return d.get, d.__setitem__, close
