"""The local read cache: values read are kept in the process and dropped by
the server's invalidation messages (client tracking, broadcast mode)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import attrs
import redis
from conftest import run_threads, wait_until
from redis_helpers import Stores

import persist
from persist.redis import RedisMap, RedisStore


@attrs.frozen
class Box:
    n: int


def tracking(store: RedisStore) -> None:
    wait_until(lambda: store.tracking_client_id is not None, what="tracking on")


def cached(m: object, key: str) -> bool:
    """Two gets return the very same object: the second came from the cache."""
    return m.get(key) is m.get(key)  # type: ignore[attr-defined]


def test_a_write_by_another_store_is_seen_soon(stores: Stores) -> None:
    first, second = stores(), stores()
    tracking(first)
    a, b = first.map("m", Box), second.map("m", Box)
    b.set("k", Box(1))
    wait_until(lambda: a.get("k") == Box(1) and cached(a, "k"), what="cached")
    b.set("k", Box(2))
    wait_until(lambda: a.get("k") == Box(2), what="the other store's write")
    b.delete("k")
    wait_until(lambda: a.get("k") is None, what="the other store's delete")


def test_a_write_by_another_client_is_seen_soon(
    stores: Stores, raw: redis.Redis
) -> None:
    store = stores("ns")
    tracking(store)
    m = store.map("m", int)
    raw.hset(b"ns:m", b"k", b"1")
    wait_until(lambda: m.get("k") == 1 and cached(m, "k"), what="cached")
    raw.hset(b"ns:m", b"k", b"2")
    wait_until(lambda: m.get("k") == 2, what="the invalidation")
    raw.flushall()
    wait_until(lambda: m.get("k") is None, what="FLUSHALL's invalidation")


def test_other_namespaces_and_maps_do_not_invalidate(
    stores: Stores, raw: redis.Redis
) -> None:
    """An invalidation is per hash: writes elsewhere keep this map's cache."""
    store = stores("ns")
    tracking(store)
    m, flag = store.map("m", int), store.map("flag", int)
    raw.hset(b"ns:m", b"k", b"1")
    raw.hset(b"ns:flag", b"f", b"0")
    wait_until(lambda: cached(m, "k") and cached(flag, "f"), what="cached")
    first = m.get("k")
    raw.hset(b"other:m", b"k", b"5")
    raw.hset(b"ns:other", b"k", b"5")
    raw.hset(b"ns:flag", b"f", b"1")  # its invalidation comes after theirs
    wait_until(lambda: flag.get("f") == 1, what="the flag's invalidation")
    assert m.get("k") is first


def test_killed_tracking_connection_drops_the_cache_until_it_is_back(
    stores: Stores, raw: redis.Redis
) -> None:
    """CLIENT KILL of the invalidation connection: a write made while it is
    gone (no invalidation is ever sent for it) is still seen, because the
    cache was dropped; tracking comes back on a new connection and caching
    resumes."""
    store = stores()
    tracking(store)
    m = store.map("m", int)
    m.set("k", 1)
    wait_until(lambda: cached(m, "k"), what="cached")
    old_id = store.tracking_client_id
    raw.execute_command("CLIENT", "KILL", "ID", old_id)
    raw.hset(b"persist:m", b"k", b"2")  # nobody tracks: no invalidation
    wait_until(lambda: m.get("k") == 2, what="the write made while untracked")
    wait_until(
        lambda: store.tracking_client_id not in (None, old_id), what="tracking back"
    )
    raw.hset(b"persist:m", b"k", b"3")
    wait_until(lambda: m.get("k") == 3 and cached(m, "k"), what="caching again")


def test_killed_write_connection_drops_the_cache_until_it_is_back(
    stores: Stores, raw: redis.Redis
) -> None:
    """CLIENT KILL of the write connection (the one whose tracking sends the
    invalidations, flag t): a write made while it is gone is still seen,
    and caching resumes once tracking is redirected again."""
    store = stores()
    tracking(store)
    m = store.map("m", int)
    raw.hset(b"persist:m", b"k", b"1")
    wait_until(lambda: m.get("k") == 1 and cached(m, "k"), what="cached")
    [writer] = [c for c in raw.client_list() if "t" in c["flags"]]
    raw.execute_command("CLIENT", "KILL", "ID", writer["id"])
    raw.hset(b"persist:m", b"k", b"2")  # nobody tracks: no invalidation
    wait_until(lambda: m.get("k") == 2, what="the write made while untracked")
    wait_until(
        lambda: any("t" in c["flags"] for c in raw.client_list()),
        what="tracking redirected again",
    )
    raw.hset(b"persist:m", b"k", b"3")
    wait_until(lambda: m.get("k") == 3 and cached(m, "k"), what="caching again")
    m.set("k", 4)  # the new write connection works
    assert raw.hget(b"persist:m", b"k") == b"4"


def server_reads(raw: redis.Redis) -> int:
    """How many HGET/HEXISTS clients have sent so far (the CAS script's own
    HGET, one per EVALSHA, left out)."""
    stats = raw.info("commandstats")

    def calls(command: str) -> int:
        return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))

    return calls("hget") + calls("hexists") - calls("evalsha")


def test_own_writes_are_not_announced_and_keep_the_cache(
    stores: Stores, raw: redis.Redis
) -> None:
    """Our writes go unannounced (NOLOOP): each leaves the written value in
    the view and the rest of the map's cache alone, so reads after our own
    writes (set, delete, set_async + sync) ask the server nothing."""
    store = stores()  # background batches every 1 ms, racing these writes
    tracking(store)
    m, flag = store.map("m", int), store.map("flag", int)
    raw.hset(b"persist:flag", b"f", b"0")
    wait_until(lambda: cached(flag, "f"), what="the flag cached")
    raw.hset(b"persist:m", mapping={b"other": b"7", b"gone": b"1"})
    raw.hset(b"persist:flag", b"f", b"1")  # its invalidation comes after m's
    wait_until(lambda: flag.get("f") == 1, what="m's invalidation processed")
    assert m.get("other") == 7 and m.get("gone") == 1  # now cached
    before = server_reads(raw)
    for i in range(20):
        m.set("k", i)
        assert m.get("k") == i
    assert m.delete("gone") is True
    assert m.get("gone") is None and "gone" not in m
    m.set_async("a", 5)
    assert m.delete_async("k") is True
    store.sync()
    assert (m.get("k"), m.get("a"), m.get("other")) == (None, 5, 7)
    assert "k" not in m and "a" in m
    assert server_reads(raw) == before
    assert raw.hgetall(b"persist:m") == {b"other": b"7", b"a": b"5"}
    # update's compare-and-set runs in a script, whose write Redis 7.0
    # announces even to this connection: the map's cache is dropped, the
    # values stay right
    assert m.update("a", lambda u: u.set(6)) == (6, True)
    assert (m.get("a"), m.get("other")) == (6, 7)


def test_a_read_begun_before_our_write_does_not_cache_the_old_value(
    stores: Stores, raw: redis.Redis
) -> None:
    """A get has the old value from the server but is held before caching
    it; meanwhile this process writes the key (unannounced: no invalidation
    comes). The held get returns the old value; the cache keeps the new one."""
    held = HeldDecode()
    store = stores()  # background batches every 1 ms, racing these writes
    tracking(store)
    m = store.map("m", Slow)

    def race(write: Callable[[], object]) -> None:
        raw.hset(b"persist:m", b"k", b"1")
        m._invalidate()  # nothing cached: the next get reads the server
        reader, got = held.get(m, "k")
        write()
        held.finish(reader)
        assert got == [Slow(1)]
        assert m.get("k") == Slow(2)
        assert raw.hget(b"persist:m", b"k") == b"2"

    race(lambda: m.set("k", Slow(2)))
    race(lambda: (m.set_async("k", Slow(2)), store.sync()))
    race(lambda: m.update("k", lambda u: u.set(Slow(2))))


def test_without_the_local_cache_every_read_asks_the_server(
    stores: Stores, raw: redis.Redis
) -> None:
    store = stores(local_cache=False)
    assert store.tracking_client_id is None
    m = store.map("m", int)
    m.set("k", 1)
    assert m.get("k") == 1
    raw.hset(b"persist:m", b"k", b"2")
    assert m.get("k") == 2  # at once, no invalidation needed
    raw.hdel(b"persist:m", b"k")
    assert "k" not in m


def test_readers_racing_invalidations_end_on_the_last_write(
    stores: Stores, fast_thread_switching: None
) -> None:
    """Four threads read a key in a loop (fetching and caching) while another
    store writes it 300 times: once the writes stop, every reader converges
    on the last value (a value fetched while its invalidation arrived is never
    cached, so no stale value stays)."""
    reader_store, writer_store = stores(), stores()
    tracking(reader_store)
    r, w = reader_store.map("m", int), writer_store.map("m", int)
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            r.get("k")
        wait_until(lambda: r.get("k") == 299, what="the last write")

    def write() -> None:
        try:
            for i in range(300):
                w.set("k", i)
        finally:
            done.set()

    run_threads(*(read for _ in range(4)), write)
    assert cached(r, "k") and r.get("k") == 299


class Slow:
    """A value whose decode can be held, to stop a read between the server's
    reply and the cache."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Slow) and other.n == self.n

    __hash__ = None  # type: ignore[assignment]


class HeldDecode:
    """Slow's codec, whose decode can be held: a get stopped between the
    server's reply and the cache, while the test makes something happen."""

    def __init__(self) -> None:
        self.hold, self.inside, self.release = (threading.Event() for _ in range(3))
        persist.register_codec(Slow, lambda v: b"%d" % v.n, self.decode)

    def decode(self, data: bytes) -> Slow:
        if self.hold.is_set():
            self.inside.set()
            self.release.wait(10)
        return Slow(int(data))

    def get(
        self, m: RedisMap[Slow], key: str
    ) -> tuple[threading.Thread, list[Slow | None]]:
        """Start ``m.get(key)`` in a thread; return once it is held (its
        result lands in the list; later decodes are not held)."""
        got: list[Slow | None] = []
        self.hold.set()
        reader = threading.Thread(target=lambda: got.append(m.get(key)))
        reader.start()
        assert self.inside.wait(10)
        self.hold.clear()
        return reader, got

    def finish(self, reader: threading.Thread) -> None:
        """Let the held get go on, and wait for it."""
        self.release.set()
        reader.join(10)
        self.inside.clear()
        self.release.clear()


def test_a_value_fetched_while_its_invalidation_arrived_is_not_cached(
    stores: Stores, raw: redis.Redis
) -> None:
    """A get has the old value from the server but is held before caching
    it; meanwhile another client writes and the invalidation is processed.
    That get returns the old value, but does not cache it: the next get
    reads the new one."""
    held = HeldDecode()
    store = stores()
    tracking(store)
    m, flag = store.map("m", Slow), store.map("flag", int)
    raw.hset(b"persist:m", b"k", b"1")
    raw.hset(b"persist:flag", b"f", b"0")
    wait_until(lambda: cached(flag, "f"), what="the flag cached")
    reader, got = held.get(m, "k")
    raw.hset(b"persist:m", b"k", b"2")
    raw.hset(b"persist:flag", b"f", b"1")  # its invalidation comes after k's
    wait_until(lambda: flag.get("f") == 1, what="k's invalidation processed")
    held.finish(reader)
    assert got == [Slow(1)]
    assert m.get("k") == Slow(2)
