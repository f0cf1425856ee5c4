"""Helpers imported by the child interpreters of test_lifecycle.py.

A child script starts with ``childlib.harden(timeout)`` and then races the
store as hard as it can:

- ``harden`` makes the GIL switch threads every microsecond and arms
  faulthandler, so a hang dumps every thread's stack to stderr and exits the
  child (exit code 1) before the parent's timeout, and a segfault prints the
  stack too (exit code -11);
- ``SlowValue`` is a value type with a *registered* codec whose encode sleeps
  0.2 ms, so every write spends time between "the call started" and "the
  record is queued" with the GIL released: the windows in which close(),
  shrink() and the background threads can overtake it are wide;
- ``fast_store`` opens a store whose background sync runs every 2 ms and,
  optionally, whose auto-shrink checks every 5 ms with ratio 1.1.

Nothing here imports pytest or conftest: a child only needs persist.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator

import persist

HEADER = b"go-persist 1\n"


# --------------------------------------------------------------------------
# Race wideners
# --------------------------------------------------------------------------


def harden(timeout: float) -> None:
    """Fast GIL switching and a stack dump + exit at ``timeout - 2`` seconds."""
    sys.setswitchinterval(1e-6)
    faulthandler.enable()
    faulthandler.dump_traceback_later(max(timeout - 2.0, 1.0), exit=True)


class SlowValue:
    """A value whose registered codec sleeps in encode (0.2 ms)."""

    __slots__ = ("v",)

    def __init__(self, v: object) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SlowValue) and other.v == self.v

    def __hash__(self) -> int:
        return hash(self.v)

    def __repr__(self) -> str:
        return f"SlowValue({self.v!r})"


ENCODE_SLEEP = 0.0002


def _encode(value: SlowValue) -> bytes:
    time.sleep(ENCODE_SLEEP)
    return json.dumps({"v": value.v}, separators=(",", ":")).encode()


def _decode(data: bytes) -> SlowValue:
    return SlowValue(json.loads(data)["v"])


def _copy(value: SlowValue) -> SlowValue:
    return SlowValue(value.v)


persist.register_codec(SlowValue, _encode, _decode, _copy)


def value_json(v: object) -> bytes:
    """The value line SlowValue(v) is written as."""
    return json.dumps({"v": v}, separators=(",", ":")).encode()


def fast_store(
    path: str, *maps: str, shrink: bool = False, sync_interval: float = 0.002
) -> tuple[persist.Store, list[persist.PersistMap]]:
    """Open ``path`` with maps of SlowValue, fast background sync and
    (optionally) fast auto-shrink (every 5 ms, ratio 1.1)."""
    store = persist.Store()
    ms = [store.map(name, SlowValue) for name in maps]
    store.open(path)
    store.sync_interval = sync_interval
    if shrink:
        store.start_auto_shrink(0.005, 1.1)
    return store, ms


def reopen_items(path: str, *maps: str) -> dict[str, dict[str, object]]:
    """Each map's contents (key -> v) after a fresh open in this process.

    Raises StoreLockedError if this process still holds the file's lock.
    """
    store = persist.Store()
    ms = [store.map(name, SlowValue) for name in maps]
    store.open(path)
    try:
        return {
            name: {k: val.v for k, val in m.items()}
            for name, m in zip(maps, ms, strict=True)
        }
    finally:
        store.close()


# --------------------------------------------------------------------------
# Files and descriptors
# --------------------------------------------------------------------------


def records(path: str) -> list[tuple[str, str, bytes]]:
    """The complete records of a WAL file: (kind, fullkey, value line)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data.startswith(HEADER), data[:40]
    body = data[len(HEADER) :]
    out = []
    complete = body.split(b"\n")[:-1]  # lines that end with "\n"
    for i in range(0, len(complete) - 1, 2):
        head, value = complete[i], complete[i + 1]
        kind, key = head.decode().split(" ", 1)
        assert kind in ("S", "D"), head
        out.append((kind, key, value))
    return out


def fds_on(path: str) -> list[str]:
    """This process's descriptors open on ``path`` or on a file whose name
    starts with it (the shrink temp file, an unlinked old inode)."""
    target = os.path.realpath(path)
    found = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{name}")
            if link.startswith(target):
                found.append(f"{name} -> {link}")
    return found


def sigint_after(delay: float, sent: list[float]) -> None:
    """Send this process SIGINT (Ctrl-C) after ``delay`` s; note when in ``sent``."""
    time.sleep(delay)
    sent.append(time.monotonic())
    os.kill(os.getpid(), signal.SIGINT)


def fds_of(path: str | os.PathLike[str]) -> list[int]:
    """This process's file descriptors open on path (Linux /proc)."""
    target = os.path.realpath(path)
    fds = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}") == target:
                fds.append(int(name))
    return fds


@contextlib.contextmanager
def writes_fail(path: str) -> Iterator[None]:
    """Make every write(2) to ``path`` fail with EBADF (as conftest.writes_fail):
    each descriptor on it is swapped for a read-only one, then restored.

    Unlike conftest.writes_fail, a descriptor the store closed meanwhile (a
    close() while writes fail) is not brought back to life: only descriptors
    that still hold the read-only swap are restored; the saved copy of a
    closed one is just closed (releasing its lock)."""
    fds = fds_of(path)
    assert fds, f"no descriptor open on {path}"
    saved = {fd: os.dup(fd) for fd in fds}
    readonly = os.open(path, os.O_RDONLY)
    ro = os.fstat(readonly)
    try:
        for fd in fds:
            os.dup2(readonly, fd)
        yield
    finally:
        for fd, copy in saved.items():
            if _still_swapped(fd, ro):
                os.dup2(copy, fd)
            os.close(copy)
        os.close(readonly)


def _still_swapped(fd: int, ro: os.stat_result) -> bool:
    """fd still refers to the read-only swap (not closed, not reused)."""
    import fcntl

    try:
        st = os.fstat(fd)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError:
        return False
    return (
        (st.st_dev, st.st_ino) == (ro.st_dev, ro.st_ino)
        and flags & os.O_ACCMODE == os.O_RDONLY
        and not flags & os.O_APPEND
    )


# --------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------


class Worker(threading.Thread):
    """A daemon thread that keeps its target's result or exception."""

    def __init__(self, target: Callable[[], object], name: str = "") -> None:
        super().__init__(daemon=True, name=name or None)
        self._fn = target
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:
            self.error = exc


def start(target: Callable[[], object], name: str = "") -> Worker:
    w = Worker(target, name)
    w.start()
    return w


def join_all(workers: list[Worker], timeout: float, what: str) -> None:
    """Join every worker; raise AssertionError naming ``what`` if one hangs."""
    deadline = time.monotonic() + timeout
    for w in workers:
        w.join(max(0.0, deadline - time.monotonic()))
        if w.is_alive():
            hung(f"{what}: thread {w.name} still running after {timeout}s")


def hung(what: str) -> None:
    """Report a hang: every thread's stack to stderr, then exit 3 at once
    (a normal exit would run the exit hook, which may hang on the store)."""
    print(f"HANG: {what}", file=sys.stderr, flush=True)
    faulthandler.dump_traceback(all_threads=True)
    sys.stderr.flush()
    os._exit(3)


def fail(what: str) -> None:
    """Report a broken invariant and exit 2 at once (see ``hung``)."""
    print(f"FAIL: {what}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(2)


def report(**stats: object) -> None:
    """Print the child's summary line (the parent checks for it)."""
    print("CHILD-OK " + json.dumps(stats, sort_keys=True, default=str), flush=True)


def _excepthook(tp, exc, tb) -> None:
    import traceback

    traceback.print_exception(tp, exc, tb)
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(2)


def install_excepthook() -> None:
    """An uncaught exception in the main thread exits 2 at once, skipping the
    exit hook (which would call close() on a store that may be wedged)."""
    sys.excepthook = _excepthook


def replay(path: str) -> dict[str, object]:
    """fullkey -> v of every live record of the file (SlowValue JSON)."""
    state: dict[str, object] = {}
    for kind, key, value in records(path):
        if kind == "S":
            state[key] = json.loads(value)["v"]
        else:
            state.pop(key, None)
    return state
