"""Store: lifecycle, maps, the plain API, stats, background work, locking,
processes, shrink and auto-shrink."""

import datetime
import json
import logging
import os
import subprocess
import sys
import threading
import time
import typing
from pathlib import Path

import pytest
from conftest import (
    HEADER,
    User,
    live_records,
    open_quiet,
    parse_wal,
    python_env,
    read_bytes,
    run_python,
    set_record,
    user_json,
    wait_until,
    writes_fail,
)

import persist

ALICE = User("alice", "a@x", 30)
BOB = User("bob", "b@x", 40)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        (persist.KeyNotFoundError, (KeyError,)),
        (persist.NotOpenError, ()),
        (persist.MapExistsError, ()),
        (persist.ShrinkInProgressError, ()),
        (persist.InvalidKeyError, (ValueError,)),
        (persist.CorruptWALError, (ValueError,)),
        (persist.StoreLockedError, ()),
        (persist.EncodeError, (ValueError,)),
        (persist.DecodeError, (ValueError,)),
    ],
)
def test_error_hierarchy(error, bases):
    """Every error derives from PersistError and the builtin it stands for."""
    assert issubclass(error, persist.PersistError)
    for base in bases:
        assert issubclass(error, base)


# --------------------------------------------------------------------------
# Opening and closing
# --------------------------------------------------------------------------


@pytest.mark.parametrize("as_str", [False, True])
def test_store_path_opens_at_once(db_path, as_str):
    """Store(path) opens (str or Path); path and closed describe it."""
    path = str(db_path) if as_str else db_path
    store = persist.Store(path)
    try:
        assert store.closed is False
        assert os.fspath(store.path) == str(db_path)
        assert read_bytes(db_path) == HEADER
    finally:
        store.close()
    assert store.closed is True


def test_store_then_open(db_path):
    """Store() is closed with no path until open(path) succeeds."""
    store = persist.Store()
    assert store.closed is True
    assert store.path is None
    assert not db_path.exists()
    store.open(db_path)
    try:
        assert store.closed is False
        assert os.fspath(store.path) == str(db_path)
    finally:
        store.close()
    assert store.closed is True


def test_both_ways_of_opening_load_the_same(db_path):
    """Store(path) and Store() + open(path) load the same records."""
    with persist.Store(db_path) as store:
        store.map("users", User).set("alice", ALICE)
        store.set("o", 1)
    with persist.Store(db_path) as a:
        got_a = (a.map("users", User).items(), a.get("o", int), a.stats())
    b = persist.Store()
    b.open(db_path)
    with b:
        got_b = (b.map("users", User).items(), b.get("o", int), b.stats())
    assert got_a == got_b == ([("alice", ALICE)], 1, persist.Stats(2, 2))


def test_map_registered_before_and_after_open(db_path):
    """Maps registered before open and after open both see the loaded records."""
    with persist.Store(db_path) as store:
        store.map("early", int).set("k", 1)
        store.map("late", int).set("k", 2)
    store = persist.Store()
    early = store.map("early", int)
    store.open(db_path)
    with store:
        late = store.map("late", int)
        assert early.items() == [("k", 1)]
        assert late.items() == [("k", 2)]
        assert store.stats() == persist.Stats(2, 2)


@pytest.mark.parametrize("opened", [False, True])
def test_map_exists_error(db_path, opened):
    """Registering a taken map name raises MapExistsError (any value type)."""
    store = persist.Store(db_path) if opened else persist.Store()
    store.map("users", User)
    with pytest.raises(persist.MapExistsError):
        store.map("users", User)
    with pytest.raises(persist.MapExistsError):
        store.map("users", int)
    store.map("Users", User)  # names are case-sensitive
    if not opened:
        store.open(db_path)
    store.close()


def test_open_twice_raises(db_path, tmp_path):
    """open() on an open store raises PersistError and the store stays usable."""
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        with pytest.raises(persist.PersistError):
            store.open(db_path)
        with pytest.raises(persist.PersistError):
            store.open(tmp_path / "other.db")
        assert not (tmp_path / "other.db").exists()
        m.set("k", 1)
        assert store.closed is False
    assert read_bytes(db_path) == HEADER + set_record("m:k", "1")


def test_close_twice_is_noop(db_path):
    """A second close() does nothing."""
    store = persist.Store(db_path)
    store.map("m", int).set("k", 1)
    store.close()
    data = read_bytes(db_path)
    assert store.close() is None
    assert store.closed is True
    assert read_bytes(db_path) == data


def test_reopen_closed_store(db_path, tmp_path):
    """A closed Store can be opened again, on the same or another file."""
    store = persist.Store(db_path)
    m = store.map("m", int)
    m.set("k", 1)
    store.close()
    store.open(db_path)
    assert store.closed is False
    assert m["k"] == 1
    store.close()
    other = tmp_path / "other.db"
    store.open(other)
    try:
        assert os.fspath(store.path) == str(other)
        assert len(m) == 0
        m.set("j", 2)
    finally:
        store.close()
    assert read_bytes(other) == HEADER + set_record("m:j", "2")
    assert read_bytes(db_path) == HEADER + set_record("m:k", "1")


def test_store_context_manager(db_path):
    """`with store:` returns the store and closes it on exit, flushing async data."""
    store = open_quiet(db_path)
    with store as s:
        assert s is store
        store.map("m", int).set_async("k", 1)
    assert store.closed is True
    assert read_bytes(db_path) == HEADER + set_record("m:k", "1")


def test_store_context_manager_closes_on_exception(db_path):
    """`with store:` closes the store when the body raises, and re-raises."""
    store = open_quiet(db_path)
    with pytest.raises(RuntimeError, match="body"), store:
        store.map("m", int).set_async("k", 1)
        raise RuntimeError("body")
    assert store.closed is True
    assert read_bytes(db_path) == HEADER + set_record("m:k", "1")


def test_open_single_map_context_manager(db_path):
    """`with open_single_map(...) as m` yields the map and closes its store."""
    with persist.open_single_map(db_path, User) as m:
        assert isinstance(m, persist.PersistMap)
        store = m.store
        assert store.closed is False
        m.set_async("alice", ALICE)
    assert store.closed is True
    assert read_bytes(db_path) == HEADER + set_record(
        ":alice", user_json("alice", "a@x", 30)
    )
    with pytest.raises(persist.NotOpenError):
        m.get("alice")


def test_open_single_map_without_with(db_path):
    """open_single_map returns an open map; closing its store persists."""
    m = persist.open_single_map(db_path, int)
    m.set("k", 5)
    m.store.close()
    m2 = persist.open_single_map(db_path, int)
    try:
        assert m2["k"] == 5
    finally:
        m2.store.close()


STORE_CALLS = {
    "set": lambda s: s.set("k", 1),
    "get": lambda s: s.get("k", int),
    "delete": lambda s: s.delete("k"),
    "fsync_all": lambda s: s.fsync_all(),
    "stats": lambda s: s.stats(),
    "shrink": lambda s: s.shrink(),
}


@pytest.mark.parametrize("call", STORE_CALLS, ids=str)
def test_never_opened_store_raises_not_open(call):
    """Every data call on a never-opened Store raises NotOpenError."""
    with pytest.raises(persist.NotOpenError):
        STORE_CALLS[call](persist.Store())


@pytest.mark.parametrize("call", STORE_CALLS, ids=str)
def test_closed_store_raises_not_open(db_path, call):
    """Every data call on a closed Store raises NotOpenError; the file is untouched."""
    store = persist.Store(db_path)
    store.set("k", 1)
    store.close()
    before = read_bytes(db_path)
    with pytest.raises(persist.NotOpenError):
        STORE_CALLS[call](store)
    assert read_bytes(db_path) == before


# --------------------------------------------------------------------------
# The plain API (orphans)
# --------------------------------------------------------------------------


def test_orphan_set_get_delete(db_path):
    """Store.set/get/delete work on orphan records and survive a reopen."""
    with persist.Store(db_path) as store:
        store.set("cfg", {"debug": True, "n": 3})
        store.set("name", "x")
        store.set("user", ALICE)
        assert store.get("cfg", dict[str, typing.Any]) == {"debug": True, "n": 3}
        assert store.get("name", str) == "x"
        assert store.get("user", User) == ALICE
        store.delete("name")
        with pytest.raises(persist.KeyNotFoundError):
            store.get("name", str)
    with persist.Store(db_path) as store:
        assert store.get("cfg", typing.Any) == {"debug": True, "n": 3}
        assert store.get("user", User) == ALICE
        with pytest.raises(persist.KeyNotFoundError):
            store.get("name", str)
        assert store.stats() == persist.Stats(active_keys=2, wal_records=4)


def test_key_not_found_is_key_error(db_path):
    """Store.get of a missing key raises KeyNotFoundError, also a KeyError."""
    with persist.Store(db_path) as store:
        with pytest.raises(KeyError):
            store.get("missing", int)
        with pytest.raises(persist.KeyNotFoundError):
            store.get("missing", int)
        with pytest.raises(persist.KeyNotFoundError):
            store.get("nomap:missing", int)


def test_orphans_never_collide_with_maps(db_path):
    """An orphan and a map key of the same text are different records."""
    with persist.Store(db_path) as store:
        m = store.map("", int)
        m.set("k", 1)
        store.set("k", 2)
        assert m["k"] == 1
        assert store.get("k", int) == 2
        assert read_bytes(db_path) == (
            HEADER + set_record(":k", "1") + set_record("k", "2")
        )


def test_unregistered_map_records_until_registered(db_path):
    """Records of a map not registered stay readable with Store.get("name:key")
    and count as active keys; registering the map later serves them."""
    with persist.Store(db_path) as store:
        users = store.map("users", User)
        users.set("alice", ALICE)
        users.set("bob", BOB)
        users.delete("bob")
        store.set("o", 1)
    with persist.Store(db_path) as store:
        assert store.stats() == persist.Stats(active_keys=2, wal_records=4)
        assert store.get("users:alice", User) == ALICE
        with pytest.raises(persist.KeyNotFoundError):
            store.get("users:bob", User)
        users = store.map("users", User)
        assert users.items() == [("alice", ALICE)]
        assert store.stats() == persist.Stats(active_keys=2, wal_records=4)


def test_store_get_decodes_with_value_type(db_path):
    """Store.get decodes with the codec of value_type, never returning raw JSON."""
    with persist.Store(db_path) as store:
        store.map("strings", str).set("s", "just a string")
    with persist.Store(db_path) as store:
        assert store.get("strings:s", str) == "just a string"
        assert store.get("strings:s", typing.Any) == "just a string"


# --------------------------------------------------------------------------
# stats
# --------------------------------------------------------------------------


def test_stats_is_named_tuple(db_path):
    """Stats is a named tuple (active_keys, wal_records)."""
    assert persist.Stats._fields == ("active_keys", "wal_records")
    with persist.Store(db_path) as store:
        s = store.stats()
        assert isinstance(s, persist.Stats)
        assert isinstance(s, tuple)
        assert s == (0, 0)
        assert (s.active_keys, s.wal_records) == (0, 0)


def test_stats_counts_exactly(db_path):
    """stats() counts live keys (memory, orphans included) and complete records
    in the file; the header, pending async changes and memory-only writes are
    not records."""
    with open_quiet(db_path) as store:
        users = store.map("users", User)
        counts = store.map("counts", int)
        users.set("a", ALICE)
        users.set("b", BOB)
        users.set("a", BOB)
        users.delete("b")
        assert store.stats() == persist.Stats(active_keys=1, wal_records=4)
        users.set_async("c", ALICE)
        assert store.stats() == persist.Stats(active_keys=2, wal_records=4)
        users.sync()
        assert store.stats() == persist.Stats(active_keys=2, wal_records=5)
        store.set("o", 1)
        counts.set_fsync("x", 1)
        assert store.stats() == persist.Stats(active_keys=4, wal_records=7)
        counts.set_in_memory("y", 2)
        assert store.stats() == persist.Stats(active_keys=5, wal_records=7)
        counts.delete_async("x")
        assert store.stats() == persist.Stats(active_keys=4, wal_records=7)
        store.fsync_all()
        assert store.stats() == persist.Stats(active_keys=4, wal_records=8)
        assert len(parse_wal(read_bytes(db_path))) == 8
    with persist.Store(db_path) as store:
        # y was never written
        assert store.stats() == persist.Stats(active_keys=3, wal_records=8)


def test_stats_excludes_torn_tail(db_path):
    """A torn tail is not a record."""
    db_path.write_bytes(HEADER + b'S :a\n"1"\nS :a\n"2"\nS :b\n"3')
    with persist.Store(db_path) as store:
        assert store.stats() == persist.Stats(active_keys=1, wal_records=2)


# --------------------------------------------------------------------------
# sync_interval and background sync
# --------------------------------------------------------------------------


def test_sync_interval_default(db_path):
    """sync_interval defaults to 1.0 seconds."""
    assert persist.Store().sync_interval == 1.0
    with persist.Store(db_path) as store:
        assert store.sync_interval == 1.0
        store.sync_interval = 0.25
        assert store.sync_interval == 0.25


@pytest.mark.parametrize("bad", [0, 0.0, -1, -0.5])
def test_sync_interval_must_be_positive(db_path, bad):
    """A sync_interval <= 0 raises ValueError and keeps the old value."""
    with persist.Store(db_path) as store:
        store.sync_interval = 2.0
        with pytest.raises(ValueError):
            store.sync_interval = bad
        assert store.sync_interval == 2.0


def test_background_sync_writes_async_changes(db_path):
    """With a short sync_interval async changes reach the file by themselves."""
    with persist.Store(db_path) as store:
        store.sync_interval = 0.05
        m = store.map("m", int)
        m.set_async("k", 1)
        wait_until(
            lambda: read_bytes(db_path) == HEADER + set_record("m:k", "1"),
            what="the background sync",
        )


def test_sync_interval_takes_effect_at_once(db_path):
    """Shortening sync_interval cuts a pending long wait short."""
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        store.sync_interval = 3600
        # let any wait begun with the default interval run out, so the
        # background sync is surely inside the one-hour wait
        time.sleep(1.3)
        m.set_async("k", 1)
        assert read_bytes(db_path) == HEADER
        store.sync_interval = 0.05
        wait_until(
            lambda: read_bytes(db_path) == HEADER + set_record("m:k", "1"),
            timeout=3.0,
            what="the new sync_interval to apply",
        )


def test_close_promptly_after_interval_change(db_path):
    """close() returns at once even right after sync_interval was changed (the
    background sync must not sleep through the close)."""
    for i in range(30):
        store = persist.Store(db_path)
        store.map("m", int).set_async("k", i)
        store.sync_interval = 3600
        closer = threading.Thread(target=store.close, daemon=True)
        closer.start()
        closer.join(5.0)
        hung = closer.is_alive()
        if hung:
            store.sync_interval = 0.01  # wake the sleeper so the run can end
            closer.join(5.0)
        assert not hung, f"close() hung (round {i})"
    with persist.Store(db_path) as store:
        assert store.map("m", int)["k"] == 29


def fail_writes_supported() -> bool:
    """Whether this platform lets tests swap descriptors (Linux /proc)."""
    return os.path.isdir("/proc/self/fd")


@pytest.mark.skipif(not fail_writes_supported(), reason="needs /proc/self/fd")
def test_error_handler_gets_background_failure(db_path):
    """When the background flush fails, error_handler gets the exception, the
    changes stay pending (in memory) and land at a later successful flush."""
    errors = []

    def handler(exc: BaseException) -> None:
        # runs in the sync thread: no retry can start before the test says so
        store.sync_interval = 3600
        errors.append(exc)

    with persist.Store(db_path) as store:
        store.error_handler = handler
        assert store.error_handler == handler
        m = store.map("m", int)
        m.set("before", 1)
        store.sync_interval = 3600
        with writes_fail(db_path):
            m.set_async("k", 2)
            store.sync_interval = 0.05
            wait_until(lambda: errors, what="error_handler to be called")
            assert m["k"] == 2
        assert isinstance(errors[0], (OSError, persist.PersistError))
        assert read_bytes(db_path) == HEADER + set_record("m:before", "1")
        store.sync_interval = 0.05
        wait_until(
            lambda: (
                read_bytes(db_path)
                == HEADER + set_record("m:before", "1") + set_record("m:k", "2")
            ),
            what="the pending change to land",
        )
    with persist.Store(db_path) as store:
        assert sorted(store.map("m", int).items()) == [("before", 1), ("k", 2)]


@pytest.mark.skipif(not fail_writes_supported(), reason="needs /proc/self/fd")
def test_default_error_handler_logs(db_path, caplog):
    """Without a handler, a failed background flush is logged to the `persist`
    logger and the change is kept for the next try."""
    caplog.set_level(logging.WARNING, logger="persist")
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        store.sync_interval = 3600
        with writes_fail(db_path):
            m.set_async("k", 1)
            store.sync_interval = 0.05
            wait_until(
                lambda: any(r.name.startswith("persist") for r in caplog.records),
                what="a log record",
            )
            store.sync_interval = 3600
        record = next(r for r in caplog.records if r.name.startswith("persist"))
        assert record.levelno >= logging.WARNING
        store.fsync_all()
        assert read_bytes(db_path) == HEADER + set_record("m:k", "1")


# --------------------------------------------------------------------------
# Locking
# --------------------------------------------------------------------------


def test_second_store_same_process_is_locked(db_path):
    """A second Store on an open file gets StoreLockedError at once; after the
    first closes, it opens."""
    with persist.Store(db_path) as first:
        first.set("k", 1)
        before = read_bytes(db_path)
        second = persist.Store()
        started = time.monotonic()
        with pytest.raises(persist.StoreLockedError):
            second.open(db_path)
        with pytest.raises(persist.StoreLockedError):
            persist.open_single_map(db_path, int)
        assert time.monotonic() - started < 2.0
        assert second.closed is True
        assert read_bytes(db_path) == before
        first.set("j", 2)  # the first store is unaffected
    with persist.Store(db_path) as again:
        assert again.get("j", int) == 2


LOCK_PROBE = """
import sys, persist
try:
    persist.Store(sys.argv[1]).close()
except persist.StoreLockedError:
    sys.exit(3)
"""


def test_store_locked_against_other_process(db_path):
    """Another process cannot open a file this process has open."""
    with persist.Store(db_path):
        result = run_python(LOCK_PROBE, str(db_path))
        assert result.returncode == 3, result.stderr
    result = run_python(LOCK_PROBE, str(db_path))
    assert result.returncode == 0, result.stderr


LOCK_HOLDER = """
import sys, persist
store = persist.Store(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
store.close()
"""


def test_store_locked_by_other_process(db_path):
    """This process cannot open a file another process has open."""
    with subprocess.Popen(
        [sys.executable, "-P", "-c", LOCK_HOLDER, str(db_path)],
        env=python_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout.readline() == "locked\n"
            with pytest.raises(persist.StoreLockedError):
                persist.Store(db_path)
        finally:
            holder.stdin.close()
            holder.wait(30)
    assert holder.returncode == 0
    with persist.Store(db_path):
        pass


# --------------------------------------------------------------------------
# Process exit and fork
# --------------------------------------------------------------------------

EXIT_SCRIPT = """
import sys, persist
store = persist.Store()
store.sync_interval = 3600  # only the exit can write the async change
m = store.map("", str)
store.open(sys.argv[1])
m.set("synced", "1")
m.set_async("pending", "2")
{ending}
"""


@pytest.mark.parametrize(
    ("ending", "code"),
    [("", 0), ("sys.exit(3)", 3), ("raise RuntimeError('boom')", 1)],
    ids=["end-of-script", "sys.exit", "uncaught-exception"],
)
def test_exit_without_close_flushes_async_data(db_path, ending, code):
    """A process that exits without close() still writes its pending async data."""
    result = run_python(EXIT_SCRIPT.format(ending=ending), str(db_path))
    assert result.returncode == code, result.stderr
    assert read_bytes(db_path) == HEADER + b'S :synced\n"1"\nS :pending\n"2"\n'
    with persist.open_single_map(db_path, str) as m:
        assert dict(m.items()) == {"synced": "1", "pending": "2"}


FORK_SCRIPT = r"""
import json, os, sys, persist
path = sys.argv[1]
store = persist.Store()
store.sync_interval = 3600  # the pending change stays pending until the end
m = store.map("m", str)
store.open(path)
m.set("synced", "1")
store.set("orphan", 1)
m.set_async("pending", "2")
before = open(path, "rb").read()
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    calls = {
        "set": lambda: m.set("child", "x"),
        "set_async": lambda: m.set_async("child", "x"),
        "set_fsync": lambda: m.set_fsync("child", "x"),
        "delete": lambda: m.delete("synced"),
        "update": lambda: m.update("synced", lambda u: u.set("x")),
        "get": lambda: m.get("synced"),
        "sync": lambda: m.sync(),
        "store.set": lambda: store.set("child", 1),
        "store.get": lambda: store.get("orphan", int),
        "fsync_all": lambda: store.fsync_all(),
        "shrink": lambda: store.shrink(),
    }
    out = {}
    for name, call in calls.items():
        try:
            call()
            out[name] = "ok"
        except persist.NotOpenError:
            out[name] = "NotOpenError"
        except Exception as exc:
            out[name] = type(exc).__name__
    store.close()  # a no-op in the child
    with persist.Store(path + ".child") as own:  # a store of the child's own
        own.set("k", 1)
        out["own store"] = own.get("k", int)
    print(json.dumps(out), flush=True)
    sys.exit(0)  # interpreter exit: the exit hook must not write either
_, status = os.waitpid(pid, 0)
after = open(path, "rb").read()
print(json.dumps({"child_exit": os.waitstatus_to_exitcode(status),
                  "unchanged": before == after}), flush=True)
store.close()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_cannot_use_store(db_path):
    """In a forked child every call raises NotOpenError, and neither the child's
    calls, its close() nor its exit write the parent's file; the parent's
    pending data is written once, by the parent. The parent's background sync
    thread runs at the fork (Python 3.12+ warns), and the child can open and
    use a store of its own."""
    result = run_python(FORK_SCRIPT, str(db_path))
    assert result.returncode == 0, result.stderr
    child, parent = (json.loads(line) for line in result.stdout.splitlines())
    assert child.pop("own store") == 1
    assert read_bytes(f"{db_path}.child") == HEADER + b"S k\n1\n"
    assert child == dict.fromkeys(child, "NotOpenError")
    assert len(child) == 11
    assert parent == {"child_exit": 0, "unchanged": True}
    assert read_bytes(db_path) == (
        HEADER + b'S m:synced\n"1"\n' + b"S orphan\n1\n" + b'S m:pending\n"2"\n'
    )


# --------------------------------------------------------------------------
# shrink
# --------------------------------------------------------------------------


def other_files(db_path: Path) -> list[str]:
    """Names in the store's directory other than the store file itself."""
    return sorted(n for n in os.listdir(db_path.parent) if n != db_path.name)


def test_shrink_one_record_per_live_key(db_path):
    """shrink rewrites the file with one record per live key (maps, orphans,
    pending and memory-only values included), leaves no temp file, and the
    data is identical after reopen."""
    with open_quiet(db_path) as store:
        users = store.map("users", User)
        ints = store.map("ints", int)
        for i in range(20):
            users.set("a", User("a", "a", i))
        users.set("b", BOB)
        users.delete("b")
        users.set("c", ALICE)
        ints.set("x", 1)
        ints.set("x", 2)
        store.set("o", "orphan")
        store.set("gone", 1)
        store.delete("gone")
        # after the last synchronous write, so both stay out of the file
        users.set_async("d", BOB)
        users.set_in_memory("e", ALICE)
        assert store.stats() == persist.Stats(active_keys=6, wal_records=28)
        store.shrink()
        assert store.stats() == persist.Stats(active_keys=6, wal_records=6)
        assert other_files(db_path) == []
        expected = {
            "users:a": {"name": "a", "email": "a", "age": 19},
            "users:c": json.loads(user_json("alice", "a@x", 30)),
            "users:d": json.loads(user_json("bob", "b@x", 40)),
            "users:e": json.loads(user_json("alice", "a@x", 30)),
            "ints:x": 2,
            "o": "orphan",
        }
        records = parse_wal(read_bytes(db_path))
        assert all(kind == "S" for kind, _, _ in records)
        assert sorted(key for _, key, _ in records) == sorted(expected)
        assert live_records(read_bytes(db_path)) == expected
        # writes after a shrink append to the new file
        ints.set("y", 3)
        assert read_bytes(db_path).endswith(set_record("ints:y", "3"))
        state = (sorted(users.items()), sorted(ints.items()))
    with persist.Store(db_path) as store:
        users = store.map("users", User)
        ints = store.map("ints", int)
        assert (sorted(users.items()), sorted(ints.items())) == state
        assert store.get("o", str) == "orphan"
        assert store.stats().active_keys == 7


def test_shrink_consumes_pending_async_changes(db_path):
    """Async changes pending at a shrink are written by the shrink and not
    appended again by a later flush."""
    with open_quiet(db_path) as store:
        m = store.map("m", int)
        m.set("a", 1)
        m.set("a", 2)
        m.set_async("b", 3)
        store.shrink()
        assert store.stats() == persist.Stats(2, 2)
        store.fsync_all()
        assert store.stats() == persist.Stats(2, 2)
        assert live_records(read_bytes(db_path)) == {"m:a": 2, "m:b": 3}
    assert len(parse_wal(read_bytes(db_path))) == 2


def test_shrink_keeps_unregistered_map_records(db_path):
    """Records of maps not registered in this session survive a shrink."""
    with persist.Store(db_path) as store:
        other = store.map("other", int)
        other.set("x", 1)
        other.set("x", 2)
        other.set("y", 3)
        other.delete("y")
    with persist.Store(db_path) as store:
        store.shrink()
        assert read_bytes(db_path) == HEADER + set_record("other:x", "2")
        assert store.stats() == persist.Stats(1, 1)
    with persist.Store(db_path) as store:
        assert store.map("other", int).items() == [("x", 2)]


def test_shrink_of_empty_store(db_path):
    """Shrinking a store whose keys were all deleted leaves just the header."""
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        m.set("k", 1)
        m.delete("k")
        store.shrink()
        assert read_bytes(db_path) == HEADER
        assert store.stats() == persist.Stats(0, 0)
        assert other_files(db_path) == []


def test_shrink_keeps_lock(db_path):
    """After a shrink replaced the file, the lock still covers the path."""
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        m.set("k", 1)
        m.set("k", 2)
        store.shrink()
        with pytest.raises(persist.StoreLockedError):
            persist.Store(db_path)
        result = run_python(LOCK_PROBE, str(db_path))
        assert result.returncode == 3, result.stderr


@pytest.mark.parametrize(
    "leftover",
    [b"", b"garbage", HEADER + b'S m:k\n"from the temp file"\n'],
    ids=["empty", "garbage", "records"],
)
def test_leftover_shrink_temp_removed_at_open(db_path, leftover):
    """A `<path>.shrink-tmp` left by a crash is removed at the next open and
    its contents are ignored."""
    with persist.Store(db_path) as store:
        store.map("m", str).set("k", "real")
    data = read_bytes(db_path)
    tmp = Path(str(db_path) + ".shrink-tmp")
    tmp.write_bytes(leftover)
    with persist.Store(db_path) as store:
        assert not tmp.exists()
        assert store.map("m", str).items() == [("k", "real")]
    assert read_bytes(db_path) == data
    assert other_files(db_path) == []


def test_shrink_not_open(db_path):
    """shrink on a closed store raises NotOpenError and leaves no temp file."""
    store = persist.Store(db_path)
    store.close()
    with pytest.raises(persist.NotOpenError):
        store.shrink()
    assert other_files(db_path) == []


# --------------------------------------------------------------------------
# auto-shrink
# --------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [0.05, datetime.timedelta(milliseconds=50)])
def test_auto_shrink_runs_above_ratio(db_path, interval):
    """With auto-shrink on, a file whose records/keys ratio reaches the ratio
    is compacted in the background."""
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        m.set("keep", 0)
        store.start_auto_shrink(interval, 1.5)
        for i in range(10):
            m.set("k", i)
        wait_until(
            lambda: store.stats() == persist.Stats(active_keys=2, wal_records=2),
            what="auto-shrink",
        )
        assert other_files(db_path) == []
        store.stop_auto_shrink()
    with persist.Store(db_path) as store:
        assert sorted(store.map("m", int).items()) == [("k", 9), ("keep", 0)]


def test_auto_shrink_below_ratio_does_nothing(db_path):
    """Auto-shrink leaves a file alone while records/keys is below the ratio."""
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        for i in range(10):
            m.set(f"k{i}", i)
        m.set("k0", 100)  # 11 records / 10 keys = 1.1
        store.start_auto_shrink(0.02, 1.5)
        time.sleep(0.3)  # many intervals: a shrink would have happened
        assert store.stats() == persist.Stats(active_keys=10, wal_records=11)
        store.stop_auto_shrink()


def test_auto_shrink_with_no_live_key(db_path):
    """A file with records but no live key is above any ratio."""
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        m.set("k", 1)
        m.delete("k")
        store.start_auto_shrink(0.05, 1000.0)
        wait_until(lambda: store.stats() == persist.Stats(0, 0), what="auto-shrink")
        assert read_bytes(db_path) == HEADER
        store.stop_auto_shrink()


def test_stop_auto_shrink(db_path):
    """After stop_auto_shrink no background shrink happens."""
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        store.start_auto_shrink(0.02, 1.5)
        store.stop_auto_shrink()
        for i in range(10):
            m.set("k", i)
        time.sleep(0.3)  # many former intervals
        assert store.stats() == persist.Stats(active_keys=1, wal_records=10)


@pytest.mark.parametrize(
    ("interval", "ratio"), [(0, 2.0), (-1, 2.0), (1.0, 1.0), (1.0, 0.5)]
)
def test_auto_shrink_arguments_checked(db_path, interval, ratio):
    """start_auto_shrink needs interval > 0 and ratio > 1.0 (ValueError)."""
    with persist.Store(db_path) as store, pytest.raises(ValueError):
        store.start_auto_shrink(interval, ratio)


def test_close_with_auto_shrink_on(db_path):
    """Closing a store with auto-shrink on stops it without shrinking."""
    store = persist.Store(db_path)
    m = store.map("m", int)
    for i in range(10):
        m.set("k", i)
    store.start_auto_shrink(3600, 1.5)
    store.close()
    data = read_bytes(db_path)
    assert len(parse_wal(data)) == 10
    with persist.Store(db_path) as again:
        assert again.stats() == persist.Stats(1, 10)


def test_open_single_map_auto_shrink_can_be_replaced(db_path):
    """open_single_map starts auto-shrink; the store's own calls retune it."""
    with persist.open_single_map(db_path, int) as m:
        for i in range(10):
            m.set("k", i)
        m.store.stop_auto_shrink()
        m.store.start_auto_shrink(0.05, 1.5)
        wait_until(lambda: m.store.stats() == persist.Stats(1, 1), what="auto-shrink")
        assert read_bytes(db_path) == HEADER + set_record(":k", "9")


def test_store_get_reads_a_stored_none(db_path):
    """Store.get finds a typed map's record whose value is None (not absent)."""
    with persist.Store(db_path) as store:
        m = store.map("opt", int | None)
        m.set("k", None)
        assert store.get("opt:k", int | None) is None
        with pytest.raises(persist.KeyNotFoundError):
            store.get("opt:absent", int | None)
