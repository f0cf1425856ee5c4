"""RedisMap is a MutableMapping: CPython's own protocol tests (as
tests/test_mapping.py runs them on the file store), and the protocol's
writes acknowledged by the server before they return."""

from __future__ import annotations

import collections.abc
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import redis
from redis_helpers import Stores

from persist.redis import RedisMap

mapping_tests = pytest.importorskip("test.mapping_tests")


def test_registered_as_a_mutable_mapping(stores: Stores) -> None:
    m = stores().map("m", Any)
    assert isinstance(m, collections.abc.MutableMapping)
    with pytest.raises(TypeError, match="unhashable"):
        hash(m)


class TestCPythonMappingProtocol(mapping_tests.BasicTestMappingProtocol):
    """test.mapping_tests.BasicTestMappingProtocol on a map of Any whose store
    runs its background sync every millisecond.  One change: the reference
    value ``(1, 2, 3)`` is a list, because a Redis map hands back what the
    server holds (JSON has no tuple), where the file store keeps the object."""

    def _reference(self) -> dict[str, Any]:
        return {"key1": "value1", "key2": [1, 2, 3]}

    @pytest.fixture(autouse=True)
    def _stores(self, stores: Stores) -> Iterator[None]:
        self.stores = stores
        self.made = 0
        yield

    def _empty_mapping(self) -> RedisMap[Any]:
        self.made += 1
        return self.stores(f"p{self.made}").map("m", Any)


def test_pop_popitem_setdefault_clear(stores: Stores, raw: redis.Redis) -> None:
    m = stores().map("m", int)
    m.set("a", 1)
    assert m.pop("a") == 1
    assert m.pop("a", 7) == 7
    with pytest.raises(KeyError):
        m.pop("a")
    assert raw.hgetall(b"persist:m") == {}
    assert m.setdefault("a", 1) == 1
    assert m.setdefault("a", 2) == 1
    m["b"] = 2
    key, value = m.popitem()
    assert (key, value) in {("a", 1), ("b", 2)}
    assert len(raw.hgetall(b"persist:m")) == 1
    m.clear()
    assert len(m) == 0 and raw.hgetall(b"persist:m") == {}
    with pytest.raises(KeyError):
        m.popitem()


def test_clear_is_acknowledged_before_return(stores: Stores, raw: redis.Redis) -> None:
    m = stores(sync_interval=3600).map("m", int)
    m.update({f"k{i}": i for i in range(100)})
    assert raw.hlen(b"persist:m") == 100
    m.clear()
    assert m == {} and raw.hlen(b"persist:m") == 0


def test_update_dict_forms(stores: Stores, raw: redis.Redis) -> None:
    """update(mapping), update(pairs), update(**kw) set (acknowledged);
    update(key, fn) stays the atomic form."""
    m = stores().map("m", int)
    m.update({"a": 1})
    m.update([("b", 2)], c=3)
    m.update(d=4)
    assert m.update("a", lambda u: u.set(u.value + 10)) == (11, True)
    assert m.update("e", fn=lambda u: u.set(5)) == (5, True)
    assert m.copy() == {"a": 11, "b": 2, "c": 3, "d": 4, "e": 5}
    assert type(m.copy()) is dict
    assert raw.hgetall(b"persist:m") == {
        b"a": b"11",
        b"b": b"2",
        b"c": b"3",
        b"d": b"4",
        b"e": b"5",
    }
    with pytest.raises(TypeError):
        m.update("a")
    with pytest.raises(TypeError):
        m.update({"a": 1}, {"b": 2})  # type: ignore[call-overload]
    with pytest.raises(TypeError):  # wrong value type: nothing stored
        m.update({"z": "not an int"})  # type: ignore[dict-item]
    assert "z" not in m


def test_equality(stores: Stores, tmp_path: Any) -> None:
    """== compares contents with any mapping, a file store's map included."""
    import persist

    store = stores()
    a, b = store.map("a", int), store.map("b", int)
    a["k"] = b["k"] = 1
    assert a == b == {"k": 1}
    assert a != {"k": 2}
    assert a != [("k", 1)]
    with persist.Store(tmp_path / "f.db") as file_store:
        f = file_store.map("f", int)
        f["k"] = 1
        assert a == f
    b["j"] = 2
    assert a != b


@attrs.frozen
class Counter:
    n: int


def test_setdefault_is_atomic_across_threads(
    stores: Stores, raw: redis.Redis, fast_thread_switching: None
) -> None:
    """Eight threads (two stores) race setdefault on one key: one value wins
    and every thread sees it."""
    maps = [stores().map("m", Counter), stores().map("m", Counter)]
    seen: list[Counter] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def race(n: int) -> None:
        barrier.wait()
        value = maps[n % 2].setdefault("k", Counter(n))
        with lock:
            seen.append(value)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(seen) == 8 and len(set(seen)) == 1
    assert raw.hget(b"persist:m", b"k") == b'{"n":%d}' % seen[0].n
