"""Store: opens, locks and loads a go-persist file; owns its maps and threads."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple, TypeVar, overload

from . import _core  # pyright: ignore[reportPrivateUsage]  # the package's own private module
from ._files import create_like, descriptors_on, lock_file
from .codecs import codec_for
from .errors import (
    DecodeError,
    InvalidKeyError,
    KeyNotFoundError,
    MapExistsError,
    NotOpenError,
    PersistError,
    ShrinkInProgressError,
)

__all__ = ["RefreshResult", "Stats", "Store", "open_single_map"]

T = TypeVar("T")
log: logging.Logger = logging.getLogger("persist")

SHRINK_SUFFIX = ".shrink-tmp"
SHRINK_CHUNK = 1 << 20  # shrink writes the new file in parts of about this size
SHRINK_SYNC_EVERY = 16 << 20  # ... and fsyncs it after about this many bytes
CATCH_UP_ROUNDS = 8  # copies of the writes made during a shrink, before the last
_open_stores: weakref.WeakSet[Store] = weakref.WeakSet()


class Stats(NamedTuple):
    """Live keys (every map plus orphan records) and complete records in the file."""

    active_keys: int
    wal_records: int


class RefreshResult(NamedTuple):
    """What ``Store.refresh`` read: complete records applied (all of the file's
    when it was reloaded), and whether the file was reloaded from scratch."""

    records: int
    reloaded: bool


# Python's way to document named-tuple fields: help() shows these.
Stats.active_keys.__doc__ = "Live keys: every registered map's plus the orphans."
Stats.wal_records.__doc__ = (
    "Complete records in the file (a shrink leaves one per key)."
)
RefreshResult.records.__doc__ = (
    "Complete records applied (the whole file's on a reload)."
)
RefreshResult.reloaded.__doc__ = "True if the file was replaced or cut and loaded anew."


def _log_error(exc: BaseException) -> None:
    log.error("persist background work failed: %s", exc, exc_info=exc)


def _seconds(value: float | timedelta) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not seconds > 0:
        raise ValueError(f"interval must be > 0 seconds, got {value!r}")
    return seconds


def _check_map_name(name: str) -> None:
    _core.check_key(name)
    if ":" in name:
        raise InvalidKeyError(f"map name {name!r} must not contain ':'")


def _check_plain_key(key: str) -> None:
    _core.check_key(key)
    if not key:
        raise InvalidKeyError(
            "the plain Store API's key must not be empty (Go cannot read 'S ')"
        )
    if ":" in key:
        raise InvalidKeyError(
            f"plain Store API key {key!r} must not contain ':' (it would name a map)"
        )


class Store:
    """A go-persist file holding any number of typed maps and orphan records.

    :param path: open this file at once (otherwise call ``open`` later)
    :param readonly: read a file another process writes: no lock, no
        background threads, every write raises ReadOnlyError; ``refresh``
        reads what the owner wrote since

    Lifecycle (``_state``): ``closed`` -> ``open`` (open) -> ``closing``
    (close: the writer refuses new records, the maps refuse new calls, the
    threads stop, everything queued is written and fsync'd) -> ``closed`` (the
    descriptor and its lock are released).  An interrupted close leaves
    ``closing`` and the next close() resumes it.  The failed state is the
    writer's: after a failed fsync every write raises StoreFailedError, reads
    go on, close() releases.  A forked child's copy is ``closed`` at once and
    says the store belongs to the parent.  The lock order is in _core.pxd.

    :ivar error_handler: called with each exception of the background sync or
        auto-shrink (default: log it); an exception it raises is logged too
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, readonly: bool = False
    ) -> None:
        self._readonly = readonly
        self._read_end = 0  # a read-only store: the end of the records loaded
        self._refresh_lock = threading.Lock()
        self._lock = threading.RLock()
        self._close_lock = threading.Lock()
        self._shrink_lock = threading.Lock()
        self._maps: dict[str, _core.PersistMap[Any]] = {}
        self._raw_maps: dict[str | None, _core.PersistMap[Any]] = {}
        self._writer: _core.WalWriter | None = None
        self._state = "closed"
        self._why_closed = "the store is not open"
        self._path: str | None = None
        self._pid = os.getpid()
        self._sync_interval = 1.0
        self._wake = threading.Condition(threading.Lock())
        self._sync_thread: threading.Thread | None = None
        self._shrink_thread: threading.Thread | None = None
        self._shrink_stop = threading.Event()
        self.error_handler: Callable[[BaseException], object] = _log_error
        if path is not None:
            self.open(path)

    # -- attributes ---------------------------------------------------------

    @property
    def path(self) -> str | None:
        """The file's path (None before the first open)."""
        return self._path

    @property
    def readonly(self) -> bool:
        """True for a store opened with ``readonly=True``."""
        return self._readonly

    @property
    def closed(self) -> bool:
        """True until ``open`` succeeds, and again after ``close``."""
        return self._writer is None

    @property
    def sync_interval(self) -> float:
        """Seconds between background writes (and fsyncs) of async changes."""
        return self._sync_interval

    @sync_interval.setter
    def sync_interval(self, value: float | timedelta) -> None:
        self._sync_interval = _seconds(value)
        with self._wake:
            self._wake.notify_all()

    def __repr__(self) -> str:
        return (
            f"<persist.Store {self._path!r} {self._state}"
            f"{' read-only' if self._readonly else ''}, maps {sorted(self._maps)}>"
        )

    # -- maps ---------------------------------------------------------------

    @overload
    def map(
        self, name: str, value_type: type[T], *, converter: Any = None
    ) -> _core.PersistMap[T]: ...
    @overload
    def map(
        self, name: str, value_type: Any, *, converter: Any = None
    ) -> _core.PersistMap[Any]: ...

    def map(
        self, name: str, value_type: Any, *, converter: Any = None
    ) -> _core.PersistMap[Any]:
        """Register the typed map ``name``; its records load (or are adopted) now.

        :param converter: a ``cattrs.Converter`` whose hooks encode the values
        :raises MapExistsError: the name is taken
        """
        _check_map_name(name)
        codec = codec_for(value_type, converter=converter)
        with self._refresh_lock, self._lock:  # a refresh fills the raw maps
            if name in self._maps:
                raise MapExistsError(f"map {name!r} is already registered")
            m: _core.PersistMap[Any] = _core.PersistMap(
                self, name, value_type, codec, f"{name}:".encode()
            )
            raw = self._raw_maps.pop(name, None)
            if raw is not None:
                m._adopt(raw)
            if self._state == "open":
                m._attach(self._writer)
            else:
                m._attach(None, self._why_closed)
            self._maps[name] = m
            return m

    def _route(self, name: str | None) -> _core.PersistMap[Any]:
        """The map that records of ``name`` load into (a raw one if unregistered).

        Bare keys belong to the single map ``""`` when it is registered (Go's
        OpenSingleMap reads them so); otherwise they are orphans.
        """
        if name is None and "" in self._maps:
            name = ""
        if name is not None and name in self._maps:
            return self._maps[name]
        return self._raw_map(name)

    def _raw_map(self, name: str | None) -> _core.PersistMap[Any]:
        """The raw map of an unregistered map's records (None: the orphans)."""
        raw = self._raw_maps.get(name)
        if raw is None:
            prefix = b"" if name is None else f"{name}:".encode()
            raw = self._raw_maps[name] = _core.PersistMap[Any](
                self, name, None, None, prefix
            )
        return raw

    def _all_maps(self) -> list[_core.PersistMap[Any]]:
        with self._lock:
            return [*self._maps.values(), *self._raw_maps.values()]

    # -- lifecycle ----------------------------------------------------------

    def open(self, path: str | os.PathLike[str]) -> None:
        """Open and lock ``path`` (created if missing) and load every record;
        a read-only store opens it for reading only (FileNotFoundError if
        missing), takes no lock and leaves a torn tail in place.

        :raises StoreLockedError: another Store holds the file
        :raises CorruptWALError: a record in the middle is broken; nothing changed
        """
        path = os.fspath(path)
        with self._lock:
            if self._state != "closed":
                raise PersistError(f"store is already open on {self._path!r}")
            fd = self._open_file(path)
            # Memory is dropped here, not at close: a call already inside
            # when close() began must still see the values it acts on.
            self._forget_contents()
            try:
                if not self._readonly:
                    with contextlib.suppress(FileNotFoundError):
                        _core.sys_unlink(path + SHRINK_SUFFIX)  # a crashed shrink's
                self._raw_map(None)  # Store.set/delete write here
                valid_end, size, records = _core.load(fd, path, self._route)
                writer = _core.WalWriter(
                    fd, path, valid_end, size, records, self._readonly
                )
                if size == 0 and not self._readonly:
                    writer.write_header()  # a new file: header, fsync, dir entry
            except BaseException:
                os.close(fd)
                self._forget_contents()
                raise
            self._path = path
            self._pid = os.getpid()
            self._writer = writer
            self._read_end = valid_end
            self._state = "open"
            for m in self._all_maps():
                m._attach(writer)
            _open_stores.add(self)
            if self._readonly:
                return
            self._sync_thread = threading.Thread(
                target=self._sync_loop,
                args=(writer,),
                name=f"persist-sync {path}",
                daemon=True,
            )
            self._sync_thread.start()

    def _open_file(self, path: str) -> int:
        """The descriptor open() loads from: locked (the file created if
        missing), or for a read-only store, for reading only and unlocked."""
        if self._readonly:
            return _core.sys_open(path, os.O_RDONLY | os.O_CLOEXEC)
        return lock_file(path)

    def close(self) -> None:
        """Write every change made so far, fsync, stop background work and
        release the file; may be called from any thread, twice, and again
        after an interruption (it resumes)."""
        if os.getpid() != self._pid:
            return  # a forked child's copy: the parent's file is not ours
        own_thread = threading.current_thread() in (
            self._sync_thread,
            self._shrink_thread,
        )
        # A background thread never waits for another closer: that closer
        # may be joining it.  The other closer finishes the job.
        if not self._close_lock.acquire(blocking=not own_thread):
            return
        try:
            self._close(own_thread)
        finally:
            self._close_lock.release()

    def _close(self, own_thread: bool) -> None:
        with self._lock:
            writer = self._writer
            if writer is None:
                return
            self._state = "closing"
            self._why_closed = f"{self._path}: the store is closed"
            maps = [*self._maps.values(), *self._raw_maps.values()]
        writer.stop(self._why_closed)  # from here no change is accepted
        for m in maps:
            m._attach(None, self._why_closed)
        with self._wake:
            self._wake.notify_all()
        self._stop_thread(self._sync_thread)
        self.stop_auto_shrink()
        with self._shrink_lock:  # a shrink in another thread gives up first
            pass
        try:
            if writer.failure is None and not writer.readonly:
                writer.flush(fsync=True)
                writer.sync_directory()
        except (OSError, PersistError):
            self._release(writer)
            raise
        self._release(writer)

    def _release(self, writer: _core.WalWriter) -> None:
        """The last step of close: hand back the descriptor and its lock."""
        with self._refresh_lock:  # a refresh reads from the descriptor
            fd = writer.release()
            os.close(fd)
        with self._lock:
            self._writer = None
            self._state = "closed"
            self._sync_thread = None
        _open_stores.discard(self)

    def _forget_contents(self) -> None:
        """Empty every map and drop the raw ones (before a load)."""
        for m in self._all_maps():
            m._clear()
        self._raw_maps.clear()

    @staticmethod
    def _stop_thread(thread: threading.Thread | None) -> None:
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open_writer(self) -> _core.WalWriter:
        writer = self._writer
        if writer is None or self._state != "open":
            raise NotOpenError(self._why_closed)
        return writer

    def _writable_writer(self) -> _core.WalWriter:
        """The writer of an open store that may write (ReadOnlyError if not)."""
        writer = self._open_writer()
        writer.check_writable()
        return writer

    def _report(self, exc: BaseException) -> None:
        """Hand a background failure to error_handler; never let it escape."""
        try:
            self.error_handler(exc)
        except Exception:
            log.exception("persist error_handler raised while handling %r", exc)

    # -- flushing -----------------------------------------------------------

    def sync(self) -> None:
        """Write every pending async change to the file now (no fsync)."""
        self._writable_writer().flush(fsync=False)

    def fsync_all(self) -> None:
        """Write every pending async change, then fsync the file."""
        self._writable_writer().flush(fsync=True)

    def _sync_loop(self, writer: _core.WalWriter) -> None:
        """Every ``sync_interval``: write the async changes and fsync."""
        last = time.monotonic()
        while True:
            with self._wake:
                # Checked under the lock close() and the sync_interval setter
                # notify with: no lost wake-up; a new interval counts from the
                # last flush.
                while self._writer is writer and self._state == "open":
                    remaining = last + self._sync_interval - time.monotonic()
                    if remaining <= 0:
                        break
                    self._wake.wait(remaining)
            if self._writer is not writer or self._state != "open":
                return
            last = time.monotonic()
            if writer.failure is not None or not writer.needs_flush():
                continue
            try:
                writer.flush(fsync=True)
            except Exception as exc:  # reported; retried next round
                if self._writer is writer and self._state == "open":
                    self._report(exc)

    # -- plain Store API (orphan records) -----------------------------------

    def set(self, key: str, value: Any) -> None:
        """Write ``value`` under the bare ``key`` (no map), before returning."""
        _check_plain_key(key)
        orphans = self._orphans()
        orphans._set_raw(key, codec_for(type(value)).encode(value))

    @overload
    def get(self, key: str, value_type: type[T]) -> T: ...
    @overload
    def get(self, key: str, value_type: Any) -> Any: ...

    def get(self, key: str, value_type: Any) -> Any:
        """Decode the record ``key`` (or ``name:key`` of any map) as ``value_type``.

        :raises KeyNotFoundError: there is no such record
        """
        self._open_writer()
        _core.check_key(key)
        head, sep, rest = key.partition(":")
        with self._lock:
            if sep:
                owners = [self._maps.get(head) or self._raw_maps.get(head)]
            else:  # a bare key: an orphan, or a key of the single map
                rest = key
                owners = [self._raw_maps.get(None), self._maps.get("")]
        for owner in owners:
            data = None if owner is None else owner._get_raw(rest)
            if data is not None:
                try:
                    return codec_for(value_type).decode(data)
                except DecodeError as exc:
                    raise DecodeError(f"key {key!r}: {exc}") from None
        raise KeyNotFoundError(key)

    def delete(self, key: str) -> bool:
        """Delete the bare ``key``; False if it did not exist."""
        _check_plain_key(key)
        return self._orphans().delete(key)

    def _orphans(self) -> _core.PersistMap[Any]:
        """The raw map of bare keys of the open store (its writes refuse
        themselves once a close begins)."""
        self._writable_writer()
        with self._lock:
            orphans = self._raw_maps.get(None)
        if orphans is None:
            raise NotOpenError(self._why_closed)
        return orphans

    # -- stats and shrink ---------------------------------------------------

    def stats(self) -> Stats:
        """Live keys and the number of complete records in the file."""
        writer = self._open_writer()
        active = 0
        for m in self._all_maps():
            active += len(m)
        return Stats(active, writer.file_records)

    def shrink(self) -> None:
        """Rewrite the file with one record per live key; writers keep going.

        Crash-safe and atomic against everything: the new file is written
        next to the old one (created exclusively, with its mode and owner),
        fsync'd and locked, and renamed over it in the same step as the
        writer switches to it; then the directory is fsync'd.  A failure
        before the rename leaves the store on its file; a failed directory
        fsync fails the store (StoreFailedError).
        """
        writer = self._writable_writer()
        if not self._shrink_lock.acquire(blocking=False):
            raise ShrinkInProgressError(f"{self._path} is being shrunk already")
        try:
            self._open_writer()  # a close may have begun meanwhile
            self._shrink(writer)
        finally:
            self._shrink_lock.release()

    def _shrink(self, writer: _core.WalWriter) -> None:
        path = writer.path
        tmp = path + SHRINK_SUFFIX
        fd = create_like(tmp, os.fstat(writer.fd))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            writer.start_capture()
            records = self._dump(writer, fd)
            # Copy the writes made meanwhile while writers go on, until little
            # is left; the last part is copied with writers held off.
            for _ in range(CATCH_UP_ROUNDS):
                captured, more = writer.drain_capture()
                _core.sys_write(fd, captured)
                records += more
                if len(captured) < SHRINK_CHUNK:
                    break
            _core.sys_fsync(fd, tmp)
            captured, more = writer.end_capture()
            _core.sys_write(fd, captured)
            _core.sys_fsync(fd, tmp)
            writer.install(fd, records + more, tmp)
        except BaseException:
            # The writer knows how far the shrink got (the rename and the
            # switch are one step of its own): undo exactly that.
            if writer.fd != fd:
                writer.abort()
            raise
        finally:
            if writer.fd != fd:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        writer.sync_directory()

    def _dump(self, writer: _core.WalWriter, fd: int) -> int:
        """Write the header and one record per live key to ``fd`` in parts of
        about SHRINK_CHUNK, writing without the GIL; stop if the store closes."""
        out = bytearray(_core.HEADER_BYTES)
        records = unsynced = 0
        for m in self._all_maps():
            index = 0
            while (snapshot := m._shard_snapshot(index)) is not None:
                index += 1
                pos = 0
                while pos >= 0:
                    pos, n = m._dump_part(snapshot, pos, out, SHRINK_CHUNK)
                    records += n
                    if len(out) >= SHRINK_CHUNK:
                        unsynced += _core.sys_write(fd, out)
                        out.clear()
                        if not writer.accepting:
                            raise NotOpenError(self._why_closed)
                        if unsynced >= SHRINK_SYNC_EVERY:
                            # write back as we go: one fsync of the whole
                            # file at the end stalls every writer of the disk
                            _core.sys_fsync(fd, writer.path + SHRINK_SUFFIX)
                            unsynced = 0
        _core.sys_write(fd, out)
        return records

    def start_auto_shrink(
        self, interval: float | timedelta = 60.0, ratio: float = 1.8
    ) -> None:
        """Shrink in the background whenever wal_records / active_keys >= ratio.

        :param interval: seconds (or a timedelta) between checks
        :param ratio: must be > 1.0
        """
        seconds = _seconds(interval)
        if not ratio > 1.0:
            raise ValueError(f"ratio must be > 1.0, got {ratio!r}")
        self._writable_writer()
        self.stop_auto_shrink()
        self._shrink_stop = stop = threading.Event()
        self._shrink_thread = threading.Thread(
            target=self._auto_shrink_loop,
            args=(seconds, ratio, stop),
            name=f"persist-shrink {self._path}",
            daemon=True,
        )
        self._shrink_thread.start()

    def stop_auto_shrink(self) -> None:
        """Stop background compaction (a shrink under way finishes first)."""
        thread = self._shrink_thread
        if thread is None:
            return
        self._shrink_stop.set()
        self._stop_thread(thread)
        if self._shrink_thread is thread:
            self._shrink_thread = None

    def _auto_shrink_loop(
        self, interval: float, ratio: float, stop: threading.Event
    ) -> None:
        while not stop.wait(interval):
            try:
                active, records = self.stats()
                if records and (not active or records / active >= ratio):
                    self.shrink()
            except ShrinkInProgressError:
                continue
            except NotOpenError:
                return
            except Exception as exc:  # reported; retried next round
                self._report(exc)

    # -- read-only stores ---------------------------------------------------

    def refresh(self) -> RefreshResult:
        """Read what the process owning the file wrote since the last load.

        Applies the complete records appended since (a torn tail waits for
        the next call); if the file at ``path`` was replaced (the owner's
        shrink) or is shorter than what was read, loads it from scratch into
        the same map objects (each shard's dict swapped under its lock).  A
        concurrent reader sees each key's old or new value.  On a writable store
        there is nothing to read (it owns the file): returns ``(0, False)``.

        :raises CorruptWALError: a complete record is broken; memory unchanged
        """
        with self._refresh_lock:
            writer = self._open_writer()
            if not writer.readonly:
                return RefreshResult(0, False)
            now = os.stat(writer.path)
            ours = os.fstat(writer.fd)
            if (
                self._read_end == 0  # the header was not there yet
                or (now.st_ino, now.st_dev) != (ours.st_ino, ours.st_dev)
                or now.st_size < self._read_end
            ):
                return self._reload(writer)
            before = writer.file_records
            end, _, records = _core.load_appended(
                writer.fd, writer.path, self._route_locked, self._read_end, before
            )
            writer.reading(writer.fd, records)
            self._read_end = end
            return RefreshResult(records - before, False)

    def _reload(self, writer: _core.WalWriter) -> RefreshResult:
        """refresh() of a replaced or shortened file: load it whole into
        staging maps, then make every map hold exactly their records."""
        fd = _core.sys_open(writer.path, os.O_RDONLY | os.O_CLOEXEC)
        staged: dict[int, _core.PersistMap[Any]] = {}  # by id: maps are unhashable

        def route(name: str | None) -> _core.PersistMap[Any]:
            target = self._route_locked(name)
            if id(target) not in staged:
                staged[id(target)] = _core.PersistMap(None, name, None, None, b"")
            return staged[id(target)]

        try:
            end, _, records = _core.load(fd, writer.path, route)
            for target in self._all_maps():
                _core.replace_contents(target, staged.get(id(target)))
        except BaseException:
            os.close(fd)
            raise
        os.close(writer.reading(fd, records))
        self._read_end = end
        return RefreshResult(records, True)

    def _route_locked(self, name: str | None) -> _core.PersistMap[Any]:
        with self._lock:
            return self._route(name)

    # -- process events -----------------------------------------------------

    def _forked(self) -> None:
        """In a fork child: close the inherited descriptors (so only the
        parent holds the lock), reset the locks, refuse every call."""
        writer = self._writer
        if writer is None:
            return
        # the writer's descriptor, and a shrink's new file (open in a thread
        # of the parent at any step, even before its fd was stored anywhere)
        path = writer.path
        for fd in [writer.detach(), *descriptors_on(path, path + SHRINK_SUFFIX)]:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._why_closed = (
            f"{self._path}: this store belongs to the parent process "
            f"(pid {self._pid}); open the file again in the child"
        )
        self._lock = threading.RLock()
        self._close_lock = threading.Lock()
        self._shrink_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._wake = threading.Condition(threading.Lock())
        self._shrink_stop = threading.Event()
        self._writer = None
        self._state = "closed"
        self._sync_thread = self._shrink_thread = None
        for m in self._all_maps():
            m._attach(None, self._why_closed)


@overload
def open_single_map(
    path: str | os.PathLike[str],
    value_type: type[T],
    *,
    converter: Any = None,
    readonly: bool = False,
) -> _core.PersistMap[T]: ...
@overload
def open_single_map(
    path: str | os.PathLike[str],
    value_type: Any,
    *,
    converter: Any = None,
    readonly: bool = False,
) -> _core.PersistMap[Any]: ...


def open_single_map(
    path: str | os.PathLike[str],
    value_type: Any,
    *,
    converter: Any = None,
    readonly: bool = False,
) -> _core.PersistMap[Any]:
    """Open ``path`` holding one map (keys ``:key``), with auto-shrink (60 s, 1.8);
    ``readonly=True`` opens it as ``Store(path, readonly=True)`` does (no
    auto-shrink; ``m.store.refresh()`` reads the owner's new records).

    The returned map is a context manager that closes its store.
    """
    store = Store(readonly=readonly)
    m = store.map("", value_type, converter=converter)
    store.open(path)
    if not readonly:
        store.start_auto_shrink(60.0, 1.8)
    return m


def _close_all_at_exit() -> None:
    for store in list(_open_stores):
        try:
            store.close()
        except Exception:  # exiting: report and go on
            log.exception("closing %r at exit failed", store)


def _after_fork_in_child() -> None:
    _core._after_fork_in_child()  # pyright: ignore[reportPrivateUsage]
    for store in list(_open_stores):
        store._forked()  # pyright: ignore[reportPrivateUsage]
    _open_stores.clear()


atexit.register(_close_all_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
