"""Invalidations for the local read cache: Redis server-assisted client
tracking in broadcast mode (Redis >= 6), RESP2.

Two connections: the store's write connection has tracking on
(``CLIENT TRACKING ON REDIRECT <id> BCAST PREFIX <namespace>: NOLOOP``) and
redirects the messages to a dedicated connection subscribed to
``__redis__:invalidate``.  NOLOOP spares us the messages of our own writes
(every write of the store goes through that one connection): they would
wake this thread on every ``set`` and cost the writer the GIL; our own
writes drop the cache themselves.  Caching is allowed only while both
connections are up and the redirect points at the live subscriber: a
subscriber that drops is noticed at once (its socket), a write connection
closed while idle within POLL_SECONDS (probed), or at its next batch.

(RESP3 push messages would need one connection for tracking and writes,
read by two threads; redis-py's own client-side cache, built on them,
refuses servers before 7.4.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, cast

import redis

from .wire import Batch, Connection, new_connection

__all__ = ["Invalidations"]

log = logging.getLogger("persist")
CHANNEL = b"__redis__:invalidate"
POLL_SECONDS = 0.1  # how soon a stop request or a closed write connection is seen
MAX_BACKOFF = 1.0  # seconds between reconnection attempts, at most
KEEP: Any = object()  # _update: leave this one as it is


class Invalidations:
    """A thread that keeps tracking on and reports what changed.

    :param on_change: called with the Redis key (bytes) that changed, or None
        when every key may have (FLUSHALL)
    :param on_state: called with True when caching becomes safe, False when
        it stops being safe (the caller drops every cached value either way)
    """

    def __init__(
        self,
        client: redis.Redis,
        batch: Batch,
        prefix: bytes,
        on_change: Callable[[bytes | None], None],
        on_state: Callable[[bool], None],
    ) -> None:
        self._client = client
        self._batch = batch
        self._prefix = prefix
        self._on_change = on_change
        self._on_state = on_state
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self.client_id: int | None = None  # of the subscriber, when up
        self._redirected_to: int | None = None  # the write connection's target
        self._up = False
        batch.on_connect = self._track_writes
        batch.on_lost = self._writes_untracked
        self._thread = threading.Thread(
            target=self._run, name=f"persist-redis-tracking {prefix!r}", daemon=True
        )
        self._thread.start()

    @property
    def active_id(self) -> int | None:
        """The subscriber's client id while caching is allowed, else None."""
        with self._state_lock:
            return self.client_id if self._up else None

    def stop(self) -> None:
        """Stop the thread (within POLL_SECONDS) and drop the subscriber."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    # -- the state: caching is safe only with both ends connected -------------

    def _update(self, subscriber: Any = KEEP, target: Any = KEEP) -> None:
        """Set the subscriber's id and/or the redirect target (int or None)."""
        with self._state_lock:
            if subscriber is not KEEP:
                self.client_id = subscriber
            if target is not KEEP:
                self._redirected_to = target
            up = self.client_id is not None and self._redirected_to == self.client_id
            if up == self._up:
                return
            self._up = up
            self._on_state(up)

    def _track_writes(self, conn: Connection) -> None:
        """Batch.on_connect: redirect the write connection's tracking to
        the subscriber (if one is up)."""
        subscriber = self.client_id
        if subscriber is None:
            return
        conn.send_command("CLIENT", "TRACKING", "OFF")
        conn.read_response()
        conn.send_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", subscriber,
            "BCAST", "PREFIX", self._prefix, "NOLOOP",
        )  # fmt: skip
        conn.read_response()
        self._update(target=subscriber)

    def _writes_untracked(self) -> None:
        """Batch.on_lost: the write connection is gone, its tracking too."""
        self._update(target=None)

    # -- the subscriber's thread ----------------------------------------------

    def _run(self) -> None:
        backoff = 0.01
        while not self._stop.is_set():
            conn = new_connection(self._client)
            try:
                self._subscribe(conn)
                self._batch.setup()
                backoff = 0.01
                self._listen(conn)
            except Exception as exc:  # lost: no caching until it is back
                if not self._stop.is_set():
                    log.warning("persist: Redis invalidation connection lost: %s", exc)
            finally:
                self._update(subscriber=None)
                conn.disconnect()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _subscribe(self, conn: Connection) -> None:
        conn.connect()
        conn.send_command("CLIENT", "ID")
        client_id = int(conn.read_response())
        conn.send_command("SUBSCRIBE", CHANNEL)
        conn.read_response()
        self._update(subscriber=client_id)

    def _listen(self, conn: Connection) -> None:
        while not self._stop.is_set():
            if not conn.can_read(timeout=POLL_SECONDS):
                if self._batch.probe():  # the write connection was closed
                    self._batch.setup()
                continue
            message: object = conn.read_response()
            if not isinstance(message, list):
                continue
            parts = cast("list[object]", message)
            if len(parts) != 3:
                continue
            kind, channel, keys = parts
            if kind != b"message" or channel != CHANNEL:
                continue
            if keys is None:  # FLUSHALL / FLUSHDB
                self._on_change(None)
            else:  # the keys that changed
                for key in cast("list[bytes]", keys):
                    self._on_change(key)
