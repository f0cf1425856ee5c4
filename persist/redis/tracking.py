"""Invalidations for the local read cache: Redis server-assisted client
tracking in broadcast mode, received on one dedicated connection.

RESP2 with the connection redirecting its own invalidations to itself
(``CLIENT TRACKING ON REDIRECT <own id> BCAST PREFIX <namespace>:``, then
``SUBSCRIBE __redis__:invalidate``): one connection both keeps tracking on
and receives the messages, so if it drops, tracking is gone and we notice at
once (a second, idle tracking connection could die unnoticed).  RESP3 push
messages would also need one connection, but redis-py's RESP3 push handling
belongs to its own client-side cache, which refuses servers before 7.4.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

__all__ = ["Invalidations"]

log = logging.getLogger("persist")
CHANNEL = b"__redis__:invalidate"
POLL_SECONDS = 0.1  # how soon the thread notices a stop request
MAX_BACKOFF = 1.0  # seconds between reconnection attempts, at most


class Invalidations:
    """A thread that keeps tracking on and reports what changed.

    :param on_change: called with the Redis key (bytes) that changed, or None
        when every key may have (FLUSHALL, or tracking lost or regained)
    :param on_state: called with True once tracking is on, False when lost;
        caching is allowed only in between
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: bytes,
        on_change: Callable[[bytes | None], None],
        on_state: Callable[[bool], None],
    ) -> None:
        self._pool = client.connection_pool
        self._prefix = prefix
        self._on_change = on_change
        self._on_state = on_state
        self._stop = threading.Event()
        self.client_id: int | None = None  # of the tracking connection, when up
        self._thread = threading.Thread(
            target=self._run, name=f"persist-redis-tracking {prefix!r}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (within POLL_SECONDS) and drop the connection."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        backoff = 0.01
        while not self._stop.is_set():
            conn = self._pool.connection_class(**self._pool.connection_kwargs)
            try:
                self._track(conn)
                backoff = 0.01
                self._listen(conn)
            except Exception as exc:  # lost: no caching until it is back
                if not self._stop.is_set():
                    log.warning("persist: Redis invalidation connection lost: %s", exc)
            finally:
                self.client_id = None
                self._on_state(False)
                conn.disconnect()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _track(self, conn: Any) -> None:
        conn.connect()
        conn.send_command("CLIENT", "ID")
        client_id = int(conn.read_response())
        conn.send_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", client_id,
            "BCAST", "PREFIX", self._prefix,
        )  # fmt: skip
        conn.read_response()
        conn.send_command("SUBSCRIBE", CHANNEL)
        conn.read_response()
        self.client_id = client_id
        self._on_state(True)

    def _listen(self, conn: Any) -> None:
        while not self._stop.is_set():
            if not conn.can_read(timeout=POLL_SECONDS):
                continue
            message = conn.read_response()
            if not (isinstance(message, list) and len(message) == 3):
                continue
            kind, channel, keys = message
            if kind != b"message" or channel != CHANNEL:
                continue
            if keys is None:  # FLUSHALL / FLUSHDB
                self._on_change(None)
            else:
                for key in keys:
                    self._on_change(key)
