"""A web service's session store: worker threads, counters, expiry by the app.

What a small web service keeps in ``sessions.db`` (in the current folder):

- ``sessions``: one ``Session`` per login token. Logging in is a ``set`` (on
  disk before the response goes out); each request refreshes the session
  with ``set_async`` (a hot path: losing the last second of refreshes in a
  crash only shortens a session).
- ``counters``: request counts per path, shared by every worker thread and
  incremented with ``update``, which is atomic per key, so no count is lost.
- Expiry is the application's: persist has no TTL. ``expire`` deletes the
  sessions whose ``expires_at`` has passed, as a periodic job would.

Time is passed in (``now``) so the run is repeatable: requests happen ten
minutes after login, the expiry job runs 35 minutes after it, and only the
users who made requests (their sessions were refreshed) are still logged in.

Run: ``python examples/session_store.py`` (it starts from an empty file)
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import attrs

import persist

SESSION_TTL = 30 * 60.0  # seconds a session lives after its last request
PATHS = ("/", "/search", "/cart")


@attrs.frozen
class Session:
    """A logged-in user; ``expires_at`` is a Unix time."""

    user_id: str
    expires_at: float
    requests: int = 0


class SessionStore:
    """The sessions and counters of one service, in one file."""

    def __init__(self, path: str) -> None:
        self.store = persist.Store()
        self.sessions = self.store.map("sessions", Session)
        self.counters = self.store.map("counters", int)
        self.store.open(path)

    def login(self, user_id: str, now: float) -> str:
        """Start a session; return its token."""
        token = secrets.token_urlsafe(16)
        self.sessions.set(token, Session(user_id, now + SESSION_TTL))
        return token

    def handle(self, token: str, path: str, now: float) -> bool:
        """Serve one request: count it, refresh the session; False if logged out."""
        self.counters.update(path, _increment)
        session = self.sessions.get(token)
        if session is None or session.expires_at <= now:
            return False
        refreshed = attrs.evolve(
            session, expires_at=now + SESSION_TTL, requests=session.requests + 1
        )
        self.sessions.set_async(token, refreshed)
        return True

    def expire(self, now: float) -> int:
        """Delete the sessions that expired by ``now``; return how many."""
        expired = [t for t, s in self.sessions.items() if s.expires_at <= now]
        for token in expired:
            self.sessions.delete(token)
        return len(expired)

    def close(self) -> None:
        """Write the pending refreshes and release the file."""
        self.store.close()


def _increment(upd: persist.Update[int]) -> None:
    upd.set((upd.value or 0) + 1)


def main() -> None:
    """Log five users in, let three make requests from worker threads, expire."""
    Path("sessions.db").unlink(
        missing_ok=True
    )  # a fresh file: every run prints the same
    login_time = time.time()
    service = SessionStore("sessions.db")
    tokens = {f"user{i}": service.login(f"user{i}", login_time) for i in range(5)}

    def worker(token: str) -> None:
        for i in range(300):
            service.handle(token, PATHS[i % len(PATHS)], login_time + 10 * 60)

    active = ["user0", "user1", "user2"]
    threads = [threading.Thread(target=worker, args=(tokens[u],)) for u in active]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    print(f"expired: {service.expire(login_time + 35 * 60)}")
    service.close()

    # A restart: everything below is read back from sessions.db.
    service = SessionStore("sessions.db")
    users = sorted((s.user_id, s.requests) for s in service.sessions.values())
    print(f"logged in: {', '.join(f'{u} ({n} requests)' for u, n in users)}")
    print(f"counters: {dict(sorted(service.counters.items()))}")
    service.close()


if __name__ == "__main__":
    main()
