"""The exception tree: every error persist raises derives from PersistError."""

from __future__ import annotations

__all__ = [
    "CorruptWALError",
    "DeadlockError",
    "DecodeError",
    "EncodeError",
    "InvalidKeyError",
    "KeyNotFoundError",
    "MapExistsError",
    "NotOpenError",
    "PersistError",
    "ReadOnlyError",
    "ShrinkInProgressError",
    "StoreFailedError",
    "StoreLockedError",
]


class PersistError(Exception):
    """Base class of every persist error."""


class KeyNotFoundError(PersistError, KeyError):
    """The key has no record (raised by ``Store.get``)."""


class NotOpenError(PersistError):
    """The store is not open, was closed, or belongs to the parent of a fork."""


class ReadOnlyError(PersistError):
    """A write to a store opened with ``readonly=True`` (another process owns
    the file); nothing in memory or on disk changed."""


class MapExistsError(PersistError):
    """A map of that name is already registered in the store."""


class ShrinkInProgressError(PersistError):
    """Another shrink of the same store is running."""


class InvalidKeyError(PersistError, ValueError):
    """A key or map name holds a control character, a lone surrogate or a colon."""


class StoreLockedError(PersistError):
    """The file is open in another Store, in this process or another."""


class StoreFailedError(PersistError):
    """An fsync failed: the kernel may have dropped written pages, so nothing
    more is written.  Reads still work; ``close()`` releases; reopen to see
    what is really on disk.  The first failure is the ``__cause__``."""


class DeadlockError(PersistError):
    """Waiting for a key's lock would never end: the thread holding it (inside
    an ``update`` function) waits for this one."""


class EncodeError(PersistError, ValueError):
    """A value cannot be written as JSON (NaN, a wrong field type); nothing stored."""


class DecodeError(PersistError, ValueError):
    """A stored JSON value does not match the declared type."""


class CorruptWALError(PersistError, ValueError):
    """The file's framing is broken in the middle; nothing on disk was changed.

    :ivar path: the file
    :ivar line: 1-based line number of the broken record
    :ivar offset: byte offset of the start of that line
    :ivar reason: what was wrong
    """

    def __init__(self, path: str, line: int, offset: int, reason: str) -> None:
        super().__init__(f"{path}: line {line} (byte {offset}): {reason}")
        self.path = path
        self.line = line
        self.offset = offset
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, int, int, str]]:
        # keep pickling (multiprocessing) working
        return (type(self), (self.path, self.line, self.offset, self.reason))
