"""Type stub for the compiled core (persist/_core.pyx)."""

from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any, ClassVar, Generic, TypeVar, overload

from _typeshed import SupportsKeysAndGetItem

from .store import Store

T = TypeVar("T")
D = TypeVar("D")

HEADER_BYTES: bytes
DEFAULT_SHARDS: int

def check_key(key: str) -> None: ...
def load(
    fd: int, path: str, route: Callable[[str | None], PersistMap[Any]]
) -> tuple[int, int, int]: ...
def scan(
    fd: int,
    path: str,
    route: Callable[[str | None], PersistMap[Any]],
    totals: list[int],
) -> Iterator[list[Any]]:
    """Parse a WAL without applying it: each block's records as a flat list
    ``[map, key, raw or None, ...]``; ``totals`` then holds ``[valid_end,
    file_size, records]``."""

def load_appended(
    fd: int,
    path: str,
    route: Callable[[str | None], PersistMap[Any]],
    start: int,
    records: int,
) -> tuple[int, int, int]: ...
def replace_contents(
    target: PersistMap[Any], staging: PersistMap[Any] | None
) -> None: ...
def sys_open(path: str, flags: int, mode: int = 0o644) -> int: ...
def sys_write(fd: int, data: bytes | bytearray | memoryview) -> int: ...
def sys_fsync(fd: int, path: str | None = None) -> None: ...
def sys_fsync_dir(path: str) -> None: ...
def sys_rename(src: str, dst: str) -> None: ...
def sys_unlink(path: str) -> None: ...
def sys_fchmod(fd: int, mode: int) -> None: ...
def sys_fchown(fd: int, uid: int, gid: int) -> None: ...
def _set_fault_hook(hook: Callable[[str], int | str | None] | None) -> None: ...
def _after_fork_in_child() -> None: ...
def _run_update(
    fn: Callable[[Update[Any]], object],
    current: Any,
    exists: bool,
    copy: Callable[[Any], Any],
) -> tuple[int, Any]: ...

class WalWriter:
    @property
    def fd(self) -> int: ...
    path: str
    file_records: int
    accepting: bool
    released: bool
    readonly: bool
    failure: BaseException | None
    def __init__(
        self,
        fd: int,
        path: str,
        valid_end: int,
        file_size: int,
        records: int,
        readonly: bool = False,
    ) -> None: ...
    def check_writable(self) -> None: ...
    def reading(self, fd: int, records: int) -> int: ...
    def flush(self, fsync: bool = False) -> None: ...
    def write_header(self) -> None: ...
    def needs_flush(self) -> bool: ...
    def stop(self, message: str) -> None: ...
    def release(self) -> int: ...
    def detach(self) -> int: ...
    def start_capture(self) -> None: ...
    def drain_capture(self) -> tuple[bytearray, int]: ...
    def end_capture(self) -> tuple[bytearray, int]: ...
    def abort(self) -> None: ...
    def install(self, fd: int, records: int, tmp: str) -> None: ...
    def sync_directory(self) -> None: ...

class Update(Generic[T]):
    """What an ``update`` function sees: a copy of the value, and its verdict.

    Mutate ``value`` or assign it (or call ``set``) to store; ``delete()`` to
    delete; ``cancel()`` to leave map and file as they were.
    """

    value: T | None
    """A copy of the stored value (None when there is none): mutate or assign it."""
    @property
    def exists(self) -> bool:
        """True if the key had a value when the function was called."""
    def set(self, value: T) -> None:
        """Store ``value`` when the function returns."""
    def delete(self) -> None:
        """Delete the key when the function returns."""
    def cancel(self) -> None:
        """Change nothing."""

class PersistMap(MutableMapping[str, T]):
    """A typed map whose writes go to the store's write-ahead log.

    Made by ``Store.map`` or ``open_single_map``; every method is thread-safe.
    """

    @property
    def store(self) -> Store:
        """The Store this map belongs to (its file, sync and close)."""
    @property
    def name(self) -> str:
        """The map's name: the prefix of its keys in the file ("" for a single map)."""
    @property
    def value_type(self) -> type[T]:
        """The type of the map's values, as given to ``Store.map``."""
    @property
    def codec(self) -> Any:
        """The persist.Codec that encodes, decodes and copies the values."""
    def __init__(
        self,
        store: Any,
        name: str | None,
        value_type: Any,
        codec: Any,
        prefix: bytes,
        shards: int = 16,
    ) -> None: ...
    @overload
    def get(self, key: str, /) -> T | None:
        """Return the value of ``key``, or ``default``."""
    @overload
    def get(self, key: str, default: T, /) -> T: ...
    @overload
    def get(self, key: str, default: D, /) -> T | D: ...
    def __getitem__(self, key: str) -> T: ...
    def __setitem__(self, key: str, value: T) -> None: ...
    def __delitem__(self, key: str) -> None: ...
    def __contains__(self, key: object) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def __eq__(self, other: object) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]
    def size(self) -> int:
        """Number of keys (same as ``len``)."""
    # snapshots taken when called, as lists (not live views)
    def keys(self) -> list[str]:  # type: ignore[override]
        """A list of the keys (each key present throughout appears once)."""
    def values(self) -> list[T]:  # type: ignore[override]
        """A list of the values: those still raw from the file are decoded in
        one pass that runs no cyclic-GC collection (the bulk read path).
        """
    def items(self) -> list[tuple[str, T]]:  # type: ignore[override]
        """A list of ``(key, value)`` pairs, decoded as ``values()`` decodes."""
    def range(self, fn: Callable[[str, T], object]) -> None:
        """Call ``fn(key, value)`` for each item until it returns ``False``."""
    def set_async(self, key: str, value: T) -> None:
        """Set in memory now; the background sync writes it to the WAL."""
    def set(self, key: str, value: T) -> None:
        """Set and write the record (write(2)) before returning."""
    def set_fsync(self, key: str, value: T) -> None:
        """Set, write and fsync before returning."""
    def set_in_memory(self, key: str, value: T) -> None:
        """Set in memory only; persisted by a later write of the key or a shrink."""
    def delete_async(self, key: str) -> bool:
        """Delete in memory now, in the WAL at the next background sync."""
    def delete(self, key: str) -> bool:
        """Delete and write the record before returning; False if absent."""
    def delete_fsync(self, key: str) -> bool:
        """Delete, write and fsync before returning; False if absent."""
    @overload
    def pop(self, key: str, /) -> T:
        """Delete ``key`` (written before return, as ``delete``) and return
        its value; ``default`` if absent, or KeyError without one.
        """
    @overload
    def pop(self, key: str, default: T, /) -> T: ...
    @overload
    def pop(self, key: str, default: D, /) -> T | D: ...
    def popitem(self) -> tuple[str, T]:
        """Delete some key (written before return) and return ``(key, value)``;
        KeyError if the map is empty.
        """
    def setdefault(self, key: str, default: T, /) -> T:
        """Return the value of ``key``; if absent, first set it to ``default``
        (written before return), atomically.
        """
    def clear(self) -> None:
        """Delete every key: written before return (one write for them all)."""
    def copy(self) -> dict[str, T]:
        """A ``dict`` of the items (the values themselves, not copies)."""
    def update_async(
        self, key: str, fn: Callable[[Update[T]], object]
    ) -> tuple[T | None, bool]:
        """Change the value with ``fn(upd)`` atomically; WAL at the next sync."""
    # MutableMapping's overloads first (pyright requires an override to handle
    # them in order), then the key form: a str is neither a mapping nor an
    # iterable of pairs, so ``update("k", fn)`` still picks the key form.
    @overload
    def update(self, other: SupportsKeysAndGetItem[str, T], /, **pairs: T) -> None:
        """``update(key, fn)``: change one value atomically; or, as
        ``dict.update``, ``update(mapping_or_pairs, **pairs)``: set each pair.

        ``update(key, fn)`` calls ``fn(upd)`` on an :class:`Update` holding a
        copy of the value (holding the key's shard), then stores, deletes or
        leaves the value as ``upd`` says, written before return; returns
        ``(value or None, exists)``.  If ``fn`` raises, nothing changes.
        The forms are told apart by the first argument: a ``str`` is a key
        (no ``dict.update`` argument is a str).  Either way every write has
        the durability of ``set``.
        """
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
    def update_fsync(
        self, key: str, fn: Callable[[Update[T]], object]
    ) -> tuple[T | None, bool]:
        """Like ``update``, and fsync'd before returning."""
    def update_in_memory(
        self, key: str, fn: Callable[[Update[T]], object]
    ) -> tuple[T | None, bool]:
        """Like ``update``, in memory only."""
    def sync(self) -> None:
        """Write the pending async changes to the file now (no fsync)."""
    def __enter__(self) -> PersistMap[T]: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def _attach(
        self, writer: WalWriter | None, why_closed: str | None = None
    ) -> None: ...
    def _shard_snapshot(self, index: int) -> dict[str, Any] | None: ...
    def _dump_part(
        self, snapshot: dict[str, Any], pos: int, out: bytearray, limit: int
    ) -> tuple[int, int]: ...
    def _adopt(self, other: PersistMap[Any]) -> None: ...
    def _clear(self) -> None: ...
    def _get_raw(self, key: str) -> bytes | None: ...
    def _set_raw(self, key: str, data: bytes) -> None: ...
    def _raw_items(self) -> list[tuple[str, bytes, int]]: ...
