"""Bulk reads and the cyclic GC: reading every value of a loaded file runs no
collection, and leaves the user's GC settings (enabled, thresholds, frozen
objects) exactly as they were, also after a DecodeError and from two threads."""

import gc
import weakref
from collections.abc import Iterator

import pytest
from conftest import HEADER, User, run_python, run_threads, set_record, user_json

import persist

COUNT = 5_000  # a few thousand decoded objects: several young collections' worth


def user(i: int) -> User:
    return User(f"name {i}", f"{i}@example.com", i % 90)


def write_users(path, count: int = COUNT, bad_line_at: int | None = None) -> None:
    """A file of ``count`` users; record ``bad_line_at`` holds invalid JSON."""
    out = [HEADER]
    for i in range(count):
        u = user(i)
        value = "{not json" if i == bad_line_at else user_json(u.name, u.email, u.age)
        out.append(set_record(f"users:k{i}", value))
    path.write_bytes(b"".join(out))


@pytest.fixture
def loaded(db_path) -> Iterator[persist.PersistMap]:
    """The users map of a store opened on a file of COUNT users, none decoded."""
    write_users(db_path)
    with persist.Store(db_path) as store:
        yield store.map("users", User)


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations of the collections that start while the test runs."""
    started: list[int] = []

    def note(phase: str, info: dict) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.callbacks.append(note)
    try:
        yield started
    finally:
        gc.callbacks.remove(note)


@pytest.fixture
def gc_disabled() -> Iterator[None]:
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def gc_settings() -> tuple:
    return gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()


def expected_items(count: int = COUNT) -> dict[str, User]:
    return {f"k{i}": user(i) for i in range(count)}


@pytest.mark.parametrize("read", ["values", "items", "range"])
def test_bulk_read_of_a_loaded_file_runs_no_collection(loaded, collections, read):
    """Decoding thousands of raw values starts no GC collection at all."""
    expected = expected_items()
    seen: dict = {}
    gc.collect()
    collections.clear()
    if read == "values":
        values = loaded.values()
    elif read == "items":
        items = loaded.items()
    else:
        loaded.range(lambda k, v: seen.__setitem__(k, v))
    started = list(collections)
    if read == "values":
        assert sorted(values, key=lambda u: u.name) == sorted(
            expected.values(), key=lambda u: u.name
        )
    elif read == "items":
        assert dict(items) == expected
    else:
        assert seen == expected
    assert started == []
    assert gc_settings() == (True, gc.get_threshold(), 0)


FRESH_INTERPRETER_READ = """
import gc, sys
import attrs, persist

@attrs.define
class User:
    name: str
    email: str
    age: int

started = []
gc.callbacks.append(
    lambda phase, info: phase == "start" and started.append(info["generation"])
)
with persist.Store(sys.argv[1]) as store:
    users = store.map("users", User)
    gc.collect()
    started.clear()
    count = len(users.values())
print(count, started, gc.get_freeze_count())
"""


def test_bulk_read_in_a_fresh_interpreter_runs_no_collection(db_path):
    """The first bulk read of a new interpreter too: Python 3.12 starts with a few
    hundred objects of its own frozen, which are not taken for the user's."""
    write_users(db_path)
    child = run_python(FRESH_INTERPRETER_READ, str(db_path))
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == [str(COUNT), "[]", "0"]


def test_bulk_read_keeps_the_gc_enabled_and_its_thresholds(loaded):
    thresholds = gc.get_threshold()
    loaded.values()
    assert gc_settings() == (True, thresholds, 0)


def test_bulk_read_keeps_a_disabled_gc_disabled(loaded, gc_disabled):
    assert dict(loaded.items()) == expected_items()
    assert gc.isenabled() is False


def test_decoded_values_stay_in_the_map(loaded):
    """A bulk read installs what it decoded: a later get returns the same object."""
    values = {id(v) for v in loaded.values()}
    assert all(id(loaded.get(f"k{i}")) in values for i in range(0, COUNT, 97))


@pytest.mark.parametrize("registered", ["before open", "after open"])
def test_opening_a_large_file_runs_no_collection(db_path, collections, registered):
    """Loaded values stay raw and untracked by the GC: open walks nothing,
    and neither does registering the map after open (it adopts the raws)."""
    write_users(db_path, 20_000)
    store = persist.Store()
    if registered == "before open":
        users = store.map("users", User)
    gc.collect()
    collections.clear()
    store.open(db_path)
    if registered == "after open":
        users = store.map("users", User)
    started = list(collections)
    assert len(users) == 20_000
    store.close()
    assert started == []


@pytest.mark.parametrize("enabled", [True, False])
def test_decode_error_midway_leaves_the_gc_as_it_was(db_path, enabled):
    write_users(db_path, COUNT, bad_line_at=COUNT // 2)
    thresholds = gc.get_threshold()
    if not enabled:
        gc.disable()
    try:
        with persist.Store(db_path) as store:
            users = store.map("users", User)
            with pytest.raises(persist.DecodeError, match=f"k{COUNT // 2}"):
                users.values()
            assert gc_settings() == (enabled, thresholds, 0)
            with pytest.raises(persist.DecodeError):
                users.items()
            assert gc_settings() == (enabled, thresholds, 0)
    finally:
        gc.enable()


@pytest.mark.parametrize("enabled", [True, False])
def test_two_threads_reading_at_once_leave_the_gc_as_it_was(db_path, enabled):
    """Real threads, each reading a fresh store's map in full, at once."""
    thresholds = gc.get_threshold()
    write_users(db_path)
    if not enabled:
        gc.disable()
    try:
        with persist.Store(db_path) as store:
            users = store.map("users", User)
            results = run_threads(
                *[lambda: dict(users.items()) for _ in range(2)],
                *[lambda: len(users.values()) for _ in range(2)],
            )
            assert results == [expected_items()] * 2 + [COUNT] * 2
            assert gc_settings() == (enabled, thresholds, 0)
    finally:
        gc.enable()


def test_objects_the_user_froze_stay_frozen(loaded):
    """With frozen objects around the bulk read leaves the generations alone
    (a few frozen objects may die meanwhile; an unfreeze would leave none)."""
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 1000
        assert dict(loaded.items()) == expected_items()
        assert gc.get_freeze_count() > frozen // 2
    finally:
        gc.unfreeze()


def test_garbage_made_before_a_bulk_read_is_still_collected(loaded):
    """Moving young objects on does not lose them: a cycle made just before
    the read is freed by the next full collection."""

    class Node:
        pass

    node = Node()
    node.self = node
    gone = weakref.ref(node)
    del node
    loaded.values()
    gc.collect()
    assert gone() is None
