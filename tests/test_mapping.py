"""PersistMap is a MutableMapping: CPython's own protocol tests, and each write
of the protocol's methods durable as ``set``/``delete`` (bytes in the file)."""

from __future__ import annotations

import collections.abc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from conftest import (
    HEADER,
    delete_record,
    live_records,
    read_bytes,
    set_record,
)

import persist

# CPython's own tests of the protocol (the stdlib's test package; Debian ships it
# apart, as libpython3.x-testsuite)
mapping_tests = pytest.importorskip("test.mapping_tests")


def open_fast(path: Path, auto_shrink: bool = False) -> persist.Store:
    """An open store whose background sync runs every millisecond (and, with
    ``auto_shrink``, a shrink check every 5 ms), so the threads race the calls."""
    s = persist.Store()
    s.sync_interval = 0.001
    s.open(path)
    if auto_shrink:
        s.start_auto_shrink(0.005, 1.1)
    return s


@pytest.fixture
def store(tmp_path: Path) -> Iterator[persist.Store]:
    s = open_fast(tmp_path / "m.db")
    yield s
    s.close()


@pytest.fixture
def anys(store: persist.Store) -> persist.PersistMap[Any]:
    return store.map("m", Any)


def test_registered_as_a_mutable_mapping(anys: persist.PersistMap[Any]) -> None:
    assert isinstance(anys, collections.abc.MutableMapping)
    with pytest.raises(TypeError, match="unhashable"):
        hash(anys)


class _Stores:
    """Open one fresh store per mapping the protocol tests ask for."""

    folder: Path
    stores: list[persist.Store]

    def __init__(self, folder: Path) -> None:
        self.folder, self.stores = folder, []

    def new_map(self) -> persist.PersistMap[Any]:
        store = open_fast(self.folder / f"p{len(self.stores)}.db")
        self.stores.append(store)
        return store.map("m", Any)


class TestCPythonMappingProtocol(mapping_tests.BasicTestMappingProtocol):
    """test.mapping_tests.BasicTestMappingProtocol, unchanged, on a map of Any."""

    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> Iterator[None]:
        self.maker = _Stores(tmp_path)
        yield
        for store in self.maker.stores:
            store.close()

    def _empty_mapping(self) -> persist.PersistMap[Any]:
        return self.maker.new_map()


def test_pop_is_a_delete_record(store: persist.Store) -> None:
    m = store.map("m", int)
    m.set("a", 1)
    assert m.pop("a") == 1
    assert m.pop("a", 7) == 7
    with pytest.raises(KeyError):
        m.pop("a")
    assert read_bytes(store.path) == HEADER + set_record("m:a", "1") + delete_record(
        "m:a"
    )


def test_pop_of_an_undecodable_value_keeps_it(tmp_path: Path) -> None:
    """A value line that cannot be decoded: DecodeError, key and file unchanged."""
    path = tmp_path / "bad.db"
    data = HEADER + set_record("m:a", '"text"')
    path.write_bytes(data)
    with persist.Store(path) as store:
        m = store.map("m", int)
        with pytest.raises(persist.DecodeError):
            m.pop("a")
        assert "a" in m
        assert read_bytes(path) == data


def test_popitem_and_setdefault_and_clear(store: persist.Store) -> None:
    m = store.map("m", int)
    assert m.setdefault("a", 1) == 1
    assert m.setdefault("a", 2) == 1
    m["b"] = 2
    key, value = m.popitem()
    assert (key, value) in {("a", 1), ("b", 2)}
    assert len(m) == 1
    m.clear()
    assert len(m) == 0
    with pytest.raises(KeyError):
        m.popitem()
    other = "b" if key == "a" else "a"
    assert read_bytes(store.path) == HEADER + b"".join(
        [
            set_record("m:a", "1"),
            set_record("m:b", "2"),
            delete_record(f"m:{key}"),
            delete_record(f"m:{other}"),
        ]
    )


def test_clear_writes_before_return_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with persist.Store(path) as store:
        m = store.map("m", int)
        m.update({f"k{i}": i for i in range(100)})
        m.clear()
        assert m == {}
        assert read_bytes(path).count(b"\nD m:") == 100
    with persist.Store(path) as store:
        assert store.map("m", int).copy() == {}


def test_update_dict_forms(store: persist.Store) -> None:
    """update(mapping), update(pairs), update(**kw): set's durability; update(key,
    fn) stays the atomic form."""
    m = store.map("m", int)
    m.update({"a": 1})
    m.update([("b", 2)], c=3)
    m.update(d=4)
    assert m.update("a", lambda u: u.set(u.value + 10)) == (11, True)
    assert m.update("e", fn=lambda u: u.set(5)) == (5, True)
    assert m.copy() == {"a": 11, "b": 2, "c": 3, "d": 4, "e": 5}
    assert type(m.copy()) is dict
    assert live_of(store) == {"m:a": 11, "m:b": 2, "m:c": 3, "m:d": 4, "m:e": 5}
    with pytest.raises(TypeError):
        m.update("a")
    with pytest.raises(TypeError):
        m.update({"a": 1}, {"b": 2})
    with pytest.raises(TypeError):  # wrong value type: nothing stored
        m.update({"z": "not an int"})
    assert "z" not in m


def live_of(store: persist.Store) -> dict[str, object]:
    return live_records(read_bytes(store.path))


def test_equality(store: persist.Store) -> None:
    a, b = store.map("a", int), store.map("b", int)
    a["k"] = b["k"] = 1
    assert a == b == {"k": 1}
    assert a != {"k": 2}
    assert a != [("k", 1)]
    b["j"] = 2
    assert a != b


@attrs.frozen
class Counter:
    n: int


def test_setdefault_is_atomic_across_threads(
    tmp_path: Path, fast_thread_switching: None
) -> None:
    """Eight threads race setdefault on one key, with the background sync and
    auto-shrink running: one value wins, all see it, one record of it."""
    store = open_fast(tmp_path / "race.db", auto_shrink=True)
    m = store.map("m", Counter)
    seen: list[Counter] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def race(n: int) -> None:
        barrier.wait()
        value = m.setdefault("k", Counter(n))
        with lock:
            seen.append(value)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(seen) == 8 and len(set(seen)) == 1
    assert seen[0] == m["k"]
    store.close()
    assert read_bytes(tmp_path / "race.db").count(b"S m:k\n") == 1
