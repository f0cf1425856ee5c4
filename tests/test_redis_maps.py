"""RedisMap: every PersistMap call of DESIGN.md on a real Redis server, with
the file store's values, key rules and errors; the stored bytes are the file
store's value lines."""

from __future__ import annotations

import datetime
import decimal
import uuid
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
import redis
from conftest import (
    CONTROL_CHARS,
    FrozenUser,
    User,
    parse_wal,
    read_bytes,
    user_json,
    wait_until,
)
from redis_helpers import Stores

import persist
import persist.redis as pr


def test_set_get_and_the_stored_bytes(stores: Stores, raw: redis.Redis) -> None:
    """set writes the codec's JSON into the hash <namespace>:<map>."""
    store = stores("app")
    users = store.map("users", User)
    users.set("ann", User("Ann", "ann@x", 31))
    assert raw.hget(b"app:users", b"ann") == user_json("Ann", "ann@x", 31).encode()
    assert users.get("ann") == User("Ann", "ann@x", 31)
    assert users["ann"] == User("Ann", "ann@x", 31)
    assert users.get("bob") is None
    assert users.get("bob", 7) == 7
    with pytest.raises(KeyError):
        users["bob"]
    assert "ann" in users and "bob" not in users
    assert raw.keys() == [b"app:users"]


@attrs.frozen
class Record:
    when: datetime.datetime
    price: decimal.Decimal
    id: uuid.UUID
    tags: frozenset[str]
    blob: bytes
    note: str | None = None


def test_value_bytes_identical_to_the_file_store(
    stores: Stores, raw: redis.Redis, tmp_path: Path
) -> None:
    """The same value set in a file store and a Redis store: byte-identical."""
    value = Record(
        datetime.datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=datetime.UTC),
        decimal.Decimal("1.10"),
        uuid.UUID(int=12345),
        frozenset({"a"}),
        b"\x00\xffbytes",
        'line\nbreak "quoted" \u2028 ünï',
    )
    with persist.Store(tmp_path / "f.db") as file_store:
        file_store.map("recs", Record).set("k\u00e9y", value)
    [(kind, fullkey, line)] = parse_wal(read_bytes(tmp_path / "f.db"))
    assert (kind, fullkey) == ("S", "recs:k\u00e9y")
    stores("ns").map("recs", Record).set("k\u00e9y", value)
    assert raw.hget(b"ns:recs", "k\u00e9y".encode()) == line
    assert stores("ns").map("recs", Record)["k\u00e9y"] == value  # a second store


def test_single_map_is_the_hash_namespace_colon(
    redis_url: str, raw: redis.Redis
) -> None:
    """open_single_map uses the map "" (the hash "<namespace>:") and closes
    its store as a context manager."""
    with pr.open_single_map(redis_url, int, namespace="one") as m:
        assert m.name == ""
        m.set("k", 5)
        assert raw.hget(b"one:", b"k") == b"5"
    assert m.store.closed
    with pytest.raises(persist.NotOpenError):
        m.get("k")
    converter = cattrs.Converter()
    with pr.open_single_map(redis_url, User, converter=converter) as users:
        assert users.codec.source == "cattrs"
        users.set("a", User("A", "a@x", 1))
        assert raw.hget(b"persist:", b"a") == user_json("A", "a@x", 1).encode()
    with pytest.raises(ValueError):
        pr.RedisStore(redis_url, update_attempts=0)


def test_attributes(stores: Stores, redis_url: str) -> None:
    store = stores("attrs")
    m = store.map("m", FrozenUser)
    assert (m.store, m.name, m.value_type) == (store, "m", FrozenUser)
    assert m.codec is persist.codec_for(FrozenUser)
    assert m.redis_key == b"attrs:m"
    assert (store.url, store.namespace, store.closed) == (redis_url, "attrs", False)
    assert store.sync_interval == 0.001
    store.sync_interval = 0.5
    assert store.sync_interval == 0.5
    with pytest.raises(ValueError):
        store.sync_interval = 0
    assert isinstance(m, pr.RedisMap)


def test_map_names_and_registration(stores: Stores) -> None:
    store = stores()
    store.map("m", int)
    with pytest.raises(persist.MapExistsError):
        store.map("m", str)
    with pytest.raises(persist.InvalidKeyError):
        store.map("a:b", int)
    with pytest.raises(persist.InvalidKeyError):
        store.map("a\nb", int)
    with pytest.raises(TypeError):
        store.map(5, int)  # type: ignore[arg-type]
    with pytest.raises(persist.InvalidKeyError):
        stores("")


def test_key_rules(stores: Stores, raw: redis.Redis) -> None:
    """Non-str keys are TypeError, control characters and lone surrogates
    InvalidKeyError, for every write; nothing is stored.  "" is a valid key."""
    m = stores().map("m", int)
    writes = [
        lambda k: m.set(k, 1),
        lambda k: m.set_async(k, 1),
        lambda k: m.set_fsync(k, 1),
        lambda k: m.delete(k),
        lambda k: m.delete_async(k),
        lambda k: m.update(k, lambda u: u.set(1)),
    ]
    for write in writes:
        with pytest.raises(TypeError):
            write(5)
        for bad in [*CONTROL_CHARS[:3], "\x7f", "\ud800"]:
            with pytest.raises(persist.InvalidKeyError):
                write(f"a{bad}")
    with pytest.raises(TypeError):
        m.get(5)  # type: ignore[arg-type]
    assert m.get("\ud800") is None
    m.sync()
    assert raw.keys() == []
    m.set("", 3)
    assert m[""] == 3 and raw.hget(b"persist:m", b"") == b"3"


def test_wrong_type_and_encode_errors_store_nothing(
    stores: Stores, raw: redis.Redis
) -> None:
    m = stores().map("m", float)
    for write in (m.set, m.set_async, m.set_fsync):
        with pytest.raises(TypeError):
            write("k", "text")  # type: ignore[arg-type]
        with pytest.raises(persist.EncodeError):
            write("k", float("nan"))
    with pytest.raises(persist.EncodeError):
        m.update("k", lambda u: u.set(float("inf")))
    m.sync()
    assert "k" not in m and raw.keys() == []


def test_set_async_reads_its_own_writes_and_sync_sends(
    stores: Stores, raw: redis.Redis
) -> None:
    store = stores(sync_interval=3600)
    m = store.map("m", int)
    m.set_async("a", 1)
    assert m.get("a") == 1 and "a" in m
    assert m.delete_async("a") is True
    assert m.get("a") is None and "a" not in m
    m.set_async("b", 2)
    assert raw.hget(b"persist:m", b"b") is None  # not sent yet
    m.sync()
    assert raw.hgetall(b"persist:m") == {b"b": b"2"}
    assert m.get("b") == 2


def test_background_sync_sends_async_changes(stores: Stores, raw: redis.Redis) -> None:
    m = stores(sync_interval=0.01).map("m", int)
    m.set_async("a", 1)
    wait_until(lambda: raw.hget(b"persist:m", b"a") == b"1", what="background sync")


def test_delete_returns_whether_it_existed(stores: Stores, raw: redis.Redis) -> None:
    m = stores().map("m", int)
    m.set("a", 1)
    m.set("b", 2)
    m.set("c", 3)
    assert m.delete("a") is True and m.delete("a") is False
    assert m.delete_fsync("b") is True and m.delete_fsync("b") is False
    assert m.delete_async("c") is True and m.delete_async("c") is False
    assert m.delete_async("never") is False
    m.sync()
    assert raw.hgetall(b"persist:m") == {}
    m.set("d", 4)
    del m["d"]
    with pytest.raises(KeyError):
        del m["d"]


def test_delete_async_asks_the_server_when_it_does_not_know(
    stores: Stores, raw: redis.Redis
) -> None:
    """A key written by another client, never read here: HEXISTS answers."""
    m = stores(local_cache=False).map("m", int)
    raw.hset(b"persist:m", b"x", b"1")
    assert m.delete_async("x") is True
    m.sync()
    assert raw.hexists(b"persist:m", b"x") == 0


def test_iteration_len_and_range(stores: Stores) -> None:
    """keys/values/items/iter/len/range see the pending async changes too."""
    m = stores(sync_interval=3600).map("m", int)
    for i in range(2500):  # more than one HSCAN reply
        m.set_async(f"k{i}", i)
    m.set("s", -1)
    assert len(m) == m.size() == 2501
    assert sorted(m.keys()) == sorted([f"k{i}" for i in range(2500)] + ["s"])
    assert sorted(m.values()) == [-1, *range(2500)]
    assert dict(m.items()) == {**{f"k{i}": i for i in range(2500)}, "s": -1}
    assert sorted(iter(m)) == sorted(m.keys())
    seen: list[str] = []
    m.range(lambda k, v: seen.append(k) or len(seen) < 10)
    assert len(seen) == 10
    seen.clear()
    m.range(lambda k, v: seen.append(k))  # None continues
    assert len(seen) == 2501


def test_update_forms_and_results(stores: Stores, raw: redis.Redis) -> None:
    """The Update semantics of the file store: store, set, delete, cancel,
    exception = no change, missing key without a value stores nothing."""
    m = stores().map("m", User)
    assert m.update("a", lambda u: None) == (None, False)
    assert m.update("a", lambda u: u.set(User("A", "a@x", 1))) == (
        User("A", "a@x", 1),
        True,
    )

    def birthday(u: persist.Update[User]) -> None:
        assert u.exists and u.value is not None
        u.value.age += 1  # mutating the copy stores it

    assert m.update("a", birthday) == (User("A", "a@x", 2), True)
    assert m.update_fsync("a", birthday) == (User("A", "a@x", 3), True)
    assert m.update_async("a", birthday) == (User("A", "a@x", 4), True)
    assert m.update("a", lambda u: u.cancel()) == (User("A", "a@x", 4), True)
    assert m.update("zz", lambda u: u.cancel()) == (None, False)

    def boom(u: persist.Update[User]) -> None:
        u.value.age = 99  # type: ignore[union-attr]
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        m.update("a", boom)
    assert m["a"] == User("A", "a@x", 4)
    assert raw.hget(b"persist:m", b"a") == user_json("A", "a@x", 4).encode()
    assert m.update("a", lambda u: u.delete()) == (None, False)
    assert m.update("a", lambda u: u.delete()) == (None, False)
    assert raw.hgetall(b"persist:m") == {}
    with pytest.raises(TypeError):
        m.update("a", 5)  # type: ignore[call-overload]


def test_update_sees_pending_async_changes(stores: Stores) -> None:
    m = stores(sync_interval=3600).map("m", int)
    m.set_async("n", 10)
    assert m.update("n", lambda u: u.set(u.value + 1)) == (11, True)
    assert m["n"] == 11


def test_memory_only_calls_are_refused(stores: Stores, raw: redis.Redis) -> None:
    m = stores().map("m", int)
    with pytest.raises(pr.UnsupportedError, match="memory-only"):
        m.set_in_memory("k", 1)
    with pytest.raises(NotImplementedError):
        m.update_in_memory("k", lambda u: u.set(1))
    assert "k" not in m and raw.keys() == []


def test_values_are_shared_with_the_cache(stores: Stores, raw: redis.Redis) -> None:
    """As in the file store, get returns the cached object itself (once
    tracking is on and no write invalidates the map)."""
    raw.hset(b"persist:m", b"a", user_json("A", "a@x", 1).encode())
    store = stores()
    wait_until(lambda: store.tracking_client_id is not None, what="tracking")
    m = store.map("m", User)
    first = m.get("a")
    assert first == User("A", "a@x", 1)
    assert m.get("a") is first


def test_decode_error_names_map_and_key(stores: Stores, raw: redis.Redis) -> None:
    m = stores().map("m", int)
    raw.hset(b"persist:m", b"bad", b'"text"')
    with pytest.raises(persist.DecodeError, match="map 'm', key 'bad'"):
        m.get("bad")


def test_closed_store_refuses_every_call(stores: Stores) -> None:
    store = stores()
    m = store.map("m", int)
    m.set_async("a", 1)
    store.close()
    assert store.closed
    store.close()  # twice: a no-op
    calls: list[Any] = [
        lambda: m.get("a"),
        lambda: m.set("a", 1),
        lambda: m.set_async("a", 1),
        lambda: m.set_fsync("a", 1),
        lambda: m.delete("a"),
        lambda: m.delete_async("a"),
        lambda: m.update("a", lambda u: None),
        lambda: len(m),
        lambda: m.keys(),
        lambda: "a" in m,
        lambda: m.sync(),
        lambda: store.sync(),
        lambda: store.fsync_all(),
        lambda: store.map("n", int),
    ]
    for call in calls:
        with pytest.raises(persist.NotOpenError):
            call()


def test_close_sends_pending_changes(stores: Stores, raw: redis.Redis) -> None:
    store = stores(sync_interval=3600)
    store.map("m", int).set_async("a", 1)
    store.close()
    assert raw.hget(b"persist:m", b"a") == b"1"


def test_unreachable_server_is_a_clear_error() -> None:
    from redis_server import free_port

    with pytest.raises(pr.RedisConnectionError, match=r"127\.0\.0\.1"):
        pr.RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=2)


def test_a_forked_child_cannot_use_the_parents_store(stores: Stores) -> None:
    """After os.fork() the child's copy refuses every call (NotOpenError
    saying it belongs to the parent); the parent's store goes on."""
    import os

    m = stores().map("m", int)
    m.set("k", 1)
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the call is refused as expected
        try:
            m.get("k")
        except persist.NotOpenError as exc:
            os._exit(0 if "parent" in str(exc) else 2)
        except BaseException:
            os._exit(3)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    m.set("k", 2)
    assert m["k"] == 2
