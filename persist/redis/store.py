"""RedisStore: typed maps of a Redis namespace, with the file store's API."""

# The store, its maps and the batch committer are one unit split over modules:
# they use each other's underscore names (private to the package, not to a
# module).
# pyright: reportPrivateUsage=false

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, overload

from ..codecs import codec_for
from ..errors import InvalidKeyError, MapExistsError, NotOpenError
from ..store import _check_map_name
from .commit import Committer, Ticket
from .errors import RedisConnectionError, UpdateConflictError
from .map import RedisMap
from .tracking import Invalidations
from .wire import CONNECTION_ERRORS, Batch, FsyncMode, make_client

__all__ = ["RedisStore", "open_single_map"]

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger("persist")
_open_stores: weakref.WeakSet[RedisStore] = weakref.WeakSet()

# Compare-and-set of one field: ARGV = field, expected present ("1"/"0"),
# expected bytes, "S"/"D", new bytes.  Returns 1 if applied, 0 on conflict.
CAS_SCRIPT = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '1' then
  if current ~= ARGV[3] then return 0 end
elseif current then
  return 0
end
if ARGV[4] == 'D' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
end
return 1
"""
BACKOFF_CAP = 0.05  # seconds: the longest pause between update attempts


def _log_error(exc: BaseException) -> None:
    log.error("persist background work failed: %s", exc, exc_info=exc)


def _seconds(value: float | timedelta) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not seconds > 0:
        raise ValueError(f"interval must be > 0 seconds, got {value!r}")
    return seconds


class RedisStore:
    """Typed maps kept in a Redis server: one hash per map, ``<namespace>:<map>``.

    :param url: a redis-py URL (``redis://[:password@]host:port/db``,
        ``rediss://`` for TLS, ``unix://``)
    :param namespace: the prefix of every hash of this store
    :param sync_interval: seconds between background batches of async changes
    :param local_cache: keep values read in this process, dropped by the
        server's invalidation messages (client tracking); False: every read
        asks the server
    :param timeout: seconds a socket call may take before it fails
    :param fsync_timeout: seconds ``*_fsync`` waits for WAITAOF (Redis >= 7.2)
    :param update_attempts: compare-and-set attempts of one ``update`` before
        UpdateConflictError
    :raises RedisConnectionError: the server cannot be reached
    """

    def __init__(
        self,
        url: str,
        namespace: str = "persist",
        *,
        sync_interval: float | timedelta = 1.0,
        local_cache: bool = True,
        timeout: float = 10.0,
        fsync_timeout: float = 5.0,
        update_attempts: int = 1000,
    ) -> None:
        _check_namespace(namespace)
        if update_attempts < 1:
            raise ValueError(f"update_attempts must be >= 1, got {update_attempts!r}")
        self._url = url
        self._namespace = namespace
        self._sync_interval = _seconds(sync_interval)
        self._fsync_timeout_ms = max(1, round(_seconds(fsync_timeout) * 1000))
        self._update_attempts = update_attempts
        self.error_handler: Callable[[BaseException], object] = _log_error
        self._client = make_client(url, timeout)
        kwargs = self._client.connection_pool.connection_kwargs
        self._where = (
            kwargs.get("path")
            or f"{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"
        )
        self._lock = threading.RLock()
        self._close_lock = threading.Lock()
        self._maps: dict[str, RedisMap[Any]] = {}
        self._maps_by_key: dict[bytes, RedisMap[Any]] = {}  # by Redis key
        self._dirty: dict[int, RedisMap[Any]] = {}
        self._fsync = FsyncMode(self._client)
        self._batch = Batch(self._client)
        self._committer = Committer(
            self._batch,
            self._take_dirty,
            self._wrap,
            self._waitaof_ms,
            self._report,
        )
        self._cas_sha = hashlib.sha1(CAS_SCRIPT.encode()).hexdigest()
        self._state = "open"
        self._why_closed = ""
        self._caching = False
        self._load_script()  # also checks that the server answers
        self._wake = threading.Condition(threading.Lock())
        self._tracking: Invalidations | None = None
        if local_cache:
            self._tracking = Invalidations(
                self._client,
                self._batch,
                f"{namespace}:".encode(),
                self._changed,
                self._tracking_state,
            )
        self._sync_thread = threading.Thread(
            target=self._sync_loop, name=f"persist-redis-sync {self}", daemon=True
        )
        self._sync_thread.start()
        _open_stores.add(self)

    # -- attributes ---------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL the store was opened with."""
        return self._url

    @property
    def namespace(self) -> str:
        """The prefix of this store's Redis keys."""
        return self._namespace

    @property
    def closed(self) -> bool:
        """True once ``close`` began."""
        return self._state != "open"

    @property
    def sync_interval(self) -> float:
        """Seconds between background batches of async changes."""
        return self._sync_interval

    @sync_interval.setter
    def sync_interval(self, value: float | timedelta) -> None:
        self._sync_interval = _seconds(value)
        with self._wake:
            self._wake.notify_all()

    @property
    def tracking_client_id(self) -> int | None:
        """The Redis client id of the connection receiving invalidations,
        while the local cache is in use (None while tracking is not fully
        set up, or without the local cache)."""
        return None if self._tracking is None else self._tracking.active_id

    def __repr__(self) -> str:
        state = "open" if self._state == "open" else "closed"
        return f"<persist.redis.RedisStore {self._where} {self._namespace!r} {state}>"

    # -- maps ---------------------------------------------------------------

    @overload
    def map(
        self, name: str, value_type: type[T], *, converter: Any = None
    ) -> RedisMap[T]: ...
    @overload
    def map(
        self, name: str, value_type: Any, *, converter: Any = None
    ) -> RedisMap[Any]: ...

    def map(self, name: str, value_type: Any, *, converter: Any = None) -> Any:
        """Register the typed map ``name`` (the hash ``<namespace>:<name>``).

        :param converter: a ``cattrs.Converter`` whose hooks encode the values
        :raises MapExistsError: the name is taken in this store
        """
        self._check_open()
        _check_map_name(name)
        codec = codec_for(value_type, converter=converter)
        with self._lock:
            if name in self._maps:
                raise MapExistsError(f"map {name!r} is already registered")
            m: RedisMap[Any] = RedisMap(self, name, value_type, codec)
            self._maps[name] = m
            self._maps_by_key[m.redis_key] = m
            return m

    # -- lifecycle ----------------------------------------------------------

    def _refuse_calls(self) -> None:
        """From now on every map call raises NotOpenError (self._why_closed).
        No lock: a fork child cannot take one a parent thread held."""
        for m in list(self._maps.values()):
            m._why_closed = self._why_closed
            m._open = False

    def _check_open(self) -> None:
        if self._state != "open":
            raise NotOpenError(self._why_closed)

    def close(self) -> None:
        """Send every pending async change, stop the threads, drop the
        connections; from any thread, twice is a no-op.  Later calls raise
        NotOpenError.

        :raises RedisConnectionError: the last batch failed (its changes are lost)
        """
        with self._close_lock:
            with self._lock:
                if self._state != "open":
                    return
                self._state = "closing"
                self._why_closed = f"{self}: the store is closed"
                self._refuse_calls()
            with self._wake:
                self._wake.notify_all()
            if self._sync_thread is not threading.current_thread():
                self._sync_thread.join()
            if self._tracking is not None:
                self._tracking.stop()
            try:
                self._flush()
            finally:
                self._state = "closed"
                try:
                    self._flush()  # what a call that was already inside queued
                finally:
                    self._batch.close(self._why_closed)
                    self._client.connection_pool.disconnect()
                    _open_stores.discard(self)

    def _forked(self) -> None:
        """In a fork child: refuse every call (the sockets and threads are
        the parent's); open a new RedisStore in the child."""
        self._state = "closed"
        self._why_closed = (
            f"{self}: this store belongs to the parent process; "
            "open a new RedisStore in the child"
        )
        self._refuse_calls()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- flushing -----------------------------------------------------------

    def sync(self) -> None:
        """Send every map's pending async changes now (one MULTI/EXEC batch).

        :raises RedisConnectionError: the batch failed; the changes stay pending
        """
        self._check_open()
        self._flush()

    def fsync_all(self) -> None:
        """Send the pending async changes and wait for the server's AOF fsync
        (see ``set_fsync``).

        :raises FsyncUnavailableError: the server cannot promise it (nothing sent)
        """
        self._check_open()
        self._fsync.check()
        self._committer.run(Ticket(None, None, f"{self}: fsync_all", fsync=True))

    def _flush(self) -> None:
        self._committer.run(Ticket(None, None, f"{self}: sending async changes"))

    def _sync_loop(self) -> None:
        """Every ``sync_interval``: send the async changes; never dies."""
        last = time.monotonic()
        while True:
            with self._wake:
                while self._state == "open":
                    remaining = last + self._sync_interval - time.monotonic()
                    if remaining <= 0:
                        break
                    self._wake.wait(remaining)
            if self._state != "open":
                return
            last = time.monotonic()
            if not self._dirty:
                continue
            try:
                self._flush()
            except Exception as exc:  # reported; the changes stay pending
                self._report(exc)

    def _mark_dirty(self, m: RedisMap[Any]) -> None:
        self._dirty[id(m)] = m

    def _take_dirty(self) -> list[RedisMap[Any]]:
        """The maps with pending changes, in no particular order (each
        ``popitem`` is atomic, so a map marked meanwhile is never lost)."""
        taken: list[RedisMap[Any]] = []
        while self._dirty:
            try:
                taken.append(self._dirty.popitem()[1])
            except KeyError:
                break
        return taken

    def _commit(self, ticket: Ticket) -> Any:
        return self._committer.run(ticket)

    def _waitaof_ms(self) -> int | None:
        return self._fsync_timeout_ms if self._fsync.mode == "waitaof" else None

    def _report(self, exc: BaseException) -> None:
        """Hand a background failure to error_handler; never let it escape."""
        try:
            self.error_handler(exc)
        except Exception:
            log.exception("persist error_handler raised while handling %r", exc)

    # -- server calls ---------------------------------------------------------

    def _wrap(self, exc: BaseException, what: str) -> BaseException:
        """The error a caller sees for ``exc`` met while doing ``what``."""
        if isinstance(exc, CONNECTION_ERRORS):
            error = RedisConnectionError(
                f"{what}: the connection to Redis at {self._where} failed: {exc}"
            )
            error.__cause__ = exc
            return error
        return exc

    def _read(self, what: str, call: Callable[[], R]) -> R:
        try:
            return call()
        except CONNECTION_ERRORS as exc:
            raise self._wrap(exc, what) from exc

    def _load_script(self) -> None:
        self._read(f"{self}", lambda: self._client.script_load(CAS_SCRIPT))

    def _backoff(self, what: str, attempt: int) -> None:
        """Pause after a lost compare-and-set (jittered, growing, capped)."""
        if attempt >= self._update_attempts:
            raise UpdateConflictError(
                f"{what}: update lost to other writers {attempt} times in a row"
            )
        time.sleep(random.uniform(0, min(BACKOFF_CAP, 0.0002 * 2**attempt)))

    # -- local cache --------------------------------------------------------

    def _changed(self, redis_key: bytes | None) -> None:
        """An invalidation: drop the cached reads of that map (None: all)."""
        if redis_key is not None:
            m = self._maps_by_key.get(redis_key)
            if m is not None:
                m._invalidate()
            return
        with self._lock:
            maps = list(self._maps.values())
        for m in maps:
            m._invalidate()

    def _tracking_state(self, up: bool) -> None:
        """Tracking went on or off: either way nothing cached before is
        trusted (writes may have gone unannounced)."""
        self._caching = up
        self._changed(None)


def _check_namespace(namespace: object) -> None:
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be str, not {type(namespace).__name__}")
    from .. import _core

    _core.check_key(namespace)
    if not namespace:
        raise InvalidKeyError("namespace must not be empty")


@overload
def open_single_map(
    url: str,
    value_type: type[T],
    *,
    namespace: str = "persist",
    converter: Any = None,
    **options: Any,
) -> RedisMap[T]: ...
@overload
def open_single_map(
    url: str,
    value_type: Any,
    *,
    namespace: str = "persist",
    converter: Any = None,
    **options: Any,
) -> RedisMap[Any]: ...


def open_single_map(
    url: str,
    value_type: Any,
    *,
    namespace: str = "persist",
    converter: Any = None,
    **options: Any,
) -> RedisMap[Any]:
    """Open a RedisStore on ``url`` holding one map, named ``""`` (the hash
    ``<namespace>:``); the map is a context manager that closes its store.

    :param converter: a ``cattrs.Converter`` whose hooks encode the values
    :param options: passed to RedisStore (``sync_interval``, ``local_cache``, ...)
    """
    store = RedisStore(url, namespace, **options)
    try:
        return store.map("", value_type, converter=converter)
    except BaseException:
        store.close()
        raise


def _close_all_at_exit() -> None:
    for store in list(_open_stores):
        try:
            store.close()
        except Exception:  # exiting: report and go on
            log.exception("closing %r at exit failed", store)


def _after_fork_in_child() -> None:
    """A forked child must not share the parent's sockets or threads."""
    for store in list(_open_stores):
        store._forked()
    _open_stores.clear()


atexit.register(_close_all_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
