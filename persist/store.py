"""Store: opens, locks and loads a go-persist file; owns its maps and threads."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import threading
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple, TypeVar, overload

from . import _core
from .codecs import codec_for
from .errors import (
    InvalidKeyError,
    KeyNotFoundError,
    MapExistsError,
    NotOpenError,
    PersistError,
    ShrinkInProgressError,
    StoreLockedError,
)

__all__ = ["Stats", "Store", "open_single_map"]

T = TypeVar("T")
log = logging.getLogger("persist")

SHRINK_SUFFIX = ".shrink-tmp"
_open_stores: weakref.WeakSet[Store] = weakref.WeakSet()


class Stats(NamedTuple):
    """Live keys (every map plus orphan records) and complete records in the file."""

    active_keys: int
    wal_records: int


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
    if ":" in key:
        raise InvalidKeyError(
            f"plain Store API key {key!r} must not contain ':' (it would name a map)"
        )


class Store:
    """A go-persist file holding any number of typed maps and orphan records.

    :param path: open this file at once (otherwise call ``open`` later)
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._lock = threading.RLock()
        self._maps: dict[str, _core.PersistMap[Any]] = {}
        self._raw_maps: dict[str | None, _core.PersistMap[Any]] = {}
        self._writer: _core.WalWriter | None = None
        self._path: str | None = None
        self._pid = os.getpid()
        self._sync_interval = 1.0
        self._wake = threading.Condition(threading.Lock())
        self._sync_thread: threading.Thread | None = None
        self._shrink_thread: threading.Thread | None = None
        self._shrink_stop = threading.Event()
        self._shrink_lock = threading.Lock()
        self.error_handler: Callable[[BaseException], object] = _log_error
        if path is not None:
            self.open(path)

    # -- attributes ---------------------------------------------------------

    @property
    def path(self) -> str | None:
        """The file's path (None before the first open)."""
        return self._path

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
        state = "closed" if self.closed else "open"
        return f"<persist.Store {self._path!r} {state}, maps {sorted(self._maps)}>"

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
        with self._lock:
            if name in self._maps:
                raise MapExistsError(f"map {name!r} is already registered")
            m: _core.PersistMap[Any] = _core.PersistMap(
                self, name, value_type, codec, f"{name}:".encode()
            )
            raw = self._raw_maps.pop(name, None)
            if raw is not None:
                m._adopt(raw)
            if self._writer is not None:
                m._attach(self._writer)
            self._maps[name] = m
            return m

    def _route(self, name: str | None) -> _core.PersistMap[Any]:
        """The map that records of ``name`` load into (a raw one if unregistered)."""
        if name is not None and name in self._maps:
            return self._maps[name]
        raw = self._raw_maps.get(name)
        if raw is None:
            prefix = b"" if name is None else f"{name}:".encode()
            raw = _core.PersistMap(self, name, None, None, prefix)
            self._raw_maps[name] = raw
        return raw

    def _all_maps(self) -> list[_core.PersistMap[Any]]:
        return [*self._maps.values(), *self._raw_maps.values()]

    # -- lifecycle ----------------------------------------------------------

    def open(self, path: str | os.PathLike[str]) -> None:
        """Open and lock ``path`` (created if missing) and load every record.

        :raises StoreLockedError: another Store holds the file
        :raises CorruptWALError: a record in the middle is broken; nothing changed
        """
        path = os.fspath(path)
        with self._lock:
            if self._writer is not None:
                raise PersistError(f"store is already open on {self._path!r}")
            fd = self._lock_file(path)
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path + SHRINK_SUFFIX)  # a crashed shrink's leftover
                self._route(None)
                valid_end, size, records = _core.load(fd, path, self._route)
                writer = _core.WalWriter(fd, path, valid_end, size, records)
                if size == 0:
                    writer.write_header()  # a new file gets it at once
            except BaseException:
                os.close(fd)
                for m in self._all_maps():
                    m._clear()
                self._raw_maps.clear()
                raise
            self._path = path
            self._pid = os.getpid()
            self._writer = writer
            for m in self._all_maps():
                m._attach(writer)
            _open_stores.add(self)
            self._sync_thread = threading.Thread(
                target=self._sync_loop,
                args=(writer,),
                name=f"persist-sync {path}",
                daemon=True,
            )
            self._sync_thread.start()

    @staticmethod
    def _lock_file(path: str) -> int:
        """Open ``path`` and take its exclusive lock; retry if a shrink replaced it."""
        while True:
            fd = os.open(
                path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644
            )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise StoreLockedError(f"{path} is open in another Store") from None
            st = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
            if now is not None and (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev):
                return fd
            os.close(fd)  # renamed over by the previous owner's shrink: try again

    def close(self) -> None:
        """Flush async changes, fsync, stop background work and release the file."""
        with self._lock:
            writer = self._writer
            if writer is None:
                return
            if os.getpid() != self._pid:  # a forked child: never touch the file
                self._detach(writer)
                return
            self.stop_auto_shrink()
            self._writer = None
            with self._wake:
                self._wake.notify_all()
            if self._sync_thread is not None:
                self._sync_thread.join()
                self._sync_thread = None
            try:
                self._flush(writer, fsync=True)
            finally:
                self._detach(writer)
                os.close(writer.fd)
                _open_stores.discard(self)

    def _detach(self, writer: _core.WalWriter) -> None:
        writer.close()
        self._writer = None
        for m in self._all_maps():
            m._attach(None)
            m._clear()
        self._raw_maps.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open_writer(self) -> _core.WalWriter:
        writer = self._writer
        if writer is None:
            raise NotOpenError("the store is not open")
        return writer

    # -- flushing -----------------------------------------------------------

    def _drain_async(self, writer: _core.WalWriter) -> None:
        """Queue every map's pending async changes on the writer (call order)."""
        writer.async_dirty = False
        for m in self._all_maps():
            m._drain()

    def _flush(self, writer: _core.WalWriter, *, fsync: bool) -> None:
        self._drain_async(writer)
        writer.flush(fsync)

    def sync(self) -> None:
        """Write every pending async change to the file now (no fsync)."""
        self._flush(self._open_writer(), fsync=False)

    def fsync_all(self) -> None:
        """Write every pending async change, then fsync the file."""
        self._flush(self._open_writer(), fsync=True)

    def _sync_loop(self, writer: _core.WalWriter) -> None:
        """Every ``sync_interval``: write the async changes and fsync."""
        while True:
            with self._wake:
                # Checked under the lock close() notifies with: no lost wake-up.
                if self._writer is writer:
                    self._wake.wait(self._sync_interval)
            if self._writer is not writer:
                return
            if not (writer.async_dirty or writer.has_unsynced()):
                continue
            try:
                self._flush(writer, fsync=True)
            except Exception as exc:  # reported; retried next round
                if self._writer is writer:
                    self.error_handler(exc)

    # -- plain Store API (orphan records) -----------------------------------

    def set(self, key: str, value: Any) -> None:
        """Write ``value`` under the bare ``key`` (no map), before returning."""
        _check_plain_key(key)
        self._open_writer()
        data = codec_for(type(value)).encode(value)
        self._raw_maps[None]._set_raw(key, data)

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
        name = head if sep else None  # a bare key is an orphan record
        if not sep:
            rest = key
        with self._lock:
            owner = self._maps.get(name) if name is not None else None
            if owner is None:
                owner = self._raw_maps.get(name)
        data = None if owner is None else owner._get_raw(rest)
        if data is None:
            raise KeyNotFoundError(key)
        return codec_for(value_type).decode(data)

    def delete(self, key: str) -> bool:
        """Delete the bare ``key``; False if it did not exist."""
        _check_plain_key(key)
        self._open_writer()
        return self._raw_maps[None].delete(key)

    # -- stats and shrink ---------------------------------------------------

    def stats(self) -> Stats:
        """Live keys and the number of complete records in the file."""
        writer = self._open_writer()
        with self._lock:
            maps = self._all_maps()
        active = 0
        for m in maps:
            active += len(m)
        return Stats(active, writer.file_records)

    def shrink(self) -> None:
        """Rewrite the file with one record per live key; writers keep going.

        Crash-safe: a temporary file is written, fsync'd, locked and renamed
        over the old one, then the directory is fsync'd.
        """
        writer = self._open_writer()
        if not self._shrink_lock.acquire(blocking=False):
            raise ShrinkInProgressError(f"{self._path} is being shrunk already")
        try:
            self._shrink(writer)
        finally:
            self._shrink_lock.release()

    def _shrink(self, writer: _core.WalWriter) -> None:
        path = writer.path
        tmp = path + SHRINK_SUFFIX
        fd = os.open(
            tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o644
        )
        installed = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._drain_async(writer)  # into the old file, not the capture
            writer.start_capture()
            try:
                with self._lock:
                    maps = self._all_maps()
                body = bytearray(_core.HEADER_BYTES)
                records = 0
                for m in maps:
                    records += m._dump_records(body)
                _write_all(fd, body)
                del body
                os.fsync(fd)

                def swap(captured: bytes) -> tuple[int, int]:
                    nonlocal installed
                    _write_all(fd, captured)
                    os.fsync(fd)
                    os.rename(tmp, path)
                    installed = True
                    _fsync_dir(path)
                    os.close(writer.fd)
                    return fd, records + captured.count(b"\n") // 2

                writer.finish_capture(swap)
            except BaseException:
                writer.abort_capture()
                raise
        finally:
            if not installed:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

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
        self._open_writer()
        self.stop_auto_shrink()
        self._shrink_stop.clear()
        self._shrink_thread = threading.Thread(
            target=self._auto_shrink_loop,
            args=(seconds, ratio),
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
        if thread is not threading.current_thread():
            thread.join()
        self._shrink_thread = None

    def _auto_shrink_loop(self, interval: float, ratio: float) -> None:
        while not self._shrink_stop.wait(interval):
            try:
                active, records = self.stats()
                if records and (not active or records / active >= ratio):
                    self.shrink()
            except ShrinkInProgressError:
                continue
            except NotOpenError:
                return
            except Exception as exc:  # reported; retried next round
                self.error_handler(exc)

    # -- process events -----------------------------------------------------

    def _forked(self) -> None:
        """In a fork child: the store is unusable and never writes the file."""
        writer = self._writer
        if writer is not None:
            writer.detach()
            self._writer = None
            for m in self._all_maps():
                m._attach(None)
            self._sync_thread = None
            self._shrink_thread = None
            self._lock = threading.RLock()
            self._shrink_lock = threading.Lock()
            self._wake = threading.Condition(threading.Lock())


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: str) -> None:
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@overload
def open_single_map(
    path: str | os.PathLike[str], value_type: type[T], *, converter: Any = None
) -> _core.PersistMap[T]: ...
@overload
def open_single_map(
    path: str | os.PathLike[str], value_type: Any, *, converter: Any = None
) -> _core.PersistMap[Any]: ...


def open_single_map(
    path: str | os.PathLike[str], value_type: Any, *, converter: Any = None
) -> _core.PersistMap[Any]:
    """Open ``path`` holding one map (keys ``:key``), with auto-shrink (60 s, 1.8).

    The returned map is a context manager that closes its store.
    """
    store = Store()
    m = store.map("", value_type, converter=converter)
    store.open(path)
    store.start_auto_shrink(60.0, 1.8)
    return m


def _close_all_at_exit() -> None:
    for store in list(_open_stores):
        try:
            store.close()
        except Exception:  # exiting: report and go on
            log.exception("closing %r at exit failed", store)


def _after_fork_in_child() -> None:
    for store in list(_open_stores):
        store._forked()
    _open_stores.clear()


atexit.register(_close_all_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
