"""persist on a Redis server: the same typed maps, one hash per map.

``persist.redis.RedisStore(url, namespace="persist")`` has the API of
``persist.Store`` (``map(name, T)``), and its maps the API of
``persist.PersistMap``; see the README section "Beyond one machine: Redis".
Needs the ``redis`` extra (``pip install 'persist-kv[redis]'``).
"""

from .errors import (
    FsyncUnavailableError,
    RedisConnectionError,
    UnsupportedError,
    UpdateConflictError,
)
from .map import RedisMap
from .store import RedisStore, open_single_map

__all__ = [
    "FsyncUnavailableError",
    "RedisConnectionError",
    "RedisMap",
    "RedisStore",
    "UnsupportedError",
    "UpdateConflictError",
    "open_single_map",
]
