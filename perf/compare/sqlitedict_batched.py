"""sqlitedict without autocommit: writes are queued and committed once, at close."""

from compare import sqlitedict_

label = "sqlitedict (batched)"


def open_store(folder, records):
    return sqlitedict_.open_store(folder, records, autocommit=False)
