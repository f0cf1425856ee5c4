"""Thread safety, modelled on go-persist's own map tests: concurrent writers,
atomic updates, shrink under load, consistent iteration, group commit."""

import threading

import pytest
from conftest import User, live_records, read_bytes, run_threads

import persist

pytestmark = pytest.mark.usefixtures("fast_thread_switching")


def reopened(db_path, name, value_type) -> dict:
    """A map's contents after a fresh open of the file."""
    with persist.Store(db_path) as store:
        return dict(store.map(name, value_type).items())


def test_random_set_delete_then_frozen_state(db_path, rng):
    """20 threads doing random writes on 10 shared keys: memory equals the
    file after close+reopen, both before and after freezing the final state,
    and again after shrink+reopen."""
    seeds = [rng.randrange(2**32) for _ in range(20)]
    keys = [f"key{i}" for i in range(10)]

    with persist.Store(db_path) as store:
        store.sync_interval = 0.01
        m = store.map("complex", int)

        def worker(tid: int) -> None:
            r = type(rng)(seeds[tid])
            for j in range(300):
                key = r.choice(keys)
                op = r.randrange(6)
                if op == 0:
                    m.set(key, tid * 1000 + j)
                elif op == 1:
                    m.set_async(key, tid * 1000 + j)
                elif op == 2:
                    m.set_fsync(key, tid * 1000 + j)
                elif op == 3:
                    m.delete(key)
                elif op == 4:
                    m.delete_async(key)
                else:
                    m.update(key, lambda u, v=tid * 1000 + j: u.set(v))

        run_threads(*(lambda t=t: worker(t) for t in range(20)))
        unfrozen = dict(m.items())
    # whatever order the threads ran in, the file must agree with memory
    assert reopened(db_path, "complex", int) == unfrozen

    with persist.Store(db_path) as store:
        m = store.map("complex", int)
        for i, key in enumerate(keys):
            if i % 2 == 0:
                m.set(key, i)
            else:
                m.delete(key)
        frozen = {key: i for i, key in enumerate(keys) if i % 2 == 0}
        assert dict(m.items()) == frozen
    assert reopened(db_path, "complex", int) == frozen

    with persist.Store(db_path) as store:
        store.shrink()
        assert store.stats() == persist.Stats(active_keys=5, wal_records=5)
    assert reopened(db_path, "complex", int) == frozen


def test_concurrent_update_counters(db_path, rng):
    """N threads x M increments through update/update_async/update_fsync give
    exact totals in memory and after reopen."""
    n_threads, n_incr = 8, 300
    keys = [f"counter{i}" for i in range(5)]
    seeds = [rng.randrange(2**32) for _ in range(n_threads)]
    expected = dict.fromkeys(keys, 0)
    lock = threading.Lock()

    def incr(upd):
        upd.value = (upd.value or 0) + 1

    with persist.Store(db_path) as store:
        store.sync_interval = 0.01
        m = store.map("counters", int)
        ops = [m.update, m.update_async, m.update_fsync]

        def worker(tid: int) -> None:
            r = type(rng)(seeds[tid])
            mine = dict.fromkeys(keys, 0)
            for _ in range(n_incr):
                key = r.choice(keys)
                r.choice(ops)(key, incr)
                mine[key] += 1
            with lock:
                for k, v in mine.items():
                    expected[k] += v

        run_threads(*(lambda t=t: worker(t) for t in range(n_threads)))
        expected = {k: v for k, v in expected.items() if v}
        assert dict(m.items()) == expected
        assert sum(expected.values()) == n_threads * n_incr
    assert reopened(db_path, "counters", int) == expected


def test_update_atomic_against_set_and_delete(db_path):
    """update is atomic against set and delete of the same key: an increment
    is never lost between its read and its write."""
    n = 1000
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        m.set("k", 0)
        done = threading.Event()

        def incr(upd):
            upd.value = (upd.value or 0) + 1

        def updater() -> None:
            try:
                for _ in range(n):
                    m.update("k", incr)
            finally:
                done.set()

        def other_keys() -> None:
            i = 0
            while not done.is_set():
                m.set(f"x{i % 7}", i)
                m.delete(f"x{(i + 3) % 7}")
                i += 1

        run_threads(updater, updater, other_keys)
        assert m["k"] == 2 * n
    assert reopened(db_path, "m", int)["k"] == 2 * n


def test_shrink_while_writing(db_path, rng):
    """shrink runs while 4 threads write; the final state is exact in memory
    and after reopen."""
    seeds = [rng.randrange(2**32) for _ in range(4)]
    expected: dict[str, int] = {}
    lock = threading.Lock()
    shrinks = 0

    with persist.Store(db_path) as store:
        store.sync_interval = 0.01
        m = store.map("m", int)
        writers_done = threading.Event()

        def writer(tid: int) -> None:
            # each writer owns its keys, so the final state is known exactly
            r = type(rng)(seeds[tid])
            mine: dict[str, int] = {}
            for j in range(1500):
                key = f"t{tid}-{r.randrange(30)}"
                op = r.randrange(5)
                if op < 2:
                    m.set(key, j)
                    mine[key] = j
                elif op == 2:
                    m.set_async(key, j)
                    mine[key] = j
                elif op == 3:
                    assert m.delete(key) is (key in mine)
                    mine.pop(key, None)
                else:
                    m.delete_async(key)
                    mine.pop(key, None)
            with lock:
                expected.update(mine)

        def shrinker() -> None:
            nonlocal shrinks
            while not writers_done.is_set() or shrinks < 3:
                store.shrink()
                shrinks += 1

        def writers() -> None:
            try:
                run_threads(*(lambda t=t: writer(t) for t in range(4)))
            finally:
                writers_done.set()

        run_threads(writers, shrinker)
        assert shrinks >= 3
        assert dict(m.items()) == expected
    assert reopened(db_path, "m", int) == expected
    with persist.Store(db_path) as store:
        assert store.stats().active_keys == len(expected)


def test_iteration_while_writing(db_path):
    """keys() and items() taken while writers run list every key present
    throughout exactly once."""
    stable = {f"s{i}" for i in range(50)}
    with persist.Store(db_path) as store:
        store.sync_interval = 0.01
        m = store.map("m", int)
        for key in stable:
            m.set(key, 0)
        stop = threading.Event()

        def writer(tid: int) -> None:
            i = 0
            while not stop.is_set():
                m.set_async(f"t{tid}-{i % 40}", i)
                m.delete(f"t{tid}-{(i + 20) % 40}")
                m.set(f"s{i % 50}", i)  # overwritten, never deleted
                i += 1

        def reader() -> None:
            try:
                for _ in range(400):
                    keys = m.keys()
                    assert len(keys) == len(set(keys))
                    assert stable <= set(keys)
                    items = m.items()
                    item_keys = [k for k, _ in items]
                    assert len(item_keys) == len(set(item_keys))
                    assert stable <= set(item_keys)
                    seen: list[str] = []
                    m.range(lambda k, v, seen=seen: seen.append(k))
                    assert len(seen) == len(set(seen))
                    assert stable <= set(seen)
            finally:
                stop.set()

        run_threads(reader, reader, *(lambda t=t: writer(t) for t in range(3)))


def test_readers_never_see_torn_values(db_path):
    """Readers running alongside set and update writers only ever see whole,
    self-consistent values."""
    keys = [f"k{i}" for i in range(8)]

    def consistent(u: User) -> bool:
        return u.name == f"n{u.age}" and u.email == f"n{u.age}@x"

    with persist.Store(db_path) as store:
        store.sync_interval = 0.01
        m = store.map("users", User)
        for key in keys:
            m.set(key, User("n0", "n0@x", 0))
        stop = threading.Event()
        bad: list = []

        def bump(upd):
            # mutate the copy field by field: a reader must never see it halfway
            age = upd.value.age + 1
            upd.value.age = age
            upd.value.name = f"n{age}"
            upd.value.email = f"n{age}@x"

        def updater() -> None:
            i = 0
            while not stop.is_set():
                m.update(keys[i % len(keys)], bump)
                i += 1

        def setter() -> None:
            i = 0
            while not stop.is_set():
                age = 10_000 + i
                m.set_async(keys[i % len(keys)], User(f"n{age}", f"n{age}@x", age))
                i += 1

        def reader() -> None:
            try:
                for _ in range(10_000):
                    for key in keys:
                        u = m.get(key)
                        if u is None or not consistent(u):
                            bad.append(u)
                    bad.extend(u for u in m.values() if not consistent(u))
            finally:
                stop.set()

        run_threads(reader, reader, updater, updater, setter)
        assert bad == []
        final = dict(m.items())
    assert reopened(db_path, "users", User) == final


def test_set_fsync_from_many_threads(db_path):
    """set_fsync from several threads at once: every record is in the file
    when its call returns, and all survive a reopen."""
    n_threads, per_thread = 8, 50

    with persist.Store(db_path) as store:
        m = store.map("m", int)
        missing: list = []

        def worker(tid: int) -> None:
            for j in range(per_thread):
                key = f"t{tid}-{j}"
                m.set_fsync(key, j)
                if f"S m:{key}\n{j}\n".encode() not in read_bytes(db_path):
                    missing.append(key)

        run_threads(*(lambda t=t: worker(t) for t in range(n_threads)))
        assert missing == []
        expected = {
            f"m:t{t}-{j}": j for t in range(n_threads) for j in range(per_thread)
        }
        assert live_records(read_bytes(db_path)) == expected
        assert store.stats() == persist.Stats(
            active_keys=n_threads * per_thread, wal_records=n_threads * per_thread
        )
    assert reopened(db_path, "m", int) == {
        f"t{t}-{j}": j for t in range(n_threads) for j in range(per_thread)
    }


@pytest.mark.parametrize("n_maps", [1, 4])
def test_concurrent_writers_on_several_maps(db_path, n_maps):
    """Threads writing different maps of one store interleave whole records."""
    with persist.Store(db_path) as store:
        maps = [store.map(f"m{i}", str) for i in range(n_maps)]

        def worker(tid: int) -> None:
            m = maps[tid % n_maps]
            for j in range(100):
                m.set(f"t{tid}-{j % 10}", f"v{tid}-{j}" * (1 + j % 5))

        run_threads(*(lambda t=t: worker(t) for t in range(6)))
        state = {f"{m.name}:{k}": v for m in maps for k, v in m.items()}
        assert live_records(read_bytes(db_path)) == state
        assert len(state) == 60
