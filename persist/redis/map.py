"""RedisMap: the PersistMap API over one Redis hash (``<namespace>:<map>``).

Each field is a key (UTF-8) and holds exactly the one-line JSON a file store
writes for the value.  Local state, guarded by ``_lock``:

- ``_pending``: this process's async changes not yet sent, coalesced per key
  (value object and its encoded bytes, or DELETED);
- ``_inflight``: those changes while a batch carries them;
- ``_view``: what ``get`` answers from without a round trip: every pending or
  in-flight change (read-your-writes) plus values cached from the server
  while invalidation tracking is on;
- ``_gen``: bumped whenever the view may be stale (an invalidation, tracking
  lost or regained); a value fetched while it changed is not cached, so a
  stale value never lands in the cache.

Writes of ours are not announced back (tracking runs with NOLOOP on the one
write connection), so a write applied keeps its own key in the view with the
value written (or DELETED: known absent) if the generation did not move
between the write and its reply, and leaves the rest of the view alone; had
it moved, another writer's change may be newer, and the key is dropped.
"""

# The store, its maps and the batch committer are one unit split over modules:
# they use each other's underscore names (private to the package, not to a
# module).
# pyright: reportPrivateUsage=false

from __future__ import annotations

import threading
from abc import ABCMeta
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar, cast, overload

from redis.exceptions import ResponseError

from .. import _core
from .._core import Update
from ..errors import DecodeError, NotOpenError
from ._reads import DELETED, MISSING, CachedReads
from .commit import Ticket
from .errors import UnsupportedError
from .wire import Command

if TYPE_CHECKING:
    from _typeshed import SupportsKeysAndGetItem

    from .store import RedisStore

__all__ = ["RedisMap"]

T = TypeVar("T")
D = TypeVar("D")

STORE, SET, DELETE, CANCEL = 0, 1, 2, 3  # verdicts of _core._run_update
SCAN_COUNT = 1000  # HSCAN's COUNT hint


def _field(key: str) -> bytes:
    """The key's field bytes, refusing what the file store refuses."""
    _core.check_key(key)
    return key.encode()


class RedisMap(CachedReads[T]):
    """A typed map stored in a Redis hash; the API of ``persist.PersistMap``.

    Made by ``RedisStore.map`` or ``persist.redis.open_single_map``; every
    method is thread-safe.  ``get`` returns the cached object itself (shared,
    as the file store's values are): mutate copies, or use ``update``.
    """

    def __init__(
        self, store: RedisStore, name: str, value_type: Any, codec: Any
    ) -> None:
        self._store = store
        self._name = name
        self._value_type = value_type
        self._codec = codec
        self._encode: Callable[[Any], bytes] = codec.encode
        self._decode: Callable[[bytes], Any] = codec.decode
        self._copy: Callable[[Any], Any] = codec.copy
        self._hash = f"{store.namespace}:{name}".encode()
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[Any, bytes | None]] = {}
        self._inflight: dict[str, tuple[Any, bytes | None]] = {}
        self._gen = 0
        self._batch_gen = 0  # _gen when the in-flight changes were taken

    def __repr__(self) -> str:
        tp = getattr(self._value_type, "__qualname__", repr(self._value_type))
        return f"<RedisMap {self._name!r} of {tp} at {self._hash.decode()!r}>"

    # -- attributes ---------------------------------------------------------

    @property
    def store(self) -> RedisStore:
        """The RedisStore this map belongs to."""
        return self._store

    @property
    def name(self) -> str:
        """The map's name (``""`` for the single map)."""
        return self._name

    @property
    def value_type(self) -> type[T]:
        """The declared value type."""
        return self._value_type  # type: ignore[no-any-return]

    @property
    def codec(self) -> Any:
        """The codec (``persist.codec_for``) the values go through."""
        return self._codec

    @property
    def redis_key(self) -> bytes:
        """The Redis key of the map's hash, ``<namespace>:<name>``."""
        return self._hash

    # -- reads --------------------------------------------------------------

    # get, [] and `in` are CachedReads' (compiled); a miss comes here.

    def _exists(self, key: str) -> bool:
        """Whether the server holds ``key`` (``in`` of a key not in the view)."""
        try:
            field = key.encode()
        except UnicodeEncodeError:
            return False
        return bool(self._call(key, "HEXISTS", self._hash, field))

    def _fetch(self, key: str) -> Any:
        """Read ``key`` from the server; cache it unless the view may have
        gone stale meanwhile (see the module docstring)."""
        try:
            field = key.encode()
        except UnicodeEncodeError:
            return MISSING  # no such field can exist
        gen = self._gen
        data = self._call(key, "HGET", self._hash, field)
        if data is None:
            return MISSING
        value = self._decode_named(key, data)
        if self._store._caching:
            with self._lock:
                if (
                    self._gen == gen
                    and self._store._caching
                    and key not in self._pending  # the view holds a newer change
                    and key not in self._inflight
                ):
                    self._view[key] = value
        return value

    def _decode_named(self, key: str, data: bytes) -> Any:
        try:
            return self._decode(data)
        except DecodeError as exc:
            raise DecodeError(f"map {self._name!r}, key {key!r}: {exc}") from None

    def __len__(self) -> int:
        self._flush_for_read()
        return int(self._call(None, "HLEN", self._hash))

    def size(self) -> int:
        """Number of keys (same as ``len``)."""
        return len(self)

    def keys(self) -> list[str]:
        """A list of the keys (HSCAN; each key present throughout appears once)."""
        return list(self._scan())

    def values(self) -> list[T]:
        """A list of the values (HSCAN)."""
        return [self._decode_named(k, v) for k, v in self._scan().items()]

    def items(self) -> list[tuple[str, T]]:
        """A list of ``(key, value)`` pairs (HSCAN)."""
        return [(k, self._decode_named(k, v)) for k, v in self._scan().items()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def range(self, fn: Callable[[str, T], object]) -> None:
        """Call ``fn(key, value)`` for each item until it returns ``False``."""
        for key, value in self.items():
            if fn(key, value) is False:
                break

    def _scan(self) -> dict[str, bytes]:
        """Every field and its bytes, by HSCAN (never the whole hash in one
        reply), after sending this process's pending changes."""
        self._flush_for_read()
        out: dict[str, bytes] = {}
        cursor = 0
        while True:
            cursor, chunk = self._hscan(cursor, SCAN_COUNT)
            out.update(chunk)
            if cursor == 0:
                return out

    def _hscan(self, cursor: int, count: int) -> tuple[int, dict[str, bytes]]:
        """One HSCAN step: the next cursor (0: done) and fields by key."""
        following, chunk = self._store._read(
            f"map {self._name!r}",
            lambda: self._store._client.hscan(self._hash, cursor, count=count),
        )
        fields: dict[bytes, bytes] = chunk  # type: ignore[assignment]
        return following, {
            field.decode("utf-8", "surrogateescape"): data
            for field, data in fields.items()
        }

    def _flush_for_read(self) -> None:
        self._check_open()
        if self._pending or self._inflight:
            self._store.sync()

    # -- writes -------------------------------------------------------------

    def set_async(self, key: str, value: T) -> None:
        """Encode now; sent with the next background batch (or ``sync``);
        this process reads it at once."""
        self._check_open()
        _core.check_key(key)
        data = self._encode(value)
        self._queue(key, value, data)

    def _queue(self, key: str, value: Any, data: bytes | None) -> None:
        """Make ``key``'s async change pending (DELETED, None: a delete)."""
        with self._lock:
            self._pending[key] = (value, data)
            self._view[key] = value
        self._store._mark_dirty(self)

    def set(self, key: str, value: T) -> None:
        """Set; returns after the server acknowledged it."""
        self._write(key, value, False)

    def set_fsync(self, key: str, value: T) -> None:
        """Set; returns after the server's append-only file is fsync'd.

        :raises FsyncUnavailableError: the server cannot promise it (nothing written)
        """
        self._write(key, value, True)

    def __setitem__(self, key: str, value: T) -> None:
        self._write(key, value, False)

    def _write(self, key: str, value: Any, fsync: bool) -> None:
        store = self._store
        store._check_open()
        field = _field(key)
        data = self._encode(value)
        if fsync:
            store._fsync.check()
        store._commit(
            self._ticket(("HSET", self._hash, field, data), key, value, fsync)
        )

    def set_in_memory(self, key: str, value: T) -> None:
        """Refused: Redis has no memory-only layer (UnsupportedError)."""
        self._refuse_in_memory("set_in_memory")

    def update_in_memory(
        self, key: str, fn: Callable[[Update[T]], object]
    ) -> tuple[T | None, bool]:
        """Refused: Redis has no memory-only layer (UnsupportedError)."""
        self._refuse_in_memory("update_in_memory")

    def _refuse_in_memory(self, call: str) -> NoReturn:
        self._check_open()
        raise UnsupportedError(
            f"{call}: a Redis map has no memory-only layer (the local cache is "
            "dropped at every invalidation, so the value would vanish at random); "
            "use set_async / update, which reach the server"
        )

    def delete_async(self, key: str) -> bool:
        """Delete at the next background batch; return whether the key
        existed: known from this process's pending changes or cache, else
        asked of the server (one HEXISTS).  An absent key queues nothing."""
        self._check_open()
        field = _field(key)
        known = self._view.get(key, MISSING)
        if known is MISSING:
            existed = bool(self._call(key, "HEXISTS", self._hash, field))
        else:
            existed = known is not DELETED
        if existed:
            self._queue(key, DELETED, None)
        return existed

    def delete(self, key: str) -> bool:
        """Delete; returns after the server acknowledged; False if absent."""
        return self._delete(key, False)

    def delete_fsync(self, key: str) -> bool:
        """Delete; returns after the AOF is fsync'd; False if absent."""
        return self._delete(key, True)

    def __delitem__(self, key: str) -> None:
        if not self._delete(key, False):
            raise KeyError(key)

    def _delete(self, key: str, fsync: bool) -> bool:
        store = self._store
        store._check_open()
        field = _field(key)
        if fsync:
            store._fsync.check()
        ticket = self._ticket(("HDEL", self._hash, field), key, DELETED, fsync)
        return bool(store._commit(ticket))

    def _ticket(self, command: Command, key: str, value: Any, fsync: bool) -> Ticket:
        """A synchronous write of ``key``, which then holds ``value``."""
        return Ticket(command, self, None, fsync, key, value, self._gen)

    # -- atomic update --------------------------------------------------------

    def update_async(
        self, key: str, fn: Callable[[Update[T]], object]
    ) -> tuple[T | None, bool]:
        """The same as ``update`` (a compare-and-set needs the server's answer)."""
        return self._update(key, fn, False)

    # MutableMapping's overloads first, as in persist._core's stub (a str is
    # neither a mapping nor an iterable of pairs: update("k", fn) is a key form)
    @overload
    def update(self, other: SupportsKeysAndGetItem[str, T], /, **pairs: T) -> None: ...
    @overload
    def update(self, other: Iterable[tuple[str, T]], /, **pairs: T) -> None: ...
    @overload
    def update(self, **pairs: T) -> None: ...
    @overload
    def update(
        self, key: str, fn: Callable[[Update[T]], object], /
    ) -> tuple[T | None, bool]: ...
    @overload
    def update(
        self, key: str, /, *, fn: Callable[[Update[T]], object]
    ) -> tuple[T | None, bool]: ...

    def update(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
        """``update(key, fn)``: change one value atomically; or, as
        ``dict.update``, ``update(mapping_or_pairs, **pairs)``: set each pair.

        ``update(key, fn)`` reads the value, calls ``fn(upd)`` on an
        :class:`persist.Update` holding a copy, and stores, deletes or leaves
        it as ``upd`` says with a compare-and-set on the server (a Lua
        script): if another writer changed the key meanwhile, it reads again
        and calls ``fn`` again, so ``fn`` may run more than once and should
        have no other effects.  Returns ``(value or None, exists)``; if ``fn``
        raises, nothing changes.  A ``str`` first argument is a key; every
        write has the durability of ``set``.
        """
        if args and isinstance(args[0], str):
            if len(args) == 2 and not kwargs:
                return self._update(args[0], args[1], False)
            if len(args) == 1 and kwargs.keys() == {"fn"}:
                return self._update(args[0], kwargs["fn"], False)
            raise TypeError("update(key, fn) takes a key and a function")
        if len(args) > 1:
            raise TypeError(f"update expected at most 1 argument, got {len(args)}")
        if args:
            other = args[0]
            if isinstance(other, Mapping):
                mapping = cast("Mapping[str, T]", other)
                for key in mapping:
                    self._write(key, mapping[key], False)
            elif hasattr(other, "keys"):
                keyed = cast("SupportsKeysAndGetItem[str, T]", other)
                for key in keyed.keys():  # noqa: SIM118 (not a Mapping)
                    self._write(key, keyed[key], False)
            else:
                for key, value in other:
                    self._write(key, value, False)
        for key, value in kwargs.items():
            self._write(key, value, False)

    def update_fsync(
        self, key: str, fn: Callable[[Update[T]], object]
    ) -> tuple[T | None, bool]:
        """Like ``update``, returning after the AOF is fsync'd."""
        return self._update(key, fn, True)

    def _update(
        self, key: str, fn: Callable[[Update[Any]], object], fsync: bool
    ) -> tuple[Any, bool]:
        store = self._store
        store._check_open()
        field = _field(key)
        if fsync:
            store._fsync.check()
        if key in self._pending or key in self._inflight:
            store.sync()  # compare against what the server will hold
        attempt = 0
        while True:
            data = self._call(key, "HGET", self._hash, field)
            exists = data is not None
            current = self._decode_named(key, data) if data is not None else None
            verdict, value = _core._run_update(fn, current, exists, self._copy)
            if verdict == CANCEL:
                return (current, exists)
            if verdict == DELETE:
                if not exists:
                    return (None, False)
                new, result = None, (None, False)
            else:
                if not exists and value is None and verdict != SET:
                    return (None, False)
                new, result = self._encode(value), (value, True)
            if self._compare_and_set(key, field, data, new, value, fsync):
                return result
            attempt += 1
            store._backoff(self._what(key), attempt)

    def _compare_and_set(
        self,
        key: str,
        field: bytes,
        expected: bytes | None,
        new: bytes | None,
        new_value: Any,
        fsync: bool,
    ) -> bool:
        """Store ``new`` (None: delete), the encoding of ``new_value``, if the
        field still holds ``expected`` (None: is still absent); False if
        another writer got there first."""
        store = self._store
        command: Command = (
            "EVALSHA", store._cas_sha, 1, self._hash, field,
            b"0" if expected is None else b"1", expected or b"",
            b"D" if new is None else b"S", new or b"",
        )  # fmt: skip
        try:
            value = DELETED if new is None else new_value
            return bool(store._commit(self._ticket(command, key, value, fsync)))
        except ResponseError as exc:
            if "NOSCRIPT" not in str(exc):
                raise
            # a restarted server forgot it: nothing ran
            store._load_script()
            return False

    # -- the rest of the mapping protocol ---------------------------------------

    def pop(self, key: str, default: Any = MISSING, /) -> Any:
        """Delete ``key`` atomically (as ``delete``) and return its value;
        ``default`` if absent, or KeyError without one."""
        taken: list[Any] = []

        def take(upd: Update[Any]) -> None:
            taken.clear()
            if upd.exists:
                taken.append(upd.value)
                upd.delete()
            else:
                upd.cancel()

        self._update(key, take, False)
        if taken:
            return taken[0]
        if default is MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[str, T]:
        """Delete some key (as ``delete``) and return ``(key, value)``;
        KeyError if the map is empty."""
        while True:
            self._flush_for_read()
            _, chunk = self._hscan(0, 1)
            if not chunk:
                raise KeyError("popitem(): the map is empty")
            key = next(iter(chunk))
            value = self.pop(key, MISSING)
            if value is not MISSING:
                return key, value

    def setdefault(self, key: str, default: Any = None, /) -> Any:
        """Return the value of ``key``; if absent, first set it to ``default``
        (acknowledged before return), atomically."""

        def keep_or_set(upd: Update[Any]) -> None:
            if upd.exists:
                upd.cancel()
            else:
                upd.set(default)

        return self._update(key, keep_or_set, False)[0]

    def clear(self) -> None:
        """Delete every key: acknowledged before return (one batch)."""
        for key in self.keys():
            self._queue(key, DELETED, None)
        self._store.sync()

    def copy(self) -> dict[str, T]:
        """A ``dict`` of the items."""
        return dict(self.items())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (RedisMap, _core.PersistMap, Mapping)):
            theirs = cast("Iterable[tuple[object, object]]", other.items())
            return dict(self.items()) == dict(theirs)
        return NotImplemented

    __hash__: ClassVar[None] = None  # type: ignore[assignment]  # mutable, compared by contents

    def sync(self) -> None:
        """Send the pending async changes now (every map's of the store)."""
        self._store.sync()

    def __enter__(self) -> RedisMap[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._store.close()

    # -- used by the store and its committer ----------------------------------

    def _check_open(self) -> None:
        if not self._open:
            raise NotOpenError(self._why_closed)

    def _what(self, key: str | None) -> str:
        return f"map {self._name!r}" + ("" if key is None else f", key {key!r}")

    def _call(self, key: str | None, *command: Any) -> Any:
        return self._store._read(
            self._what(key),
            lambda: self._store._client.execute_command(*command),  # type: ignore[no-untyped-call]
        )

    def _take_pending(self) -> list[Command]:
        """Move the pending changes in flight; return one HSET and one HDEL."""
        with self._lock:
            if not self._pending:
                return []
            self._inflight, self._pending = self._pending, {}
            self._batch_gen = self._gen
            sets: list[bytes] = []
            deletes: list[bytes] = []
            for key, (_, data) in self._inflight.items():
                field = key.encode()
                if data is None:
                    deletes.append(field)
                else:
                    sets += (field, data)
        commands: list[Command] = []
        if sets:
            commands.append(("HSET", self._hash, *sets))
        if deletes:
            commands.append(("HDEL", self._hash, *deletes))
        return commands

    def _sent(self, ok: bool) -> None:
        """The in-flight changes were applied (the view keeps them as the
        server's values, unless an invalidation came meanwhile), or not
        (pending again, unless a newer change replaced them)."""
        with self._lock:
            if ok:
                inflight, self._inflight = self._inflight, {}
                if self._gen != self._batch_gen or not self._store._caching:
                    for key in inflight:
                        if key not in self._pending:
                            self._view.pop(key, None)
                self._gen += 1  # a read of the server begun before must not cache
            else:
                self._inflight.update(self._pending)
                self._pending, self._inflight = self._inflight, {}
        if not ok:
            self._store._mark_dirty(self)

    def _wrote(self, ticket: Ticket, reply: Any) -> None:
        """A synchronous write of ours got ``reply`` (None: the batch failed):
        its key now holds ``ticket.value`` if it was applied (a CAS reply 0
        or an error: not) and no invalidation came since the write was made;
        otherwise the key leaves the view.  A newer async change stays."""
        key, command = ticket.key, ticket.command
        assert key is not None and command is not None
        if reply is None or isinstance(reply, Exception):
            applied = False
        else:  # HSET/HDEL always leave the key as written; a CAS only on 1
            applied = command[0] != "EVALSHA" or reply == 1
        with self._lock:
            keep = applied and self._gen == ticket.gen and self._store._caching
            self._gen += 1  # a read of the server begun before it must not cache
            if key in self._pending or key in self._inflight:
                return
            if keep:
                self._view[key] = ticket.value
            else:
                self._view.pop(key, None)

    def _invalidate(self) -> None:
        """Another writer (or tracking itself) says the hash changed."""
        with self._lock:
            self._reset_view()

    def _reset_view(self) -> None:
        """Keep only this process's unsent changes in the view (lock held)."""
        self._gen += 1
        view = {k: v for k, (v, _) in self._inflight.items()}
        view.update((k, v) for k, (v, _) in self._pending.items())
        self._view = view


cast("ABCMeta", MutableMapping).register(RedisMap)  # typeshed's is typing's alias
