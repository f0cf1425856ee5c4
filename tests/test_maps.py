"""PersistMap: every call of the API table, its return values and its
durability level, checked in the file bytes and after a reopen."""

import json
import typing

import pytest
from conftest import (
    HEADER,
    FrozenUser,
    User,
    delete_record,
    open_quiet,
    parse_wal,
    read_bytes,
    set_record,
    user_json,
    wait_until,
)

import persist

ALICE = User("alice", "a@x", 30)
BOB = User("bob", "b@x", 40)


def rec(key: str, user: User) -> bytes:
    """The set record of a User in the "users" map."""
    return set_record(f"users:{key}", user_json(user.name, user.email, user.age))


def reopened_users(db_path) -> dict:
    """The users map's contents after a fresh open of the file."""
    with persist.Store(db_path) as store:
        return dict(store.map("users", User).items())


@pytest.fixture
def store(db_path):
    """An open store whose background sync never fires by itself."""
    with open_quiet(db_path) as s:
        yield s


@pytest.fixture
def users(store):
    """The "users" map of the open store."""
    return store.map("users", User)


# --------------------------------------------------------------------------
# Reads
# --------------------------------------------------------------------------


def test_get_and_default(users):
    """get returns the value, None for a missing key, or the given default."""
    users.set("alice", ALICE)
    assert users.get("alice") == ALICE
    assert users.get("nobody") is None
    assert users.get("nobody", BOB) is BOB
    assert users.get("nobody", default=7) == 7


def test_getitem_missing_is_key_error(users):
    """m[key] returns the value and raises KeyError for a missing key."""
    users.set("alice", ALICE)
    assert users["alice"] == ALICE
    with pytest.raises(KeyError):
        users["nobody"]


def test_contains_len_size(users):
    """`in`, len() and size() follow sets and deletes."""
    assert len(users) == 0
    assert users.size() == 0
    assert "alice" not in users
    users.set("alice", ALICE)
    users.set("bob", BOB)
    users.set("alice", BOB)
    assert "alice" in users
    assert "carol" not in users
    assert len(users) == users.size() == 2
    users.delete("alice")
    assert "alice" not in users
    assert len(users) == users.size() == 1


def test_keys_values_items_are_lists(users):
    """keys(), values(), items() return lists of the live entries."""
    users.set("alice", ALICE)
    users.set("bob", BOB)
    users.set("gone", ALICE)
    users.delete("gone")
    keys, values, items = users.keys(), users.values(), users.items()
    assert type(keys) is list
    assert type(values) is list
    assert type(items) is list
    assert sorted(keys) == ["alice", "bob"]
    assert sorted(values, key=lambda u: u.name) == [ALICE, BOB]
    assert sorted(items) == [("alice", ALICE), ("bob", BOB)]
    assert all(type(item) is tuple for item in items)


def test_iter_yields_keys(users):
    """iter(m) yields every key once."""
    for i in range(50):
        users.set(f"k{i}", ALICE)
    keys = list(iter(users))
    assert sorted(keys) == sorted(f"k{i}" for i in range(50))
    assert sorted(users) == sorted(keys)


def test_empty_map_iteration(users):
    """An empty map has no keys, values, items and never calls range's fn."""
    calls = []
    assert users.keys() == []
    assert users.values() == []
    assert users.items() == []
    assert list(users) == []
    users.range(lambda k, v: calls.append(k))
    assert calls == []


@pytest.mark.parametrize("result", [None, True, 1, "yes", 0.5])
def test_range_continues_unless_false(users, result):
    """range calls fn for every entry when fn returns anything but False."""
    for i in range(10):
        users.set(f"k{i}", User(f"n{i}", "e", i))
    seen = {}

    def fn(key, value):
        seen[key] = value
        return result

    users.range(fn)
    assert seen == dict(users.items())
    assert len(seen) == 10


@pytest.mark.parametrize("stop_after", [1, 3, 10])
def test_range_stops_on_false(users, stop_after):
    """range stops right after the call for which fn returns False."""
    for i in range(10):
        users.set(f"k{i}", User(f"n{i}", "e", i))
    calls = []

    def fn(key, value):
        calls.append(key)
        return len(calls) != stop_after

    users.range(fn)
    assert len(calls) == stop_after
    assert len(set(calls)) == stop_after


def test_values_stored_by_reference(db_path, users):
    """get returns the stored object itself; mutating it changes memory only."""
    alice = User("alice", "a@x", 30)
    users.set("alice", alice)
    assert users.get("alice") is alice
    assert users["alice"] is alice
    alice.age = 99
    assert users["alice"].age == 99
    assert read_bytes(db_path) == HEADER + rec("alice", User("alice", "a@x", 30))
    users.store.close()
    assert reopened_users(db_path) == {"alice": User("alice", "a@x", 30)}


def test_loaded_values_are_stored_objects(db_path, store, users):
    """A value loaded from the file is one stored object too: every get returns
    it, and mutating it shows in memory (and in what a shrink writes)."""
    users.set("alice", User("alice", "a@x", 30))
    store.close()
    with persist.Store(db_path) as s:
        m = s.map("users", User)
        first = m["alice"]
        assert m.get("alice") is first
        assert m.values()[0] is first
        first.age = 31
        assert m["alice"].age == 31
        s.shrink()
    assert reopened_users(db_path) == {"alice": User("alice", "a@x", 31)}


def test_set_async_stores_by_reference(users):
    """set_async and set_fsync keep the object itself, like set."""
    a, b = User("a", "a", 1), User("b", "b", 2)
    users.set_async("a", a)
    users.set_fsync("b", b)
    assert users["a"] is a
    assert users["b"] is b


def test_frozen_values(db_path, store):
    """A map of frozen attrs instances works like any other."""
    m = store.map("frozen", FrozenUser)
    m.set("k", FrozenUser("a", "b", 1))
    m.update("k", lambda u: u.set(FrozenUser("a", "b", 2)))
    store.close()
    with persist.Store(db_path) as s:
        assert s.map("frozen", FrozenUser)["k"] == FrozenUser("a", "b", 2)


# --------------------------------------------------------------------------
# Attributes and typing
# --------------------------------------------------------------------------


def test_map_attributes(store, users):
    """store, name and value_type describe the map."""
    assert users.store is store
    assert users.name == "users"
    assert users.value_type is User


def test_single_map_attributes(db_path):
    """open_single_map's map has the empty name and its store is open."""
    with persist.open_single_map(db_path, User) as m:
        assert m.name == ""
        assert m.value_type is User
        assert isinstance(m.store, persist.Store)
        assert m.store.closed is False


def test_persist_map_is_generic(users):
    """PersistMap[User] works at run time and a map is a PersistMap."""
    alias = persist.PersistMap[User]
    assert typing.get_origin(alias) is persist.PersistMap
    assert typing.get_args(alias) == (User,)
    assert isinstance(users, persist.PersistMap)
    assert typing.get_args(persist.Update[User]) == (User,)


# --------------------------------------------------------------------------
# Durability of set / delete
# --------------------------------------------------------------------------

SYNC_SETS = {
    "set": lambda m, k, v: m.set(k, v),
    "setitem": lambda m, k, v: m.__setitem__(k, v),
    "set_fsync": lambda m, k, v: m.set_fsync(k, v),
}


@pytest.mark.parametrize("op", SYNC_SETS, ids=str)
def test_sync_set_is_in_file_at_return(db_path, users, op):
    """set, m[k] = v and set_fsync have written the record when they return."""
    assert SYNC_SETS[op](users, "alice", ALICE) is None
    assert read_bytes(db_path) == HEADER + rec("alice", ALICE)
    SYNC_SETS[op](users, "alice", BOB)
    assert read_bytes(db_path) == HEADER + rec("alice", ALICE) + rec("alice", BOB)
    users.store.close()
    assert reopened_users(db_path) == {"alice": BOB}


DELETES = {
    "delete": lambda m, k: m.delete(k),
    "delete_fsync": lambda m, k: m.delete_fsync(k),
}


@pytest.mark.parametrize("op", DELETES, ids=str)
def test_sync_delete_is_in_file_at_return(db_path, users, op):
    """delete / delete_fsync return True and have written `D` when they return."""
    users.set("alice", ALICE)
    assert DELETES[op](users, "alice") is True
    assert "alice" not in users
    assert read_bytes(db_path) == HEADER + rec("alice", ALICE) + delete_record(
        "users:alice"
    )
    users.store.close()
    assert reopened_users(db_path) == {}


def test_delitem(db_path, users):
    """del m[k] deletes durably; on a missing key it raises KeyError, writes nothing."""
    users.set("alice", ALICE)
    del users["alice"]
    expected = HEADER + rec("alice", ALICE) + delete_record("users:alice")
    assert read_bytes(db_path) == expected
    with pytest.raises(KeyError):
        del users["alice"]
    assert read_bytes(db_path) == expected


@pytest.mark.parametrize("op", ["delete", "delete_async", "delete_fsync"])
@pytest.mark.parametrize("was_deleted", [False, True])
def test_delete_absent_returns_false_writes_nothing(
    db_path, store, users, op, was_deleted
):
    """Deleting an absent key (never set, or already deleted) returns False and
    writes nothing, now or at the next flush."""
    users.set("bob", BOB)
    if was_deleted:
        users.set("alice", ALICE)
        users.delete("alice")
    size = len(read_bytes(db_path))
    assert getattr(users, op)("alice") is False
    users.sync()
    store.fsync_all()
    assert len(read_bytes(db_path)) == size
    assert users.keys() == ["bob"]


# --------------------------------------------------------------------------
# Durability of async writes
# --------------------------------------------------------------------------


def flush(store, m, how: str, db_path, expected: bytes) -> None:
    """Make pending async changes reach the file the given way and check the
    file then holds exactly expected."""
    if how == "sync":
        assert m.sync() is None
    elif how == "fsync_all":
        assert store.fsync_all() is None
    elif how == "close":
        store.close()
    elif how == "background":
        store.sync_interval = 0.05
        wait_until(lambda: read_bytes(db_path) == expected, what="background sync")
    assert read_bytes(db_path) == expected


FLUSHES = ["sync", "fsync_all", "close", "background"]


@pytest.mark.parametrize("how", FLUSHES)
def test_set_async_durability(db_path, store, users, how):
    """set_async changes memory at once and the file only at the next flush."""
    assert users.set_async("alice", ALICE) is None
    assert users["alice"] is ALICE
    assert read_bytes(db_path) == HEADER
    flush(store, users, how, db_path, HEADER + rec("alice", ALICE))
    store.close()
    assert reopened_users(db_path) == {"alice": ALICE}


@pytest.mark.parametrize("how", FLUSHES)
def test_delete_async_durability(db_path, store, users, how):
    """delete_async returns True, removes at once, writes `D` at the next flush."""
    users.set("alice", ALICE)
    assert users.delete_async("alice") is True
    assert "alice" not in users
    assert read_bytes(db_path) == HEADER + rec("alice", ALICE)
    expected = HEADER + rec("alice", ALICE) + delete_record("users:alice")
    flush(store, users, how, db_path, expected)
    store.close()
    assert reopened_users(db_path) == {}


@pytest.mark.parametrize("how", FLUSHES)
def test_update_async_durability(db_path, store, users, how):
    """update_async changes memory at once and the file at the next flush."""
    users.set("alice", User("alice", "a@x", 1))

    def bump(upd):
        upd.value.age += 1

    value, exists = users.update_async("alice", bump)
    assert (value, exists) == (User("alice", "a@x", 2), True)
    assert users["alice"].age == 2
    assert read_bytes(db_path) == HEADER + rec("alice", User("alice", "a@x", 1))
    old, new = User("alice", "a@x", 1), User("alice", "a@x", 2)
    flush(store, users, how, db_path, HEADER + rec("alice", old) + rec("alice", new))
    store.close()
    assert reopened_users(db_path) == {"alice": User("alice", "a@x", 2)}


def test_async_key_written_once_per_sync(db_path, store, users):
    """A key set_async'd 100 times between syncs is written once, last value."""
    for i in range(100):
        users.set_async("k", User("n", "e", i))
    users.set_async("other", ALICE)
    users.sync()
    records = parse_wal(read_bytes(db_path))
    assert sorted(key for _, key, _ in records) == ["users:k", "users:other"]
    assert rec("k", User("n", "e", 99)) in read_bytes(db_path)
    assert store.stats() == persist.Stats(active_keys=2, wal_records=2)


def test_async_then_sync_write_of_same_key_keeps_order(db_path, store, users):
    """An async change queued before a synchronous write of the same key
    reaches the file before it, so the synchronous value wins after reopen."""
    users.set_async("alice", ALICE)
    users.set("alice", BOB)
    assert read_bytes(db_path) == HEADER + rec("alice", ALICE) + rec("alice", BOB)
    users.sync()
    store.close()
    assert reopened_users(db_path) == {"alice": BOB}


def test_async_then_sync_delete_of_same_key(db_path, store, users):
    """set_async then delete of the same key: the key stays deleted on disk."""
    users.set_async("alice", ALICE)
    assert users.delete("alice") is True
    store.close()
    assert reopened_users(db_path) == {}
    assert parse_wal(read_bytes(db_path))[-1] == ("D", "users:alice", b"")


def test_async_writes_keep_call_order_with_sync_writes(db_path, store, users):
    """Async changes queued before a synchronous write are in the file, in call
    order, once that write returns."""
    users.set_async("a", ALICE)
    users.set("b", BOB)
    assert read_bytes(db_path) == HEADER + rec("a", ALICE) + rec("b", BOB)


def test_set_then_delete_async_same_key(db_path, store, users):
    """set_async then delete_async of a new key before a sync leaves no key."""
    users.set_async("alice", ALICE)
    assert users.delete_async("alice") is True
    users.sync()
    store.close()
    assert reopened_users(db_path) == {}


def test_sync_writes_without_fsync_all(db_path, store):
    """m.sync() writes this map's pending changes."""
    a = store.map("a", int)
    a.set_async("k", 1)
    assert read_bytes(db_path) == HEADER
    a.sync()
    assert read_bytes(db_path) == HEADER + set_record("a:k", "1")


def test_fsync_all_flushes_every_map(db_path, store):
    """store.fsync_all() writes the pending changes of every map."""
    a = store.map("a", int)
    b = store.map("b", int)
    a.set_async("k", 1)
    b.set_async("k", 2)
    store.fsync_all()
    assert sorted(parse_wal(read_bytes(db_path))) == [
        ("S", "a:k", b"1"),
        ("S", "b:k", b"2"),
    ]


# --------------------------------------------------------------------------
# update
# --------------------------------------------------------------------------

UPDATES = ["update", "update_fsync"]


@pytest.mark.parametrize("op", UPDATES)
def test_update_mutating_value(db_path, users, op):
    """Mutating upd.value stores and writes the new value; the call returns
    (new value, True)."""
    users.set("alice", User("alice", "a@x", 1))
    seen = {}

    def fn(upd):
        assert isinstance(upd, persist.Update)
        seen["exists"] = upd.exists
        seen["value"] = User(upd.value.name, upd.value.email, upd.value.age)
        upd.value.age += 1

    assert getattr(users, op)("alice", fn) == (User("alice", "a@x", 2), True)
    assert seen == {"exists": True, "value": User("alice", "a@x", 1)}
    assert users["alice"] == User("alice", "a@x", 2)
    assert read_bytes(db_path) == HEADER + rec("alice", User("alice", "a@x", 1)) + rec(
        "alice", User("alice", "a@x", 2)
    )
    users.store.close()
    assert reopened_users(db_path) == {"alice": User("alice", "a@x", 2)}


def test_update_works_on_a_copy(users):
    """upd.value is a copy: the stored object is untouched while fn runs."""
    original = User("alice", "a@x", 1)
    users.set("alice", original)

    def fn(upd):
        assert upd.value == original
        assert upd.value is not original
        upd.value.age = 5
        assert original.age == 1
        assert users.get("alice").age == 1

    users.update("alice", fn)
    assert users["alice"].age == 5


@pytest.mark.parametrize("op", UPDATES)
def test_update_with_set(db_path, users, op):
    """upd.set(v) stores v, on an existing or a missing key."""
    users.set("alice", ALICE)
    assert getattr(users, op)("alice", lambda u: u.set(BOB)) == (BOB, True)
    assert getattr(users, op)("new", lambda u: u.set(ALICE)) == (ALICE, True)
    assert users["alice"] == BOB
    assert users["new"] == ALICE
    assert read_bytes(db_path) == (
        HEADER + rec("alice", ALICE) + rec("alice", BOB) + rec("new", ALICE)
    )


@pytest.mark.parametrize("op", UPDATES)
def test_update_with_delete(db_path, users, op):
    """upd.delete() deletes: returns (None, False) and writes `D`."""
    users.set("alice", ALICE)

    def fn(upd):
        upd.delete()

    assert getattr(users, op)("alice", fn) == (None, False)
    assert "alice" not in users
    assert read_bytes(db_path) == HEADER + rec("alice", ALICE) + delete_record(
        "users:alice"
    )


@pytest.mark.parametrize("op", UPDATES)
def test_update_delete_of_missing_key_writes_nothing(db_path, users, op):
    """upd.delete() on a missing key returns (None, False) and writes nothing."""
    before = read_bytes(db_path)
    assert getattr(users, op)("nobody", lambda u: u.delete()) == (None, False)
    assert "nobody" not in users
    assert read_bytes(db_path) == before


@pytest.mark.parametrize("op", UPDATES)
def test_update_cancel(db_path, users, op):
    """After upd.cancel() the call returns the stored value and whether it
    exists, and nothing changes (even if upd.value was mutated first)."""
    users.set("alice", User("alice", "a@x", 1))
    before = read_bytes(db_path)

    def fn(upd):
        upd.value.age = 100
        upd.cancel()

    assert getattr(users, op)("alice", fn) == (User("alice", "a@x", 1), True)
    assert getattr(users, op)("nobody", lambda u: u.cancel()) == (None, False)
    assert users["alice"] == User("alice", "a@x", 1)
    assert "nobody" not in users
    assert read_bytes(db_path) == before


@pytest.mark.parametrize("op", UPDATES)
def test_update_unchanged_value_is_still_written(db_path, users, op):
    """An fn that does nothing on an existing key rewrites the same value."""
    users.set("alice", ALICE)
    assert getattr(users, op)("alice", lambda u: None) == (ALICE, True)
    assert read_bytes(db_path) == HEADER + rec("alice", ALICE) + rec("alice", ALICE)


@pytest.mark.parametrize("op", UPDATES)
def test_update_missing_key_without_value_stores_nothing(db_path, users, op):
    """On a missing key, an fn that assigns nothing stores nothing and the call
    returns (None, False)."""
    seen = {}

    def fn(upd):
        seen["value"], seen["exists"] = upd.value, upd.exists

    before = read_bytes(db_path)
    assert getattr(users, op)("nobody", fn) == (None, False)
    assert seen == {"value": None, "exists": False}

    def assign_none(upd):
        upd.value = None

    assert getattr(users, op)("nobody", assign_none) == (None, False)
    assert "nobody" not in users
    assert read_bytes(db_path) == before


@pytest.mark.parametrize("op", UPDATES)
def test_update_missing_key_with_assigned_value(db_path, users, op):
    """On a missing key, assigning a non-None upd.value stores it."""

    def fn(upd):
        upd.value = ALICE

    assert getattr(users, op)("alice", fn) == (ALICE, True)
    assert users["alice"] == ALICE
    assert read_bytes(db_path) == HEADER + rec("alice", ALICE)


def test_update_ignores_fn_return_value(db_path, users):
    """fn's return value is ignored: returning False still stores."""
    users.set("alice", User("alice", "a@x", 1))

    def fn(upd):
        upd.value.age = 2
        return False

    assert users.update("alice", fn) == (User("alice", "a@x", 2), True)
    assert users["alice"].age == 2


def test_update_of_immutable_values(db_path, store):
    """update on a map of ints works by assigning upd.value."""
    counters = store.map("counters", int)

    def incr(upd):
        upd.value = (upd.value or 0) + 1

    assert counters.update("c", incr) == (1, True)
    assert counters.update("c", incr) == (2, True)
    assert read_bytes(db_path) == HEADER + set_record("counters:c", "1") + set_record(
        "counters:c", "2"
    )


class Boom(Exception):
    """Raised by update callbacks in tests."""


UPDATE_FAILURES = {
    "mutate": lambda u: setattr(u.value, "age", 100),
    "set": lambda u: u.set(BOB),
    "delete": lambda u: u.delete(),
    "assign": lambda u: setattr(u, "value", BOB),
}


@pytest.mark.parametrize(
    "op", ["update", "update_async", "update_fsync", "update_in_memory"]
)
@pytest.mark.parametrize("before_raise", UPDATE_FAILURES, ids=str)
def test_update_exception_changes_nothing(db_path, store, users, op, before_raise):
    """If fn raises, the exception propagates and neither memory nor the file
    change, whatever fn did to upd first."""
    original = User("alice", "a@x", 1)
    users.set("alice", original)
    before = read_bytes(db_path)

    def fn(upd):
        UPDATE_FAILURES[before_raise](upd)
        raise Boom

    with pytest.raises(Boom):
        getattr(users, op)("alice", fn)
    assert users["alice"] is original
    assert original == User("alice", "a@x", 1)

    def fn_missing(upd):
        if before_raise != "mutate":
            UPDATE_FAILURES[before_raise](upd)
        raise Boom

    with pytest.raises(Boom):
        getattr(users, op)("nobody", fn_missing)
    assert "nobody" not in users
    store.fsync_all()
    assert read_bytes(db_path) == before


# --------------------------------------------------------------------------
# Memory-only writes
# --------------------------------------------------------------------------


def test_set_in_memory_is_not_written(db_path, store, users):
    """set_in_memory changes memory only: not in the file, not after reopen."""
    users.set("bob", BOB)
    users.set_in_memory("alice", ALICE)
    users.set_in_memory("bob", ALICE)
    assert users["alice"] is ALICE
    assert users["bob"] is ALICE
    users.sync()
    store.fsync_all()
    assert read_bytes(db_path) == HEADER + rec("bob", BOB)
    store.close()
    assert read_bytes(db_path) == HEADER + rec("bob", BOB)
    assert reopened_users(db_path) == {"bob": BOB}


def test_update_in_memory_is_not_written(db_path, store, users):
    """update_in_memory changes memory only."""
    users.set("alice", User("alice", "a@x", 1))

    def bump(upd):
        upd.value.age += 1

    users.update_in_memory("alice", bump)
    assert users["alice"].age == 2
    store.close()
    assert read_bytes(db_path) == HEADER + rec("alice", User("alice", "a@x", 1))
    assert reopened_users(db_path) == {"alice": User("alice", "a@x", 1)}


def test_in_memory_change_persisted_by_later_update(db_path, store, users):
    """A later durable update of the key starts from the in-memory value."""
    users.set("alice", User("alice", "a@x", 1))

    def add(n):
        def fn(upd):
            upd.value.age += n

        return fn

    users.update_in_memory("alice", add(1))
    users.update("alice", add(10))
    assert read_bytes(db_path).endswith(rec("alice", User("alice", "a@x", 12)))
    store.close()
    assert reopened_users(db_path) == {"alice": User("alice", "a@x", 12)}


def test_in_memory_changes_persisted_by_shrink(db_path, store, users):
    """shrink writes what is in memory, memory-only changes included."""
    users.set("alice", User("alice", "a@x", 1))
    users.set_in_memory("bob", BOB)

    def bump(upd):
        upd.value.age = 7

    users.update_in_memory("alice", bump)
    store.shrink()
    store.close()
    assert reopened_users(db_path) == {"alice": User("alice", "a@x", 7), "bob": BOB}


# --------------------------------------------------------------------------
# Not open
# --------------------------------------------------------------------------

MAP_CALLS = {
    "get": lambda m: m.get("k"),
    "getitem": lambda m: m["k"],
    "contains": lambda m: "k" in m,
    "len": lambda m: len(m),
    "size": lambda m: m.size(),
    "keys": lambda m: m.keys(),
    "values": lambda m: m.values(),
    "items": lambda m: m.items(),
    "iter": lambda m: list(iter(m)),
    "range": lambda m: m.range(lambda k, v: True),
    "set": lambda m: m.set("k", 1),
    "setitem": lambda m: m.__setitem__("k", 1),
    "set_async": lambda m: m.set_async("k", 1),
    "set_fsync": lambda m: m.set_fsync("k", 1),
    "set_in_memory": lambda m: m.set_in_memory("k", 1),
    "delete": lambda m: m.delete("k"),
    "delitem": lambda m: m.__delitem__("k"),
    "delete_async": lambda m: m.delete_async("k"),
    "delete_fsync": lambda m: m.delete_fsync("k"),
    "update": lambda m: m.update("k", lambda u: u.set(1)),
    "update_async": lambda m: m.update_async("k", lambda u: u.set(1)),
    "update_fsync": lambda m: m.update_fsync("k", lambda u: u.set(1)),
    "update_in_memory": lambda m: m.update_in_memory("k", lambda u: u.set(1)),
    "sync": lambda m: m.sync(),
}


@pytest.mark.parametrize("call", MAP_CALLS, ids=str)
def test_map_before_open_raises_not_open(call):
    """Every read or write on a map registered before open raises NotOpenError."""
    store = persist.Store()
    m = store.map("m", int)
    with pytest.raises(persist.NotOpenError):
        MAP_CALLS[call](m)


@pytest.mark.parametrize("call", MAP_CALLS, ids=str)
def test_map_after_close_raises_not_open(db_path, call):
    """Every read or write on a map of a closed store raises NotOpenError and
    the file is not touched."""
    store = persist.Store(db_path)
    m = store.map("m", int)
    m.set("k", 1)
    store.close()
    before = read_bytes(db_path)
    with pytest.raises(persist.NotOpenError):
        MAP_CALLS[call](m)
    assert read_bytes(db_path) == before


def test_map_keeps_working_after_reopen(db_path):
    """A map registered before open serves the data again when the store is
    closed and opened again."""
    store = persist.Store()
    m = store.map("m", int)
    store.open(db_path)
    m.set("k", 1)
    store.close()
    store.open(db_path)
    try:
        assert m["k"] == 1
        m.set("k", 2)
    finally:
        store.close()
    with persist.Store(db_path) as s:
        assert s.map("m", int)["k"] == 2


def test_bulk_read_never_overwrites_a_write_made_while_it_decodes(db_path):
    """values() decodes outside the shard lock and then installs the decoded
    values; a key written meanwhile keeps the written value (newest wins).
    "trigger" is loaded last, so keys of its shard are decoded before the
    write (200 keys over 16 shards: some share its shard)."""

    class Note:
        def __init__(self, text: str) -> None:
            self.text = text

    keys = [f"k{i}" for i in range(200)]
    notes = None

    def decode(data: bytes) -> Note:
        text = json.loads(data)
        if text == "trigger":  # a writer runs in the middle of the bulk read
            for key in keys:
                notes.set_in_memory(key, Note("written"))
        return Note(text)

    persist.register_codec(Note, lambda n: json.dumps(n.text).encode(), decode)
    with persist.Store(db_path) as store:
        m = store.map("notes", Note)
        for key in keys:
            m.set(key, Note("loaded"))
        m.set("trigger", Note("trigger"))
    with persist.Store(db_path) as store:
        notes = store.map("notes", Note)
        assert {note.text for note in notes.values()} <= {
            "trigger",
            "loaded",
            "written",
        }
        assert {key: notes[key].text for key in keys} == dict.fromkeys(keys, "written")
