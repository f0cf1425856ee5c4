"""persist: a persisted, type-safe key-value store with go-persist's file format.

As fast as a dict, as durable as a write-ahead log, no hand-written
serialization: ``persist.open_single_map("users.db", User)``.
"""

from ._core import PersistMap, Update
from .codecs import Codec, StaleCodecWarning, codec_for, register_codec
from .errors import (
    CorruptWALError,
    DeadlockError,
    DecodeError,
    EncodeError,
    InvalidKeyError,
    KeyNotFoundError,
    MapExistsError,
    NotOpenError,
    PersistError,
    ReadOnlyError,
    ShrinkInProgressError,
    StoreFailedError,
    StoreLockedError,
)
from .repair import RepairReport, repair
from .store import RefreshResult, Stats, Store, open_single_map

__version__ = "0.1.0"

__all__ = [
    "Codec",
    "CorruptWALError",
    "DeadlockError",
    "DecodeError",
    "EncodeError",
    "InvalidKeyError",
    "KeyNotFoundError",
    "MapExistsError",
    "NotOpenError",
    "PersistError",
    "PersistMap",
    "ReadOnlyError",
    "RefreshResult",
    "RepairReport",
    "ShrinkInProgressError",
    "StaleCodecWarning",
    "Stats",
    "Store",
    "StoreFailedError",
    "StoreLockedError",
    "Update",
    "codec_for",
    "open_single_map",
    "register_codec",
    "repair",
]
