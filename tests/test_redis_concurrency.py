"""Threads and processes on one Redis namespace: atomic update across
processes, read-your-writes under a 1 ms background sync, and async changes
reaching the server before a later synchronous write."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
import redis
from conftest import run_threads
from redis_helpers import Stores

from persist import Update
from persist.redis import RedisStore, UpdateConflictError

INCREMENTS = 150


def increment_many(url: str, n: int) -> None:
    """Child process: add 1 to the counter n times through update."""
    with RedisStore(url, "procs") as store:
        m = store.map("counters", int)
        for _ in range(n):
            m.update("c", lambda u: u.set((u.value or 0) + 1))


def test_update_across_processes_loses_no_increment(
    redis_url: str, raw: redis.Redis
) -> None:
    """Four spawned processes each increment one counter 150 times."""
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=increment_many, args=(redis_url, INCREMENTS))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert raw.hget(b"procs:counters", b"c") == b"%d" % (4 * INCREMENTS)


def test_update_across_threads_and_stores_loses_no_increment(
    stores: Stores, raw: redis.Redis, fast_thread_switching: None
) -> None:
    maps = [stores().map("m", int) for _ in range(2)]

    def work(n: int) -> None:
        for _ in range(100):
            maps[n % 2].update("c", lambda u: u.set((u.value or 0) + 1))

    run_threads(*(lambda n=n: work(n) for n in range(6)))
    assert raw.hget(b"persist:m", b"c") == b"600"
    assert maps[0]["c"] == maps[1]["c"] == 600


def test_read_your_writes_under_a_racing_background_sync(
    stores: Stores, fast_thread_switching: None
) -> None:
    """Each thread reads back its own async changes (and deletes) at once,
    while the 1 ms background sync sends and invalidates around it."""
    m = stores().map("m", int)
    bad: list[tuple[str, int, object]] = []

    def work(n: int) -> None:
        key = f"k{n}"
        for i in range(300):
            m.set_async(key, i)
            if (got := m.get(key)) != i:
                bad.append((key, i, got))
            if i % 7 == 0:
                m.delete_async(key)
                if key in m:
                    bad.append((key, i, "present after delete_async"))
            if i % 11 == 0:
                m.set(key, -i)
                if (got := m.get(key)) != -i:
                    bad.append((key, -i, got))

    run_threads(*(lambda n=n: work(n) for n in range(4)))
    assert bad == []


def test_async_changes_reach_the_server_before_a_later_sync_write(
    stores: Stores, raw: redis.Redis, fast_thread_switching: None
) -> None:
    """Once set("b") returns, the server holds every async change the same
    thread made before it (of another map too)."""
    store = stores(sync_interval=0.001)
    a, b = store.map("a", int), store.map("b", int)
    seen_late: list[tuple[int, int, bytes | None]] = []

    def work(n: int) -> None:
        for i in range(200):
            a.set_async(f"t{n}", i)
            b.set(f"t{n}", i)
            on_server = raw.hget(b"persist:a", f"t{n}".encode())
            if on_server != b"%d" % i:
                seen_late.append((n, i, on_server))

    run_threads(*(lambda n=n: work(n) for n in range(4)))
    assert seen_late == []


def test_group_commit_many_writers(
    stores: Stores, raw: redis.Redis, fast_thread_switching: None
) -> None:
    """Eight threads set, set_fsync and delete concurrently; the server ends
    with exactly what each thread wrote last."""
    m = stores().map("m", int)
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(100):
            (m.set_fsync if i % 3 == 0 else m.set)(f"k{n}-{i % 10}", i)
        assert m.delete(f"k{n}-0") is True

    run_threads(*(lambda n=n: work(n) for n in range(8)))
    expected = {
        f"k{n}-{j}".encode(): b"%d" % (90 + j) for n in range(8) for j in range(1, 10)
    }
    assert raw.hgetall(b"persist:m") == expected


def test_update_runs_fn_again_after_a_conflict(
    stores: Stores, raw: redis.Redis
) -> None:
    """Another client changes the key while fn runs: the compare-and-set
    fails, fn runs again on the new value, and the result builds on it."""
    m = stores().map("m", int)
    m.set("c", 1)
    calls: list[int | None] = []

    def add_ten(u: Update[int]) -> None:
        calls.append(u.value)
        if len(calls) == 1:
            raw.hset(b"persist:m", b"c", b"5")  # a concurrent writer
        u.set((u.value or 0) + 10)

    assert m.update("c", add_ten) == (15, True)
    assert calls == [1, 5]
    assert raw.hget(b"persist:m", b"c") == b"15"


def test_update_gives_up_after_update_attempts(
    stores: Stores, raw: redis.Redis
) -> None:
    """Every attempt loses: UpdateConflictError after update_attempts, and
    only the other writer's values are stored."""
    m = stores(update_attempts=3).map("m", int)
    calls: list[int] = []

    def always_overtaken(u: Update[int]) -> None:
        calls.append(1)
        raw.hset(b"persist:m", b"c", b"%d" % len(calls))
        u.set(100)

    with pytest.raises(UpdateConflictError, match="map 'm', key 'c'"):
        m.update("c", always_overtaken)
    assert len(calls) == 3
    assert raw.hget(b"persist:m", b"c") == b"3"
