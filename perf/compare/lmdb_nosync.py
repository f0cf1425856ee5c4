"""lmdb with sync off: write transactions reach the OS, not the disk."""

from compare import lmdb_

label = "lmdb (sync off)"


def open_store(folder, records):
    return lmdb_.open_store(folder, records, sync=False)
