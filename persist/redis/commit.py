"""Group commit: the one path by which changes reach the server.

A caller with a synchronous write queues a ticket; the caller that finds no
batch in flight becomes the leader and sends, on its own thread, one batch
holding every map's pending async changes first and then every queued
ticket's command (MULTI/EXEC when there is more than one).  Callers arriving
meanwhile wait for the next batch.  So an async change made before a
synchronous write reaches the server before it, and one thread writing alone
pays one round trip and no thread handoff.
"""

# The store, its maps and the batch committer are one unit split over modules:
# they use each other's underscore names (private to the package, not to a
# module).
# pyright: reportPrivateUsage=false

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from redis.exceptions import ResponseError

from .errors import FsyncUnavailableError
from .wire import Batch, Command

__all__ = ["Committer", "PendingSource", "Ticket"]


class PendingSource(Protocol):
    """A map's side of a batch (RedisMap implements it)."""

    def _take_pending(self) -> list[Command]:
        """Move the pending async changes in flight; return their commands."""
        ...

    def _sent(self, ok: bool) -> None:
        """The in-flight changes were applied (or, ok False, not: keep them)."""
        ...

    def _what(self, key: str | None) -> str:
        """The map and key, as errors name them."""
        ...

    def _wrote(self, ticket: Ticket, reply: Any) -> None:
        """A synchronous write of this map was sent: ``reply`` is the server's
        answer (None: the batch failed, the outcome is unknown)."""
        ...


class Ticket:
    """One synchronous write (or, with no command, a flush) and its outcome."""

    __slots__ = (
        "command", "done", "error", "fsync", "gen", "key", "label", "owner",
        "reply", "value",
    )  # fmt: skip

    def __init__(
        self,
        command: Command | None,
        owner: PendingSource | None,
        label: str | None,
        fsync: bool = False,
        key: str | None = None,
        value: Any = None,
        gen: int = 0,
    ) -> None:
        self.command = command
        self.owner = owner
        self.label = label  # names the write in errors (None: the owner's key)
        self.fsync = fsync
        self.key = key  # the key written, and the value it then holds (the
        self.value = value  # owner's DELETED for a delete), for the owner's view
        self.gen = gen  # the owner's view generation when the write was made
        self.done = False
        self.reply: Any = None
        self.error: BaseException | None = None

    @property
    def what(self) -> str:
        """The map and key (or the store's job) in errors: made only when one
        is raised, not on every write."""
        if self.label is not None:
            return self.label
        assert self.owner is not None
        return self.owner._what(self.key)


class Committer:
    """Batches of every pending async change plus the queued tickets.

    :param sources: returns the maps whose pending changes go first
    :param wrap: turns a connection failure into the error a caller sees
    :param waitaof_ms: returns the WAITAOF timeout when the server has WAITAOF
        (None: an fsync ticket relies on ``appendfsync always``)
    :param report: hears of async changes the server refused (a key of the
        namespace holding another type): they are dropped, not retried
    """

    def __init__(
        self,
        batch: Batch,
        sources: Callable[[], Iterable[PendingSource]],
        wrap: Callable[[BaseException, str], BaseException],
        waitaof_ms: Callable[[], int | None],
        report: Callable[[BaseException], None],
    ) -> None:
        self._batch = batch
        self._sources = sources
        self._wrap = wrap
        self._waitaof_ms = waitaof_ms
        self._report = report
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[Ticket] = []
        self._busy = False

    def run(self, ticket: Ticket) -> Any:
        """Get ``ticket`` into a batch (leading one if none is in flight) and
        return its reply, or raise its error."""
        cond = self._cond
        with cond:
            self._queue.append(ticket)
            while not ticket.done:
                if self._busy:
                    cond.wait()
                    continue
                self._busy = True
                tickets, self._queue = self._queue, []
                cond.release()
                try:
                    self._lead(tickets)
                finally:
                    cond.acquire()
                    self._busy = False
                    cond.notify_all()
        if ticket.error is not None:
            raise ticket.error
        return ticket.reply

    def _lead(self, tickets: list[Ticket]) -> None:
        """Send one batch; whatever happens, settle every ticket (a waiter
        must never wait for a leader that left)."""
        try:
            self._send(tickets)
        except BaseException as exc:
            for t in tickets:
                if not t.done:
                    t.error, t.done = exc, True
            raise

    def _send(self, tickets: list[Ticket]) -> None:
        sources: list[PendingSource] = []
        commands: list[Command] = []
        for source in self._sources():
            taken = source._take_pending()
            if taken:
                sources.append(source)
                commands += taken
        n_async = len(commands)
        writes = [t for t in tickets if t.command is not None]
        commands += [t.command for t in writes]  # type: ignore[misc]
        # WAITAOF on the write connection covers every write sent on it since
        # it was opened, so fsync_all with nothing pending waits for those
        waitaof = self._waitaof_ms() if any(t.fsync for t in tickets) else None
        if not commands and waitaof is None:
            for t in tickets:
                t.done = True
            return
        try:
            replies, waited = self._batch.send(commands, waitaof)
        except BaseException as exc:
            for source in sources:
                source._sent(False)
            for t in writes:
                t.owner._wrote(t, None)  # type: ignore[union-attr]
            for t in tickets:
                t.error = self._wrap(exc, t.what)
                t.done = True
            return
        for source in sources:
            source._sent(True)
        for reply in replies[:n_async]:
            if isinstance(reply, ResponseError):
                self._report(reply)
        for t, reply in zip(writes, replies[n_async:], strict=True):
            t.owner._wrote(t, reply)  # type: ignore[union-attr]
            if isinstance(reply, ResponseError):
                t.error = reply
            else:
                t.reply = reply
        if waited is not None and (
            isinstance(waited, ResponseError) or int(waited[0]) < 1
        ):
            for t in tickets:
                if t.fsync and t.error is None:
                    t.error = FsyncUnavailableError(
                        f"{t.what}: the write was applied but WAITAOF could not "
                        f"confirm an fsync ({waited!r}); is 'appendonly yes' set?"
                    )
        for t in tickets:
            t.done = True
