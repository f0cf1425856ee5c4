"""Read-only stores: a second process reads a file while its owner writes.

The owner is a real child process (``WRITER`` below) that holds the file's
lock and obeys one command per line on stdin, answering ``ok`` on stdout once
the command's records are written: so the test knows exactly which records
are in the file when it refreshes.  The owner also shrinks (the file at the
path is replaced), dies by SIGKILL in the middle of an append (a torn tail),
and writes in a burst while reader threads race a refresh thread.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest
from childlib import fds_on
from conftest import HEADER, parse_wal, python_env, read_bytes, run_threads

import persist
from persist import CorruptWALError, NotOpenError, ReadOnlyError, StoreLockedError


@attrs.frozen
class Point:
    """The writer's value type (the child defines the same class)."""

    x: int
    y: int


# Commands: "set K X" (Point(X, 2X)), "del K", "shrink", "torn K X" (SIGKILL
# itself half-way through writing the record of K), "burst ROUNDS KEYS"
# (ROUNDS passes of sets over KEYS keys, version = pass, a shrink every 7
# passes), "quit".  Values always satisfy y == 2 * x.
WRITER = r"""
import os, signal, sys
import attrs
import persist
from persist import _core

@attrs.frozen
class Point:
    x: int
    y: int

store = persist.Store()
points = store.map("p", Point)
store.sync_interval = 3600.0
store.open(sys.argv[1])
print("ready", flush=True)

def kill_mid_append(name):
    # the first write(2) lands half of the record, the retry kills us
    if name != "write":
        return None
    kill_mid_append.calls += 1
    if kill_mid_append.calls == 1:
        return "short"
    os.kill(os.getpid(), signal.SIGKILL)
kill_mid_append.calls = 0

for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "set":
        points.set(args[0], Point(int(args[1]), 2 * int(args[1])))
    elif cmd == "del":
        points.delete(args[0])
    elif cmd == "shrink":
        store.shrink()
    elif cmd == "torn":
        _core._set_fault_hook(kill_mid_append)
        points.set(args[0], Point(int(args[1]), 2 * int(args[1])))
    elif cmd == "burst":
        rounds, keys = int(args[0]), int(args[1])
        for version in range(1, rounds + 1):
            for k in range(keys):
                points.set(f"k{k}", Point(version, 2 * version))
            if version % 7 == 0:
                store.shrink()
    elif cmd == "quit":
        store.close()
        print("ok", flush=True)
        break
    print("ok", flush=True)
"""

TIMEOUT = 60.0


class Writer:
    """The owning process: send a command, wait for its ``ok``."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-c", WRITER, str(path)],
            env=python_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._expect("ready")

    def _expect(self, word: str) -> None:
        timer = threading.Timer(TIMEOUT, self.proc.kill)
        timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            timer.cancel()
        if line.strip() != word:
            self.proc.kill()
            pytest.fail(f"writer said {line!r}, stderr: {self.proc.stderr.read()}")

    def send(self, *commands: str) -> None:
        for command in commands:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
            self._expect("ok")

    def start(self, command: str) -> None:
        """Send ``command`` without waiting for it (``wait_ok`` later)."""
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def wait_ok(self) -> None:
        self._expect("ok")

    def killed_by(self, command: str) -> int:
        """Send a command that kills the writer; its exit code."""
        self.start(command)
        return self.proc.wait(timeout=TIMEOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.send("quit")
            self.proc.wait(timeout=TIMEOUT)


@pytest.fixture
def writer(db_path: Path) -> Iterator[Writer]:
    w = Writer(db_path)
    try:
        yield w
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(timeout=TIMEOUT)
        for pipe in (w.proc.stdin, w.proc.stdout, w.proc.stderr):
            pipe.close()


@pytest.fixture
def reader(db_path: Path) -> Iterator[Callable[[], persist.Store]]:
    """A read-only store of db_path (which must exist: a writer made it)."""
    stores: list[persist.Store] = []

    def open_reader() -> persist.Store:
        store = persist.Store(readonly=True)
        store.map("p", Point)
        store.open(db_path)
        stores.append(store)
        return store

    yield open_reader
    for store in stores:
        store.close()


def points(store: persist.Store) -> dict[str, tuple[int, int]]:
    return {k: (v.x, v.y) for k, v in store._maps["p"].items()}


def test_reader_sees_state_at_open_and_refresh_applies_sets_and_deletes(
    db_path: Path, writer: Writer, reader
) -> None:
    writer.send("set a 1", "set b 2", "set gone 3")
    store = reader()
    p = store._maps["p"]
    assert points(store) == {"a": (1, 2), "b": (2, 4), "gone": (3, 6)}
    assert isinstance(p["a"], Point)  # the typed map decodes the owner's JSON

    writer.send("set c 4", "del gone", "set a 5")
    assert points(store) == {"a": (1, 2), "b": (2, 4), "gone": (3, 6)}  # as of open
    assert store.refresh() == persist.RefreshResult(3, False)
    assert points(store) == {"a": (5, 10), "b": (2, 4), "c": (4, 8)}
    assert store.stats() == persist.Stats(3, 6)
    assert store.refresh() == persist.RefreshResult(0, False)  # nothing new

    with pytest.raises(StoreLockedError):  # the owner holds the lock all along
        persist.Store(db_path)


def test_refresh_after_owner_shrink_reloads_into_the_same_maps(
    db_path: Path, writer: Writer, reader
) -> None:
    writer.send(*[f"set k{i} {i}" for i in range(20)], "del k0", "set k1 100")
    store = reader()
    p = store._maps["p"]
    inode = os.stat(db_path).st_ino
    writer.send("del k2", "set k3 300", "shrink", "set k4 400", "set new 7")
    assert os.stat(db_path).st_ino != inode  # the file at the path was replaced

    result = store.refresh()
    assert result.reloaded is True
    assert result.records == len(parse_wal(read_bytes(db_path)))
    assert store._maps["p"] is p  # the user's map object stays valid
    expected = {f"k{i}": (i, 2 * i) for i in range(5, 20)}
    expected |= {"k1": (100, 200), "k3": (300, 600), "k4": (400, 800)}
    expected["new"] = (7, 14)
    assert points(store) == expected
    assert p.get("k2") is None and p.get("k0") is None
    [link] = fds_on(str(db_path))  # the replaced file's descriptor is closed
    assert link.endswith(f" -> {os.path.realpath(db_path)}")

    writer.send("set after 9")  # appended to the new file: incremental again
    assert store.refresh() == persist.RefreshResult(1, False)
    assert p["after"] == Point(9, 18)


def test_owner_killed_mid_append_leaves_a_torn_tail_readers_do_not_cut(
    db_path: Path, writer: Writer, reader
) -> None:
    writer.send("set a 1", "set b 2")
    early = reader()  # opened before the crash
    assert writer.killed_by("torn c 3") == -signal.SIGKILL
    data = read_bytes(db_path)
    assert not data.endswith(b"\n") and b"S p:c\n" in data  # torn mid-record

    late = reader()  # opened after it
    assert points(late) == {"a": (1, 2), "b": (2, 4)}
    assert early.refresh() == persist.RefreshResult(0, False)
    assert late.refresh() == persist.RefreshResult(0, False)
    late.close()
    assert read_bytes(db_path) == data  # nobody cut the tail

    # the next owner cuts it and appends: the early reader reads on from there
    with persist.Store(db_path) as owner:
        owner.map("p", Point).set("c", Point(30, 60))
    assert early.refresh() == persist.RefreshResult(1, False)
    assert points(early) == {"a": (1, 2), "b": (2, 4), "c": (30, 60)}


WRITES = {
    "set": lambda s, p: p.set("a", Point(0, 0)),
    "setitem": lambda s, p: p.__setitem__("a", Point(0, 0)),
    "set_async": lambda s, p: p.set_async("a", Point(0, 0)),
    "set_fsync": lambda s, p: p.set_fsync("new", Point(0, 0)),
    "delete": lambda s, p: p.delete("a"),
    "delitem": lambda s, p: p.__delitem__("a"),
    "delete_async": lambda s, p: p.delete_async("a"),
    "delete_fsync": lambda s, p: p.delete_fsync("a"),
    "update": lambda s, p: p.update("a", lambda u: u.set(Point(0, 0))),
    "update_async": lambda s, p: p.update_async("a", lambda u: u.delete()),
    "update_fsync": lambda s, p: p.update_fsync("new", lambda u: u.set(Point(0, 0))),
    "pop": lambda s, p: p.pop("a"),
    "popitem": lambda s, p: p.popitem(),
    "setdefault": lambda s, p: p.setdefault("new", Point(0, 0)),
    "clear": lambda s, p: p.clear(),
    "dict_update": lambda s, p: p.update({"a": Point(0, 0)}),
    "update_cancelled": lambda s, p: p.update("a", lambda u: u.cancel()),
    "store_set": lambda s, p: s.set("bare", 1),
    "store_delete": lambda s, p: s.delete("bare"),
    "sync": lambda s, p: s.sync(),
    "fsync_all": lambda s, p: s.fsync_all(),
    "shrink": lambda s, p: s.shrink(),
    "start_auto_shrink": lambda s, p: s.start_auto_shrink(0.01, 1.1),
}


@pytest.mark.parametrize("write", WRITES)
def test_every_write_raises_read_only_error_and_changes_nothing(
    db_path: Path, write: str
) -> None:
    with persist.Store(db_path) as owner:
        owner.map("p", Point).set("a", Point(1, 2))
        owner.set("bare", 5)
    before = read_bytes(db_path)
    store = persist.Store(db_path, readonly=True)
    p = store.map("p", Point)
    with pytest.raises(ReadOnlyError, match="read-only"):
        WRITES[write](store, p)
    assert dict(p.items()) == {"a": Point(1, 2)}
    assert store.get("bare", int) == 5
    store.close()
    assert read_bytes(db_path) == before
    assert sorted(os.listdir(db_path.parent)) == [db_path.name]  # no temp file


def test_an_update_function_does_not_run_on_a_read_only_store(db_path: Path) -> None:
    """update/update_async/update_fsync refuse before calling the function (it
    could otherwise wait, under its shard's lock, for a refresh)."""
    with persist.Store(db_path) as owner:
        owner.map("p", Point).set("a", Point(1, 2))
    calls: list[str] = []
    with persist.Store(db_path, readonly=True) as store:
        p = store.map("p", Point)
        for update in (p.update, p.update_async, p.update_fsync):
            with pytest.raises(ReadOnlyError):
                update("a", lambda u: calls.append("ran"))
        assert p.update_in_memory("a", lambda u: u.set(Point(3, 6))) == (
            Point(3, 6),
            True,
        )
    assert calls == []


def test_read_only_error_is_a_persist_error() -> None:
    assert issubclass(ReadOnlyError, persist.PersistError)
    assert persist.ReadOnlyError is ReadOnlyError


def test_missing_file_is_not_created(db_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        persist.Store(db_path, readonly=True)
    with pytest.raises(FileNotFoundError):
        persist.open_single_map(db_path, Point, readonly=True)
    assert not db_path.exists()


def test_open_single_map_readonly_decodes_and_refreshes(db_path: Path) -> None:
    owner = persist.open_single_map(db_path, Point)
    owner.set("a", Point(1, 2))
    m = persist.open_single_map(db_path, Point, readonly=True)
    assert m.store.readonly and not owner.store.readonly
    assert m["a"] == Point(1, 2)
    owner.set("b", Point(2, 4))
    owner.delete("a")
    assert m.store.refresh() == persist.RefreshResult(2, False)
    assert dict(m.items()) == {"b": Point(2, 4)}
    with pytest.raises(ReadOnlyError):
        m.set("c", Point(3, 6))
    m.store.close()
    owner.store.close()


def test_reader_of_an_empty_file_loads_the_header_later(db_path: Path) -> None:
    db_path.write_bytes(b"")  # an owner that has not written its header yet
    store = persist.Store(db_path, readonly=True)
    p = store.map("p", Point)
    assert len(p) == 0
    assert read_bytes(db_path) == b""
    with persist.Store(db_path) as owner:
        owner.map("p", Point).set("a", Point(1, 2))
    assert store.refresh() == persist.RefreshResult(1, True)
    assert p["a"] == Point(1, 2)
    store.close()


def test_corrupt_append_raises_and_changes_nothing(db_path: Path) -> None:
    with persist.Store(db_path) as owner:
        owner.map("p", Point).set("a", Point(1, 2))
    store = persist.Store(db_path, readonly=True)
    p = store.map("p", Point)
    with open(db_path, "ab") as f:  # a good record, a broken one, a good one
        f.write(b'S p:b\n{"x":2,"y":4}\nX p:c\n\nS p:d\n{"x":4,"y":8}\n')
    data = read_bytes(db_path)
    with pytest.raises(CorruptWALError) as info:
        store.refresh()
    assert (info.value.line, info.value.offset) == (6, data.index(b"X p:c"))
    assert dict(p.items()) == {"a": Point(1, 2)}  # not even b
    assert store.stats() == persist.Stats(1, 1)
    assert read_bytes(db_path) == data
    store.close()


def test_plain_store_records_and_descriptors(db_path: Path) -> None:
    owner = persist.Store(db_path)
    owner.set("motd", "hello")
    store = persist.Store(db_path, readonly=True)
    assert store.get("motd", str) == "hello"
    owner.set("motd", "bye")
    owner.set("other", 1)
    assert store.refresh() == persist.RefreshResult(2, False)
    assert store.get("motd", str) == "bye"
    assert store.stats() == persist.Stats(2, 3)
    store.close()
    owner.close()
    assert fds_on(str(db_path)) == []


def test_refresh_on_a_writable_store_reads_nothing(db_path: Path) -> None:
    with persist.Store(db_path) as store:
        store.map("p", Point).set("a", Point(1, 2))
        assert store.refresh() == persist.RefreshResult(0, False)
        assert not store.readonly


def test_refresh_after_close_raises_not_open(db_path: Path) -> None:
    db_path.write_bytes(HEADER)
    store = persist.Store(db_path, readonly=True)
    store.close()
    with pytest.raises(NotOpenError):
        store.refresh()


def test_memory_only_writes_do_not_reach_the_file(db_path: Path) -> None:
    """set_in_memory/update_in_memory never write, on any store; a delete of
    an absent key writes nothing either: both behave as on a writable store."""
    with persist.Store(db_path) as owner:
        owner.map("p", Point).set("a", Point(1, 2))
    before = read_bytes(db_path)
    with persist.Store(db_path, readonly=True) as store:
        p = store.map("p", Point)
        p.set_in_memory("mem", Point(7, 14))
        assert p.delete("absent") is False
        assert p["mem"] == Point(7, 14)
    assert read_bytes(db_path) == before


def test_readers_race_refresh_while_the_owner_writes_and_shrinks(
    db_path: Path, writer: Writer, reader, fast_thread_switching: None
) -> None:
    """Reader threads see each key's versions only grow and every value
    whole (y == 2x), while another thread refreshes in a loop and the owner
    writes 40 passes over 50 keys with a shrink every 7 passes."""
    rounds, keys = 40, 50
    writer.send("set k0 0")
    store = reader()
    p = store._maps["p"]
    writer.start(f"burst {rounds} {keys}")
    done = threading.Event()
    refreshes = {"count": 0, "reloads": 0}

    def refresher() -> None:
        try:
            while not done.is_set():
                result = store.refresh()
                refreshes["count"] += 1
                refreshes["reloads"] += result.reloaded
        finally:
            done.set()

    def get_loop() -> int:
        seen = [0] * keys
        reads = 0
        while not done.is_set():
            for k in range(keys):
                value = p.get(f"k{k}")
                reads += 1
                if value is None:
                    assert seen[k] == 0, f"k{k} vanished after {seen[k]}"
                    continue
                assert value.y == 2 * value.x, value
                assert value.x >= seen[k], (k, value, seen[k])
                seen[k] = value.x
        return reads

    def owner() -> None:
        try:
            writer.wait_ok()
            time.sleep(0.05)  # a last refresh or two after the burst
        finally:
            done.set()

    results = run_threads(owner, refresher, get_loop, get_loop, timeout=TIMEOUT)
    assert results[2] > 0 and results[3] > 0
    assert refreshes["count"] > 0
    store.refresh()
    assert points(store) == {f"k{k}": (rounds, 2 * rounds) for k in range(keys)}
    writer.stop()
    fresh = reader()
    assert points(fresh) == points(store)
