"""Talking to the server: the client, one batch per round trip, and the
check of what ``*_fsync`` can rely on.

redis-py types some of its API only partly (``**kwargs`` without a type,
iterators of unknown items): each such call is made here once, in a small
helper stating what the server really returns."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, cast

import redis
from redis.client import Pipeline
from redis.exceptions import ConnectionError as _ConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as _TimeoutError

from ..errors import NotOpenError
from .errors import FsyncUnavailableError

__all__ = [
    "CONNECTION_ERRORS",
    "Batch",
    "Connection",
    "FsyncMode",
    "client_from_url",
    "hash_fields",
    "hashes_matching",
    "make_client",
    "new_connection",
    "ping",
    "transaction",
]

# what a lost or refused connection raises inside redis-py
CONNECTION_ERRORS = (_ConnectionError, _TimeoutError, OSError)
WAITAOF_VERSION = (7, 2)

Command = tuple[Any, ...]


class Connection(Protocol):
    """What we use of a redis-py connection (one socket, no pool)."""

    def connect(self) -> None: ...
    def disconnect(self) -> None: ...
    def send_command(self, *args: Any) -> None: ...
    def send_packed_command(self, command: Any, check_health: bool = ...) -> None: ...
    def pack_commands(self, commands: Iterable[Command]) -> Any: ...
    def read_response(self) -> Any: ...
    def can_read(self, timeout: float | None = ...) -> bool: ...


def new_connection(client: redis.Redis) -> Connection:
    """A connection of its own (not taken from the pool), with the pool's
    settings; not connected yet."""
    pool = client.connection_pool
    return cast(Connection, pool.connection_class(**pool.connection_kwargs))


def client_from_url(url: str, **options: object) -> redis.Redis:
    """``redis.Redis.from_url(url, **options)``."""
    return redis.Redis.from_url(url, **options)  # pyright: ignore[reportUnknownMemberType]  # redis-py leaves **kwargs untyped


def make_client(url: str, socket_timeout: float) -> redis.Redis:
    """A client on ``url`` that returns bytes and speaks RESP2 (replies are
    the same whatever the URL asks for; invalidations come as pub/sub)."""
    return client_from_url(
        url,
        decode_responses=False,
        protocol=2,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
    )


class Batch:
    """Send commands on the store's one write connection, one round trip each.

    Every write of the store goes through this connection (the committer
    sends one batch at a time), so the local cache's tracking can be told to
    skip our own writes (NOLOOP).  More than one command is wrapped in
    MULTI/EXEC, so the server applies the batch whole or not at all;
    ``waitaof_ms`` appends ``WAITAOF 1 0 ms`` after it (on the same
    connection, which is what WAITAOF waits for).

    ``on_connect(conn)`` runs on every new connection (it turns tracking on);
    ``on_lost()`` when one is dropped.  ``lock`` guards the connection.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._conn: Connection | None = None
        self.lock = threading.Lock()
        self.on_connect: Callable[[Connection], None] | None = None
        self.on_lost: Callable[[], None] | None = None
        self._why_closed: str | None = None

    def send(
        self, commands: Sequence[Command], waitaof_ms: int | None = None
    ) -> tuple[list[Any], Any]:
        """Return one reply per command (a ResponseError instance for a
        command the server refused) and the WAITAOF reply (None without one;
        a ResponseError if the server refused it).

        :raises redis.ConnectionError: (and TimeoutError, OSError) the
            connection failed; it is dropped, the next batch reconnects
        """
        body: list[Command] = list(commands)
        transaction = len(body) > 1
        if transaction:
            body = [("MULTI",), *body, ("EXEC",)]
        if waitaof_ms is not None:
            body.append(("WAITAOF", 1, 0, waitaof_ms))
        with self.lock:
            try:
                conn = self._connection()
                conn.send_packed_command(conn.pack_commands(body), check_health=False)
                replies: list[Any] = []
                for _ in body:
                    try:
                        replies.append(conn.read_response())
                    except ResponseError as exc:
                        replies.append(exc)
            except BaseException:
                self._drop()  # half read: never use it again as is
                raise
        waited = replies.pop() if waitaof_ms is not None else None
        if not transaction:
            return replies, waited
        executed = replies[-1]
        if isinstance(executed, ResponseError):  # EXECABORT: nothing applied
            return [executed] * len(commands), waited
        return list(executed), waited

    def _connection(self) -> Connection:
        """The open connection (lock held): a new one if there is none or
        the server closed it while it was idle."""
        if self._conn is not None and _closed_while_idle(self._conn):
            self._drop()
        if self._conn is None:
            if self._why_closed is not None:
                raise NotOpenError(self._why_closed)
            conn = new_connection(self._client)
            try:
                conn.connect()
                if self.on_connect is not None:
                    self.on_connect(conn)
            except BaseException:
                conn.disconnect()
                raise
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None
            if self.on_lost is not None:
                self.on_lost()

    def setup(self) -> None:
        """Connect now if needed, and run on_connect on the connection again
        (tracking is redirected to a new invalidation connection)."""
        with self.lock:
            try:
                had = self._conn is not None
                conn = self._connection()
                if had and self.on_connect is not None:
                    self.on_connect(conn)
            except CONNECTION_ERRORS:
                self._drop()
                raise

    def probe(self) -> bool:
        """Drop the connection if the server closed it while idle (skipped
        while a batch is in flight); True if it was dropped."""
        if not self.lock.acquire(blocking=False):
            return False
        try:
            if self._conn is not None and _closed_while_idle(self._conn):
                self._drop()
                return True
            return False
        finally:
            self.lock.release()

    def close(self, why: str) -> None:
        """Drop the connection; later batches raise NotOpenError(why)."""
        with self.lock:
            self._why_closed = why
            self.on_lost = None
            self._drop()


def _closed_while_idle(conn: Connection) -> bool:
    """An idle connection has nothing to read: readable means closed (EOF)."""
    try:
        return bool(conn.can_read(timeout=0))
    except CONNECTION_ERRORS:
        return True


class FsyncMode:
    """How this server makes ``*_fsync`` honest, found out once: ``waitaof``
    (Redis >= 7.2) or ``always`` (AOF on, fsync'd before every reply);
    otherwise ``check()`` raises FsyncUnavailableError every time it is asked
    (a server may be reconfigured, so a refusal is not remembered)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.mode: str | None = None
        self._lock = threading.Lock()

    def check(self) -> str:
        """``"waitaof"`` or ``"always"``; raise FsyncUnavailableError otherwise."""
        mode = self.mode
        if mode is not None:
            return mode
        with self._lock:
            if self.mode is None:
                self.mode = self._find()
            return self.mode

    def _find(self) -> str:
        text = _server_version(self.client)
        version = tuple(int(p) for p in text.split(".")[:2])
        if version >= WAITAOF_VERSION:
            return self._waitaof_unless_aof_off(text)
        try:
            appendonly = _setting(self.client, "appendonly")
            appendfsync = _setting(self.client, "appendfsync")
        except ResponseError as exc:
            raise FsyncUnavailableError(
                f"set_fsync needs an fsync'd append-only file, but this Redis "
                f"{text} has no WAITAOF (7.2+) and its "
                f"configuration could not be checked (CONFIG GET: {exc}); "
                "run the server with 'appendonly yes' and 'appendfsync always', "
                "allow CONFIG GET, or use Redis >= 7.2"
            ) from None
        if appendonly == "yes" and appendfsync == "always":
            return "always"
        raise FsyncUnavailableError(
            f"set_fsync needs an fsync'd append-only file, but this Redis "
            f"{text} (no WAITAOF before 7.2) runs with "
            f"appendonly={appendonly} appendfsync={appendfsync}; "
            "set 'appendonly yes' and 'appendfsync always' (redis.conf, or "
            "CONFIG SET), or use Redis >= 7.2"
        )

    def _waitaof_unless_aof_off(self, version: str) -> str:
        """WAITAOF, unless the append-only file is off: then it could never
        confirm, so refuse before anything is written (a server that hides
        CONFIG gets WAITAOF, which then reports the write unconfirmed)."""
        try:
            appendonly = _setting(self.client, "appendonly")
        except ResponseError:
            return "waitaof"
        if appendonly == "no":
            raise FsyncUnavailableError(
                f"set_fsync needs an append-only file, but this Redis {version} "
                "runs with appendonly=no (WAITAOF would wait for nothing); set "
                "'appendonly yes' (redis.conf, or CONFIG SET)"
            )
        return "waitaof"


def _server_version(client: redis.Redis) -> str:
    """The server's ``redis_version`` (INFO server)."""
    info = client.info("server")  # pyright: ignore[reportUnknownMemberType]  # redis-py leaves **kwargs untyped
    return str(info["redis_version"])


def _setting(client: redis.Redis, name: str) -> str:
    """One CONFIG GET value as text ("?" if the server has no such setting)."""
    reply: dict[Any, Any] = dict(client.config_get(name))  # pyright: ignore[reportUnknownMemberType]  # redis-py leaves **kwargs untyped
    value = reply.get(name, reply.get(name.encode(), "?"))
    return value.decode() if isinstance(value, bytes) else str(value)


def ping(client: redis.Redis) -> None:
    """PING: raises redis.RedisError if the server cannot be reached."""
    client.ping()  # pyright: ignore[reportUnknownMemberType]  # redis-py leaves **kwargs untyped


def hashes_matching(client: redis.Redis, pattern: str, count: int) -> Iterator[bytes]:
    """The keys of the hashes matching the glob ``pattern`` (SCAN, ``count``
    a step; a key may come twice)."""
    found = client.scan_iter(match=pattern, count=count, _type="HASH")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # items untyped: keys, bytes
    return cast("Iterator[bytes]", found)


def hash_fields(
    client: redis.Redis, name: bytes, count: int
) -> Iterator[tuple[bytes, bytes]]:
    """The fields and values of the hash ``name`` (HSCAN, ``count`` a step;
    a field may come twice)."""
    found = client.hscan_iter(name, count=count)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # items untyped: (field, value) bytes
    return cast("Iterator[tuple[bytes, bytes]]", found)


def transaction(client: redis.Redis) -> Pipeline:
    """A pipeline whose ``execute`` sends its commands as one MULTI/EXEC."""
    return client.pipeline(transaction=True)  # pyright: ignore[reportUnknownMemberType]  # shard_hint untyped
