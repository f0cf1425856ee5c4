"""The errors only a Redis store raises (both are persist.PersistError)."""

from __future__ import annotations

from ..errors import PersistError

__all__ = [
    "FsyncUnavailableError",
    "RedisConnectionError",
    "UnsupportedError",
    "UpdateConflictError",
]


class FsyncUnavailableError(PersistError):
    """``*_fsync`` on a server that cannot promise an fsync'd AOF: neither
    WAITAOF (Redis >= 7.2) nor ``appendonly yes`` + ``appendfsync always``,
    or its configuration could not be read.  Nothing was written."""


class RedisConnectionError(PersistError, ConnectionError):
    """The connection to the server failed or was lost during a call; the
    message names the map and key.  A batch is sent as MULTI/EXEC, so it was
    applied whole or not at all; the next call reconnects."""


class UnsupportedError(PersistError, NotImplementedError):
    """A file-store call with no honest meaning on Redis (memory-only writes)."""


class UpdateConflictError(PersistError):
    """``update`` lost its compare-and-set to other writers of the key more
    times than the store's ``update_attempts``; nothing was changed."""
