"""Durability and failures on a real server: set_fsync on servers that can
and cannot promise an fsync, SIGKILL of the server, connections killed
mid-call, a failed background batch, close while writers run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from conftest import run_threads, wait_until
from redis_helpers import Stores
from redis_server import RedisServer

import persist
from persist.redis import FsyncUnavailableError, RedisConnectionError, RedisStore


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test only (AOF on, appendfsync always)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def start(tmp_path: Path, **config: str) -> RedisServer:
    server = RedisServer(tmp_path / "redis", **config)
    server.start()
    return server


def test_set_fsync_refused_on_an_everysec_server(tmp_path: Path) -> None:
    """appendfsync everysec (Redis 7.0 has no WAITAOF): every *_fsync call
    raises FsyncUnavailableError naming the setting, and writes nothing."""
    server = start(tmp_path, appendfsync="everysec")
    try:
        with RedisStore(server.url, sync_interval=3600) as store:
            m = store.map("m", int)
            m.set("k", 1)
            with pytest.raises(FsyncUnavailableError, match="appendfsync=everysec"):
                m.set_fsync("k", 2)
            with pytest.raises(FsyncUnavailableError, match="appendfsync always"):
                m.delete_fsync("k")
            with pytest.raises(FsyncUnavailableError):
                m.update_fsync("k", lambda u: u.set(3))
            with pytest.raises(FsyncUnavailableError):
                store.fsync_all()
            raw = redis.Redis.from_url(server.url)
            assert raw.hgetall(b"persist:m") == {b"k": b"1"}  # nothing more
            raw.close()
    finally:
        server.stop()


def test_set_fsync_refused_on_an_aof_off_server(tmp_path: Path) -> None:
    server = start(tmp_path, appendonly="no")
    try:
        with (
            RedisStore(server.url) as store,
            pytest.raises(FsyncUnavailableError, match="appendonly=no"),
        ):
            store.map("m", int).set_fsync("k", 1)
    finally:
        server.stop()


def test_set_fsync_refused_when_config_is_disabled(tmp_path: Path) -> None:
    """CONFIG forbidden by ACL: the error says the setting could not be checked."""
    server = start(tmp_path)
    assert server.command("ACL", "SETUSER", "default", "-config") == b"+OK"
    try:
        with RedisStore(server.url) as store:
            m = store.map("m", int)
            with pytest.raises(FsyncUnavailableError, match="could not be checked"):
                m.set_fsync("k", 1)
            assert "k" not in m
    finally:
        server.stop()


def test_fsynced_writes_survive_a_sigkill_of_the_server(
    own_server: RedisServer,
) -> None:
    """set_fsync / delete_fsync / update_fsync acknowledged, then SIGKILL
    (no shutdown, no final fsync): all there after the restart."""
    store = RedisStore(own_server.url)
    m = store.map("m", int)
    for i in range(50):
        m.set_fsync(f"k{i}", i)
    assert m.delete_fsync("k0") is True
    assert m.update_fsync("k1", lambda u: u.set(100)) == (100, True)
    store.fsync_all()
    own_server.kill()
    own_server.start()
    try:
        assert m.get("k1") == 100  # the same store reconnects
        with RedisStore(own_server.url) as fresh:
            assert fresh.map("m", int).copy() == {
                **{f"k{i}": i for i in range(2, 50)},
                "k1": 100,
            }
    finally:
        store.close()


def test_a_stopped_server_is_a_clear_error_then_the_store_reconnects(
    own_server: RedisServer,
) -> None:
    with RedisStore(own_server.url, local_cache=False, timeout=2) as store:
        m = store.map("m", int)
        m.set("a", 1)
        own_server.stop()
        with pytest.raises(RedisConnectionError, match="map 'm', key 'b'"):
            m.set("b", 2)
        with pytest.raises(RedisConnectionError, match="map 'm', key 'a'"):
            m.get("a")
        with pytest.raises(RedisConnectionError):
            m.update("a", lambda u: u.set(5))
        with pytest.raises(ConnectionError):  # also the builtin's subclass
            m.delete("a")
        own_server.start()
        m.set("b", 2)
        assert m.copy() == {"a": 1, "b": 2}


def kill_clients_except(raw: redis.Redis) -> int:
    """CLIENT KILL every connection but ``raw``'s; how many were killed."""
    mine = raw.client_id()
    killed = 0
    for client in raw.client_list():
        if int(client["id"]) != mine:
            raw.execute_command("CLIENT", "KILL", "ID", client["id"])
            killed += 1
    return killed


def test_a_batch_killed_mid_call_applies_nothing(own_server: RedisServer) -> None:
    """Writes paused on the server, a set (whose batch also carries two
    async changes) waits inside its MULTI; its connection is killed: the set raises
    RedisConnectionError naming map and key, nothing of the batch is applied,
    the async changes stay pending and the next sync sends them."""
    raw = redis.Redis.from_url(own_server.url)
    store = RedisStore(own_server.url, sync_interval=3600)
    m = store.map("m", int)
    m.set("before", 0)
    m.set_async("a", 1)
    m.set_async("b", 2)
    raw.execute_command("CLIENT", "PAUSE", 10000, "WRITE")
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            m.set("c", 3)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    wait_until(  # flags x: inside MULTI, b: blocked (by the pause)
        lambda: any({"x", "b"} <= set(c["flags"]) for c in raw.client_list()),
        what="the batch blocked inside its MULTI",
    )
    assert kill_clients_except(raw) >= 1
    thread.join(10)
    assert not thread.is_alive()
    raw.execute_command("CLIENT", "UNPAUSE")
    assert len(errors) == 1 and isinstance(errors[0], RedisConnectionError)
    assert "map 'm', key 'c'" in str(errors[0])
    assert raw.hgetall(b"persist:m") == {b"before": b"0"}
    assert m.get("a") == 1  # still pending, still read here
    m.sync()
    m.set("c", 3)
    assert raw.hgetall(b"persist:m") == {
        b"before": b"0",
        b"a": b"1",
        b"b": b"2",
        b"c": b"3",
    }
    store.close()
    raw.close()


def test_killed_idle_connections_are_replaced(own_server: RedisServer) -> None:
    raw = redis.Redis.from_url(own_server.url)
    with RedisStore(own_server.url) as store:
        m = store.map("m", int)
        m.set("a", 1)
        assert m["a"] == 1
        kill_clients_except(raw)
        m.set("b", 2)
        assert m.update("a", lambda u: u.set(u.value + 1)) == (2, True)
        assert m.copy() == {"a": 2, "b": 2}
    raw.close()


def test_failed_background_batch_is_reported_and_retried(
    own_server: RedisServer,
) -> None:
    """The server goes away: the background sync reports to error_handler
    and keeps the changes (the newest per key); they arrive once it is back."""
    reported: list[BaseException] = []
    store = RedisStore(own_server.url, sync_interval=0.005, timeout=2)
    store.error_handler = reported.append
    m = store.map("m", int)
    own_server.stop()
    m.set_async("a", 1)
    m.set_async("a", 2)
    wait_until(lambda: reported, what="a reported failure")
    assert isinstance(reported[0], RedisConnectionError)
    m.set_async("b", 3)
    own_server.start()
    raw = redis.Redis.from_url(own_server.url)
    wait_until(
        lambda: raw.hgetall(b"persist:m") == {b"a": b"2", b"b": b"3"},
        what="the retried batch",
    )
    store.close()
    raw.close()


def test_error_handler_that_raises_does_not_kill_the_sync_thread(
    own_server: RedisServer,
) -> None:
    store = RedisStore(own_server.url, sync_interval=0.005, timeout=2)
    calls: list[int] = []

    def bad_handler(exc: BaseException) -> None:
        calls.append(1)
        raise RuntimeError("handler bug")

    store.error_handler = bad_handler
    m = store.map("m", int)
    own_server.stop()
    m.set_async("a", 1)
    wait_until(lambda: len(calls) >= 2, what="two reports")
    own_server.start()
    raw = redis.Redis.from_url(own_server.url)
    wait_until(lambda: raw.hget(b"persist:m", b"a") == b"1", what="the retry")
    store.close()
    raw.close()


def test_close_from_another_thread_while_writers_run(
    stores_url: str, fast_thread_switching: None
) -> None:
    """Four writers (sync, async, update) run while another thread closes the
    store: nothing hangs; afterwards every write raises NotOpenError; every
    acknowledged set is on the server."""
    store = RedisStore(stores_url, sync_interval=0.001)
    m = store.map("m", int)
    acked: list[tuple[str, int]] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            key = f"w{n}-{i % 200}"
            try:
                if n == 0:
                    m.set(key, i)
                    acked.append((key, i))
                elif n == 1:
                    m.set_async(key, i)
                else:
                    m.update(f"u{n}", lambda u: u.set((u.value or 0) + 1))
            except persist.NotOpenError:
                return
            i += 1

    def closer() -> None:
        try:
            wait_until(lambda: len(acked) > 20, timeout=30, what="some writes")
            store.close()
        finally:
            stop.set()

    run_threads(*(lambda n=n: writer(n) for n in range(4)), closer, timeout=60)
    with pytest.raises(persist.NotOpenError):
        m.set("x", 1)
    with RedisStore(stores_url) as check:
        on_server = check.map("m", int).copy()
        assert on_server.items() >= dict(acked).items()  # the last of each key


@pytest.fixture
def stores_url(redis_url: str) -> str:
    return redis_url


def test_waitaof_path_framing_on_a_server_without_waitaof(
    stores: Stores, raw: redis.Redis
) -> None:
    """The Redis >= 7.2 path forced on this 7.0 server (which refuses
    WAITAOF): the batch and the WAITAOF after it stay in step on the one
    connection, the write is applied, the fsync is reported unconfirmed,
    and the connection keeps working."""
    store = stores(sync_interval=3600)
    m = store.map("m", int)
    store._fsync.mode = "waitaof"  # what FsyncMode finds on Redis 7.2+
    m.set_async("a", 1)
    with pytest.raises(FsyncUnavailableError, match="WAITAOF could not confirm"):
        m.set_fsync("b", 2)
    with pytest.raises(FsyncUnavailableError, match="WAITAOF"):
        store.fsync_all()
    m.set("c", 3)
    assert raw.hgetall(b"persist:m") == {b"a": b"1", b"b": b"2", b"c": b"3"}
