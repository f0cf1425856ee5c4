"""Fault injection through the core's system-call seam.

``persist._core._set_fault_hook(hook)`` calls ``hook(name)`` before every
system call that changes a store's files.  A counting pass records the calls
of a scenario; the walks then make each one of them fail in turn (EIO,
ENOSPC, EINTR, a short write, a short write followed by ENOSPC, a Ctrl-C)
and check, after each:

* nothing acknowledged is lost (a dict model of acknowledged changes against
  the reopened file) and the file holds exactly the bytes it must (compared
  with reference runs without the fault);
* the file loads and ``persist check`` exits 0;
* the store's state and error: a failed fsync is the failed state
  (StoreFailedError naming the first failure for every later write, reads
  go on, close releases); a failed write(2) is an OSError and the change is
  written exactly once by the next try; EINTR and short writes change
  nothing; a failed shrink leaves the store on its file.

The walks run with the background sync out of the way (deterministic
calls); the background sync's own faults, group commit and faults under
concurrent writers have their own tests at the end.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import (
    HEADER,
    fds_of,
    live_records,
    parse_wal,
    read_bytes,
    run_threads,
    wait_until,
)

import persist
from persist import _core
from persist.cli import main as cli_main

SHORT = "short"
SHORT_ENOSPC = "short+ENOSPC"  # half the bytes land, then the disk is full
INTERRUPT = "interrupt"  # Ctrl-C during the call (see Interrupt)
EINTR = errno.EINTR
EIO = errno.EIO
ENOSPC = errno.ENOSPC

# every fault kind of the walks, with a readable id
KINDS = {
    "EIO": EIO,
    "ENOSPC": ENOSPC,
    "EINTR": EINTR,
    "short": SHORT,
    "short+ENOSPC": SHORT_ENOSPC,
    "interrupt": INTERRUPT,
}
HARMLESS = (EINTR, SHORT)  # the operation succeeds as if nothing happened

GONE = "<deleted>"  # model value of a deleted key


class Interrupt(BaseException):
    """Stands for the KeyboardInterrupt that a signal handler raises when a
    system call is interrupted (EINTR, then PyErr_CheckSignals): the hook
    raises it before the call.  A BaseException like KeyboardInterrupt, so
    it takes the same paths, but one that cannot stop pytest itself."""


@pytest.fixture(autouse=True)
def _no_hook_left():
    """Never leave a fault hook installed, whatever a test does."""
    _core._set_fault_hook(None)
    try:
        yield
    finally:
        _core._set_fault_hook(None)


class Hook:
    """Counts every system call (``calls``: names, ``where``: the scenario
    step of each); makes the ``n``-th one fail with ``kind``.

    ``SHORT_ENOSPC`` writes half the bytes at the n-th call and fails the
    next write with ENOSPC (a disk filling up mid-write).  Thread-safe: the
    background sync calls it too.
    """

    def __init__(
        self,
        n: int | None = None,
        kind: object = None,
        only: str | None = None,
        before: Callable[[str, str], object] | None = None,
    ) -> None:
        self.n = n
        self.kind = kind
        self.only = only  # count only calls of this name (None: all)
        self.before = before  # before(step, name): runs before the verdict
        self.calls: list[str] = []
        self.where: list[str] = []
        self.step = ""
        self.fired = 0
        self._enospc_next_write = False
        self._lock = threading.Lock()

    def __call__(self, name: str) -> object:
        with self._lock:
            if self._enospc_next_write and name == "write":
                self._enospc_next_write = False
                return ENOSPC
            if self.only is not None and name != self.only:
                return None
            i = len(self.calls)
            self.calls.append(name)
            self.where.append(self.step)
        if self.before is not None:  # outside the lock: it may make calls
            self.before(self.where[i], name)
        with self._lock:
            if i != self.n:
                return None
            self.fired += 1
            if self.kind == SHORT_ENOSPC:
                self._enospc_next_write = True
                return SHORT
            if self.kind == INTERRUPT:
                raise Interrupt(name)
            return self.kind


def installed(hook: Hook) -> Hook:
    _core._set_fault_hook(hook)
    return hook


def sound_prefix(data: bytes) -> bytes:
    """The file without a torn tail (what a load reads); b"" for a file
    holding only a prefix of the header (a crash while creating it)."""
    if len(data) < len(HEADER) and HEADER.startswith(data):
        return b""
    assert data.startswith(HEADER), data[:40]
    lines = data[len(HEADER) :].split(b"\n")[:-1]
    lines = lines[: len(lines) - len(lines) % 2]
    return HEADER + b"".join(line + b"\n" for line in lines)


def check_file(path: Path, value_type: type = str) -> dict[str, object]:
    """The file passes ``persist check`` and reloads exactly as its records
    say; returns the live records (fullkey -> value), orphans included."""
    assert cli_main(["check", str(path)]) == 0
    sound = sound_prefix(read_bytes(path))
    live = live_records(sound) if sound else {}
    with persist.Store(path) as store:  # the lock was released
        m = store.map("m", value_type)
        state: dict[str, object] = {f"m:{k}": v for k, v in m.items()}
        for key in live:
            if ":" not in key:
                state[key] = store.get(key, int)
        assert store.stats().active_keys == len(live)
    assert state == live
    assert fds_of(path) == []
    return live


def expect_raises(
    exc_type: type[BaseException], fn: Callable[[], object], what: str
) -> BaseException:
    try:
        fn()
    except exc_type as exc:
        return exc
    except BaseException as exc:
        raise AssertionError(
            f"{what}: raised {exc!r}, not {exc_type.__name__}"
        ) from exc
    raise AssertionError(f"{what}: returned instead of raising {exc_type.__name__}")


def check_failed_state(store: persist.Store, m, cause: OSError, path: Path) -> None:
    """After a failed fsync: every write raises StoreFailedError naming the
    first failure and changes nothing (memory, file); reads work."""
    before = read_bytes(path)
    items = dict(m.items())
    assert "z" in items
    tmp = Path(str(path) + ".shrink-tmp")
    attempts: dict[str, Callable[[], object]] = {
        "m.set": lambda: m.set("z", "new"),
        "m.set_async": lambda: m.set_async("z", "new"),
        "m.set_fsync": lambda: m.set_fsync("z", "new"),
        "m.delete": lambda: m.delete("z"),
        "m.update": lambda: m.update("z", lambda u: u.set("new")),
        "Store.set": lambda: store.set("k2", 1),
        "Store.sync": store.sync,
        "m.sync": m.sync,
        "Store.fsync_all": store.fsync_all,
        "Store.shrink": store.shrink,
    }
    for what, call in attempts.items():
        exc = expect_raises(
            persist.StoreFailedError, call, f"{what} after a failed fsync"
        )
        assert exc.__cause__ is cause, f"{what}: cause {exc.__cause__!r}, not {cause!r}"
        assert str(cause) in str(exc), f"{what}: {exc} does not name {cause}"
        assert dict(m.items()) == items, f"{what} changed memory in the failed state"
        assert read_bytes(path) == before, f"{what} wrote after the failed fsync"
        assert not tmp.exists() and fds_of(tmp) == [], what
    expect_raises(persist.KeyNotFoundError, lambda: store.get("k2", int), "Store.get")
    # reads go on
    assert m.get("z") == items["z"]
    assert len(m) == len(items)
    assert sorted(m.keys()) == sorted(items)


# --------------------------------------------------------------------------
# The scenario of the walks
# --------------------------------------------------------------------------

ASYNC, COMMIT, SHRINK = "async", "commit", "shrink"


@dataclass(frozen=True)
class Op:
    name: str
    call: Callable[[persist.Store, object], object]
    changes: dict[str, object] = field(default_factory=dict)
    kind: str = COMMIT  # COMMIT: writes every queued change before returning


def _append_bang(u) -> None:
    u.set(u.value + "!")


OPS = [
    # the file starts with a torn tail: the first append cuts it (ftruncate)
    Op("m.set a", lambda s, m: m.set("a", "1"), {"m:a": "1"}),
    Op("m.set_async b", lambda s, m: m.set_async("b", "2"), {"m:b": "2"}, ASYNC),
    Op("m.set_fsync c", lambda s, m: m.set_fsync("c", "3"), {"m:c": "3"}),
    Op("m.delete a", lambda s, m: m.delete("a"), {"m:a": GONE}),
    Op("m.update c", lambda s, m: m.update("c", _append_bang), {"m:c": "3!"}),
    Op("Store.set k", lambda s, m: s.set("k", 7), {"k": 7}),
    Op("m.set_async d", lambda s, m: m.set_async("d", "4"), {"m:d": "4"}, ASYNC),
    Op("m.sync", lambda s, m: m.sync()),
    Op(
        "m.update_async e",
        lambda s, m: m.update_async("e", lambda u: u.set("5")),
        {"m:e": "5"},
        ASYNC,
    ),
    Op("Store.fsync_all", lambda s, m: s.fsync_all()),
    Op(
        "m.update_fsync c",
        lambda s, m: m.update_fsync("c", _append_bang),
        {"m:c": "3!!"},
    ),
    Op("m.delete_fsync b", lambda s, m: m.delete_fsync("b"), {"m:b": GONE}),
    Op("m.set_async f", lambda s, m: m.set_async("f", "6"), {"m:f": "6"}, ASYNC),
    Op("Store.shrink", lambda s, m: s.shrink(), {}, SHRINK),
    Op("m.set g", lambda s, m: m.set("g", "7"), {"m:g": "7"}),
    Op("m.delete_async d", lambda s, m: m.delete_async("d"), {"m:d": GONE}, ASYNC),
    Op("Store.delete k", lambda s, m: s.delete("k"), {"k": GONE}),
    Op("m.set_async h", lambda s, m: m.set_async("h", "8"), {"m:h": "8"}, ASYNC),
]
CLOSE = "close"


@dataclass(frozen=True)
class Scenario:
    initial: bytes  # the file before the store opens it
    model: dict[str, object]  # its live records
    ops: list[Op]


SCENARIOS = {
    # one record and a torn tail: the first append cuts the tail (ftruncate)
    "torn-tail": Scenario(HEADER + b'S m:z\n"0"\n' + b'S m:t\n"to', {"m:z": "0"}, OPS),
    # a crash while creating the file left part of the header: the first
    # append cuts it and writes the header with its record
    "torn-header": Scenario(
        HEADER[:6],
        {},
        [Op("m.set z", lambda s, m: m.set("z", "0"), {"m:z": "0"}), *OPS],
    ),
}


def open_for_walk(path: Path) -> tuple[persist.Store, object]:
    # The background sync is kept out of the walks (interval set before
    # open): a walk needs the same system calls in the same order on every
    # run.  The races with the background sync are tested below.
    store = persist.Store()
    store.sync_interval = 3600
    m = store.map("m", str)
    store.open(path)
    return store, m


@dataclass
class Reference:
    after: list[bytes]  # the file after each op
    final: bytes  # after close


def reference_run(
    scenario: Scenario, path: Path, skip_shrink: bool = False
) -> tuple[Reference, Hook]:
    """The scenario without a fault (optionally with the shrink left out);
    returns the file after each step and the counted system calls."""
    path.write_bytes(scenario.initial)
    store, m = open_for_walk(path)
    hook = installed(Hook())
    after = []
    try:
        for op in scenario.ops:
            hook.step = op.name
            if not (skip_shrink and op.kind == SHRINK):
                op.call(store, m)
            after.append(read_bytes(path))
        hook.step = CLOSE
        store.close()
    finally:
        _core._set_fault_hook(None)
        store.close()
    return Reference(after, read_bytes(path)), hook


def expected_outcome(step: str, name: str, kind: object) -> str:
    """What a fault of ``kind`` at the call ``name`` of ``step`` must do."""
    if kind in HARMLESS:
        return "ok"
    if kind == INTERRUPT:
        # the call never happens: a write stays queued, an fsync is still
        # owed (not the failed state); the interrupt at the shrink's
        # directory fsync has its own test
        assert not (step == "Store.shrink" and name == "fsync_dir")
        return "interrupted"
    if step == "Store.shrink":
        # before the rename the store stays on its file; after it a failed
        # directory fsync fails the store
        return "failed" if name == "fsync_dir" else "oserror"
    # a failed fsync of the file, or of the directory of a file without
    # records (it may be new), fails the store
    return "failed" if name in ("fsync", "fsync_dir") else "oserror"


def fault_errno(kind: object) -> int | None:
    if kind == INTERRUPT:
        return None
    return ENOSPC if kind == SHORT_ENOSPC else kind  # type: ignore[return-value]


def walk_one(
    scenario: Scenario,
    path: Path,
    n: int,
    kind: object,
    step: str,
    name: str,
    ref: Reference,
    skip_ref: Reference,
) -> None:
    """Run the scenario with the n-th system call failing; check everything."""
    outcome = expected_outcome(step, name, kind)
    err = None if outcome == "ok" else fault_errno(kind)
    tmp = Path(str(path) + ".shrink-tmp")
    path.write_bytes(scenario.initial)
    store, m = open_for_walk(path)
    hook = installed(Hook(n, kind))
    acked = dict(scenario.model)  # changes that returned normally (and are due)
    pending: list[dict[str, object]] = []  # returned, not written yet
    uncertain: set[str] = set()  # keys whose last change may or may not be there
    expect: bytes | None = scenario.initial  # the exact file now, when known
    current = ref
    failed_at: int | None = None
    try:
        for i, op in enumerate(scenario.ops):
            hook.step = op.name
            if op.name != step or outcome == "ok":
                op.call(store, m)
                if op.kind == ASYNC:
                    pending.append(op.changes)
                else:
                    for change in pending:
                        acked.update(change)
                    pending.clear()
                    acked.update(op.changes)
                    expect = current.after[i]
                if expect is not None:
                    assert read_bytes(path) == expect, f"the file after {op.name}"
                continue
            # the faulted step
            if outcome in ("oserror", "interrupted"):
                if outcome == "oserror":
                    exc = expect_raises(
                        OSError, lambda op=op: op.call(store, m), op.name
                    )
                    assert exc.errno == err, exc
                else:
                    expect_raises(Interrupt, lambda op=op: op.call(store, m), op.name)
                if op.kind == SHRINK:
                    # the store stays on its file; the temp file is gone
                    assert not tmp.exists(), "a failed shrink left its temp file"
                    assert fds_of(tmp) == [], "a failed shrink leaked a descriptor"
                    assert len(fds_of(path)) == 1
                    current = skip_ref
                    expect = None  # the pending async change may be written
                else:
                    # queued: memory has the change, the next try writes it
                    pending.append(op.changes)
                    for key, value in op.changes.items():
                        _, _, k = key.rpartition(":")
                        if key.startswith("m:"):
                            assert m.get(k, GONE) == value, f"memory of {key}"
                    if kind == SHORT_ENOSPC:
                        expect = None  # half a batch is in the file
                    elif name in ("fsync", "fsync_dir"):  # after the write
                        expect = current.after[i]
                        assert read_bytes(path) == expect, "the write before the fsync"
                    else:
                        if name != "ftruncate":  # the torn tail was cut first
                            expect = sound_prefix(expect)
                        assert read_bytes(path) == expect, "a failed write wrote"
            else:
                exc = expect_raises(
                    persist.StoreFailedError, lambda op=op: op.call(store, m), op.name
                )
                cause = exc.__cause__
                assert isinstance(cause, OSError) and cause.errno == err, repr(cause)
                # the write before the fsync reached the file; nothing after it
                expect = ref.after[i]
                assert read_bytes(path) == expect, f"the file after {op.name}"
                check_failed_state(store, m, cause, path)
                for change in pending:
                    uncertain.update(change)
                uncertain.update(op.changes)
                pending.clear()
                failed_at = i
                break
        # close
        hook.step = CLOSE
        if failed_at is not None or step != CLOSE or outcome == "ok":
            assert store.close() is None
            if failed_at is None:
                for change in pending:
                    acked.update(change)
                pending.clear()
                expect = current.final
        elif outcome == "interrupted":
            expect_raises(Interrupt, store.close, "close")
            # interrupted while closing: new calls are refused, and the next
            # close() resumes (writes the rest once, fsyncs, releases)
            assert not store.closed
            expect_raises(
                persist.NotOpenError, lambda: m.set("x", "1"), "while closing"
            )
            assert store.close() is None
            assert store.closed
            for change in pending:
                acked.update(change)
            pending.clear()
            expect = current.final
        else:
            if outcome == "oserror":
                exc = expect_raises(OSError, store.close, "close")
                assert exc.errno == err, exc
                # the pending change never reached the file: not acknowledged
            else:
                exc = expect_raises(persist.StoreFailedError, store.close, "close")
                cause = exc.__cause__
                assert isinstance(cause, OSError) and cause.errno == err, repr(cause)
                expect = ref.final  # written, then the fsync failed
            for change in pending:
                uncertain.update(change)
            pending.clear()
            assert store.closed
            assert store.close() is None  # twice: a no-op
            expect_raises(persist.NotOpenError, lambda: m.set("x", "1"), "after close")
    finally:
        _core._set_fault_hook(None)
        if not store.closed:
            with contextlib.suppress(Exception):
                store.close()
    assert hook.fired == 1, f"call #{n} was not reached"
    assert store.closed
    data = read_bytes(path)
    if expect is not None:
        if kind == SHORT_ENOSPC and step == CLOSE:
            # half of the last batch is a torn tail
            assert sound_prefix(data) == expect and data.startswith(expect)
        else:
            assert data == expect, "the file after close"
    assert not tmp.exists(), "a shrink temp file was left behind"
    assert fds_of(path) == [] and fds_of(tmp) == [], "a descriptor leaked"
    live = check_file(path)
    for key, value in acked.items():
        if key not in uncertain:
            assert live.get(key, GONE) == value, f"acknowledged {key}={value!r} lost"


_references: dict[str, tuple[Reference, Reference, Hook]] = {}


def references(name: str, base: Path) -> tuple[Reference, Reference, Hook]:
    """The reference runs of a scenario (computed once): without a fault,
    without a fault and without the shrink, and the counted calls."""
    if name not in _references:
        scenario = SCENARIOS[name]
        ref, hook = reference_run(scenario, base / "ref.db")
        skip_ref, _ = reference_run(scenario, base / "skip.db", skip_shrink=True)
        _references[name] = ref, skip_ref, hook
    return _references[name]


def test_counting_pass_sees_every_kind_of_call(tmp_path):
    """The counting pass: the scenario's system calls, step by step (the
    sequences the walks make fail one by one)."""
    ref, _, hook = references("torn-tail", tmp_path)
    by_step: dict[str, list[str]] = {}
    for step, name in zip(hook.where, hook.calls, strict=True):
        by_step.setdefault(step, []).append(name)
    assert by_step["m.set a"] == ["ftruncate", "write"]  # the torn tail is cut first
    assert by_step["m.set_fsync c"] == ["write", "fsync"]
    assert by_step["m.delete a"] == ["write"]
    assert by_step["m.sync"] == ["write"]
    assert by_step["Store.fsync_all"] == ["write", "fsync"]
    assert "m.set_async b" not in by_step  # async: nothing until a flush
    shrink = by_step["Store.shrink"]
    assert shrink[:2] == ["open", "fchmod"]
    assert shrink[-4:] == ["fsync", "fsync", "rename", "fsync_dir"]
    assert shrink.count("write") == 2  # the pending async change, the dump
    assert by_step[CLOSE] == ["write", "fsync"]
    # every record reached the file exactly once; the shrink wrote one
    # record per live key (in shard order)
    records = parse_wal(ref.final)
    assert sorted(records[:6]) == [
        ("S", "k", b"7"),
        ("S", "m:c", b'"3!!"'),
        ("S", "m:d", b'"4"'),
        ("S", "m:e", b'"5"'),
        ("S", "m:f", b'"6"'),
        ("S", "m:z", b'"0"'),
    ]
    assert records[6:] == [
        ("S", "m:g", b'"7"'),
        ("D", "m:d", b""),
        ("D", "k", b""),
        ("S", "m:h", b'"8"'),
    ]


def _walk_points(hook: Hook, kind: object) -> list[tuple[int, str, str]]:
    points = [
        (n, step, name)
        for n, (step, name) in enumerate(zip(hook.where, hook.calls, strict=True))
    ]
    if kind == SHORT_ENOSPC:  # only a write can be short
        points = [p for p in points if p[2] == "write"]
    if kind == INTERRUPT:  # test_interrupt_at_the_shrink_directory_fsync
        points = [p for p in points if p[1:] != ("Store.shrink", "fsync_dir")]
    return points


def test_counting_pass_torn_header(tmp_path):
    """A file holding part of the header: nothing is written at open; the
    first append cuts it and writes the header with its record."""
    ref, _, hook = references("torn-header", tmp_path)
    assert hook.where[:3] == ["m.set z", "m.set z", "m.set a"]
    assert hook.calls[:3] == ["ftruncate", "write", "write"]
    assert ref.after[0] == HEADER + b'S m:z\n"0"\n'


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))
def test_fault_at_every_call_of_a_session_loses_nothing_acknowledged(
    tmp_path, scenario, kind
):
    """Walk a fault of one kind over every system call of a session (torn tail
    or torn header cut, sets, deletes, updates, async changes, sync,
    fsync_all, shrink, close): after each, the file holds exactly the bytes
    it must, reloads with every acknowledged change, passes ``check``, and
    the store was in the right state (failed only after a failed fsync)."""
    ref, skip_ref, hook = references(scenario, tmp_path)
    points = _walk_points(hook, kind)
    assert len(points) >= (14 if kind == SHORT_ENOSPC else 25)
    failures = []
    for n, step, name in points:
        run_dir = tmp_path / f"run{n}"
        run_dir.mkdir()
        try:
            walk_one(
                SCENARIOS[scenario],
                run_dir / "w.db",
                n,
                kind,
                step,
                name,
                ref,
                skip_ref,
            )
        except Exception as exc:  # collected: report every failing point
            failures.append(
                f"call #{n} {name!r} in {step!r}: {type(exc).__name__}: {exc}"
            )
    assert not failures, (
        f"{len(failures)} of {len(points)} fault points:\n" + "\n".join(failures)
    )


# --------------------------------------------------------------------------
# Open of a new file
# --------------------------------------------------------------------------


def _count_open_of_new_file(path: Path) -> Hook:
    store = persist.Store()
    store.sync_interval = 3600
    hook = installed(Hook())
    try:
        store.open(path)
    finally:
        _core._set_fault_hook(None)
        store.close()
    return hook


def test_counting_pass_open_of_a_new_file(tmp_path):
    """Creating a store: open, remove a leftover shrink temp file, write the
    header, fsync it, fsync the directory (the new entry)."""
    hook = _count_open_of_new_file(tmp_path / "new.db")
    assert hook.calls == ["open", "unlink", "write", "fsync", "fsync_dir"]
    assert read_bytes(tmp_path / "new.db") == HEADER


def _create_with_fault(path: Path, n: int, name: str, kind: object) -> None:
    """Open a new file with the n-th call failing; check what it leaves."""
    store = persist.Store()
    store.sync_interval = 3600
    m = store.map("m", str)
    installed(Hook(n, kind))
    try:
        if kind in HARMLESS:
            store.open(path)
            assert read_bytes(path) == HEADER
            m.set("a", "1")
            store.close()
            assert check_file(path) == {"m:a": "1"}
            return
        if kind == INTERRUPT:
            expect_raises(Interrupt, lambda: store.open(path), "open")
        elif name in ("fsync", "fsync_dir"):
            exc = expect_raises(
                persist.StoreFailedError, lambda: store.open(path), "open"
            )
            cause = exc.__cause__
        else:
            exc = cause = expect_raises(OSError, lambda: store.open(path), "open")
        if kind != INTERRUPT:
            assert isinstance(cause, OSError), repr(cause)
            assert cause.errno == fault_errno(kind), repr(cause)
    finally:
        _core._set_fault_hook(None)
    assert store.closed
    assert fds_of(path) == [], "a failed open leaked its descriptor"
    expect_raises(persist.NotOpenError, lambda: m.set("a", "1"), "map of a failed open")
    if path.exists():
        assert check_file(path) == {}
    with persist.Store(path) as other:  # no lock is held
        other.map("m", str).set("b", "2")
    assert read_bytes(path) == HEADER + b'S m:b\n"2"\n'
    store.open(path)  # the same Store opens once the fault is gone
    m.set("a", "1")
    store.close()
    assert read_bytes(path) == HEADER + b'S m:b\n"2"\nS m:a\n"1"\n'


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))
def test_fault_while_creating_a_store_leaves_no_descriptor_or_lock(tmp_path, kind):
    """A fault at any step of opening a new file: the open raises the error
    (a failed fsync as StoreFailedError), keeps no descriptor and no lock:
    the same Store and a new one open the file once the hook is gone; EINTR
    and short writes open as usual."""
    calls = _count_open_of_new_file(tmp_path / "count.db").calls
    failures = []
    for n, name in enumerate(calls):
        if kind == SHORT_ENOSPC and name != "write":
            continue
        try:
            _create_with_fault(tmp_path / f"new{n}.db", n, name, kind)
        except Exception as exc:  # collected: report every failing point
            failures.append(f"call #{n} {name!r}: {type(exc).__name__}: {exc}")
        finally:
            _core._set_fault_hook(None)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "kind", [EIO, SHORT_ENOSPC, INTERRUPT], ids=["EIO", "short+ENOSPC", "interrupt"]
)
def test_open_after_a_failed_creation_makes_the_directory_entry_durable(tmp_path, kind):
    """Creating a store makes its directory entry durable (fsync_dir) before
    the store is used.  When that creation fails at any step, the open that
    retries it must do the same before a set_fsync returns: otherwise an
    acknowledged record can vanish with the file's entry at a power loss."""
    calls = _count_open_of_new_file(tmp_path / "count.db").calls
    failures = []
    for n, name in enumerate(calls):
        if kind == SHORT_ENOSPC and name != "write":
            continue
        path = tmp_path / f"new{n}.db"
        installed(Hook(n, kind))
        try:
            with pytest.raises((OSError, persist.StoreFailedError, Interrupt)):
                persist.Store(path)
        finally:
            _core._set_fault_hook(None)
        retry = installed(Hook())
        try:
            store = persist.Store(path)
            store.map("m", str).set_fsync("a", "1")
        finally:
            _core._set_fault_hook(None)
        store.close()
        assert read_bytes(path) == HEADER + b'S m:a\n"1"\n'
        if "fsync_dir" not in retry.calls:
            failures.append(
                f"creation failed at call #{n} {name!r}; the retry's calls "
                f"{retry.calls} never fsync the directory"
            )
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------
# Close
# --------------------------------------------------------------------------


@pytest.mark.parametrize("err", [EIO, ENOSPC], ids=["EIO", "ENOSPC"])
@pytest.mark.parametrize("call", ["write", "fsync"])
def test_fault_in_the_final_flush_of_close_still_releases(db_path, call, err):
    """close() whose final write or fsync fails raises (OSError; a failed
    fsync as StoreFailedError caused by it), yet the store is closed, its
    descriptor and lock are released, and a reopen reads what is on disk."""
    store, m = open_for_walk(db_path)
    m.set("a", "1")
    m.set_async("b", "2")  # pending: close writes it
    hook = installed(Hook(0, err, only=call))
    try:
        if call == "write":
            exc = cause = expect_raises(OSError, store.close, "close")
        else:
            exc = expect_raises(persist.StoreFailedError, store.close, "close")
            cause = exc.__cause__
    finally:
        _core._set_fault_hook(None)
    assert hook.fired == 1
    assert isinstance(cause, OSError) and cause.errno == err, repr(cause)
    assert store.closed
    assert store.close() is None  # a second close is a no-op
    expect_raises(persist.NotOpenError, lambda: m.set("c", "3"), "set after close")
    assert fds_of(db_path) == []
    on_disk = HEADER + b'S m:a\n"1"\n'
    if call == "fsync":  # written before the fsync failed
        on_disk += b'S m:b\n"2"\n'
    assert read_bytes(db_path) == on_disk
    assert check_file(db_path) == live_records(on_disk)
    store.open(db_path)  # the same Store reopens
    assert dict(m.items()) == {k[2:]: v for k, v in live_records(on_disk).items()}
    store.close()


# --------------------------------------------------------------------------
# The background sync (fast, with an error_handler)
# --------------------------------------------------------------------------


def open_fast(path: Path, handler: Callable[[BaseException], object]):
    store = persist.Store()
    store.sync_interval = 0.002
    store.error_handler = handler
    m = store.map("m", str)
    store.open(path)
    return store, m


@pytest.mark.parametrize(
    "kind", [EIO, ENOSPC, SHORT_ENOSPC], ids=["EIO", "ENOSPC", "short+ENOSPC"]
)
def test_failed_background_write_is_reported_and_retried_exactly_once(db_path, kind):
    """A failed write(2) of the background flush goes to error_handler (an
    OSError, not the failed state); the next round writes the async change,
    exactly once, and the store keeps working."""
    errors: list[BaseException] = []
    store, m = open_fast(db_path, errors.append)
    try:
        hook = installed(Hook(0, kind, only="write"))
        m.set_async("a", "1")
        wait_until(lambda: errors, what="the failed background write reported")
        expected = HEADER + b'S m:a\n"1"\n'
        wait_until(lambda: read_bytes(db_path) == expected, what="the retried write")
        assert hook.fired == 1
        assert len(errors) == 1
        assert type(errors[0]) is OSError and errors[0].errno == fault_errno(kind)
        m.set_async("b", "2")
        expected += b'S m:b\n"2"\n'
        wait_until(lambda: read_bytes(db_path) == expected, what="a later async change")
        m.set_fsync("c", "3")
        expected += b'S m:c\n"3"\n'
        assert read_bytes(db_path) == expected
    finally:
        _core._set_fault_hook(None)
        store.close()
    assert len(errors) == 1
    assert read_bytes(db_path) == expected
    assert check_file(db_path) == {"m:a": "1", "m:b": "2", "m:c": "3"}


@pytest.mark.parametrize("err", [EIO, ENOSPC], ids=["EIO", "ENOSPC"])
def test_failed_background_fsync_fails_the_store(db_path, err):
    """A failed fsync of the background flush fails the store: error_handler
    gets StoreFailedError caused by the OSError, every later write raises it,
    reads go on, close releases, the reopened file shows what was written."""
    errors: list[BaseException] = []
    store, m = open_fast(db_path, errors.append)
    try:
        m.set("z", "0")
        hook = installed(Hook(0, err, only="fsync"))
        m.set_async("a", "1")
        wait_until(lambda: errors, what="the failed background fsync reported")
        assert hook.fired == 1
        first = errors[0]
        assert isinstance(first, persist.StoreFailedError), repr(first)
        cause = first.__cause__
        assert isinstance(cause, OSError) and cause.errno == err, repr(cause)
        on_disk = HEADER + b'S m:z\n"0"\nS m:a\n"1"\n'  # written, then the fsync failed
        assert read_bytes(db_path) == on_disk
        assert m.get("a") == "1"
        check_failed_state(store, m, cause, db_path)
        for exc in errors:  # anything reported later names the same failure
            assert isinstance(exc, persist.StoreFailedError) and exc.__cause__ is cause
    finally:
        _core._set_fault_hook(None)
        assert store.close() is None
    assert store.closed and fds_of(db_path) == []
    assert read_bytes(db_path) == on_disk
    assert check_file(db_path) == {"m:z": "0", "m:a": "1"}


def test_error_handler_that_raises_does_not_stop_the_background_sync(db_path, caplog):
    """An error_handler that raises is logged; the background sync goes on:
    the failed async change is retried and later ones land too."""
    seen: list[BaseException] = []

    def handler(exc: BaseException) -> None:
        seen.append(exc)
        raise RuntimeError("a broken error_handler")

    store, m = open_fast(db_path, handler)
    try:
        with caplog.at_level(logging.ERROR, logger="persist"):
            installed(Hook(0, EIO, only="write"))
            m.set_async("a", "1")
            expected = HEADER + b'S m:a\n"1"\n'
            wait_until(
                lambda: read_bytes(db_path) == expected, what="the retried write"
            )
            _core._set_fault_hook(None)
            assert len(seen) == 1 and type(seen[0]) is OSError
            assert "error_handler raised" in caplog.text
            m.set_async("b", "2")
            expected += b'S m:b\n"2"\n'
            wait_until(
                lambda: read_bytes(db_path) == expected, what="a later async change"
            )
    finally:
        _core._set_fault_hook(None)
        store.close()
    assert check_file(db_path) == {"m:a": "1", "m:b": "2"}


# --------------------------------------------------------------------------
# Group commit
# --------------------------------------------------------------------------


def test_group_commit_shares_fsyncs_between_writers(db_path):
    """8 threads x 40 set_fsync (background sync every 2 ms): far fewer
    fsyncs than records, and every record in the file exactly once."""
    threads, per_thread = 8, 40
    store = persist.Store()
    store.sync_interval = 0.002
    m = store.map("m", int)
    store.open(path := db_path)
    hook = installed(Hook(only="fsync"))  # counts, never fails
    start = threading.Barrier(threads)

    def writer(t: int) -> None:
        start.wait()
        for j in range(per_thread):
            m.set_fsync(f"t{t}-{j}", t * 1000 + j)

    try:
        run_threads(*(lambda t=t: writer(t) for t in range(threads)), timeout=60)
    finally:
        _core._set_fault_hook(None)
        store.close()
    records = threads * per_thread
    fsyncs = len(hook.calls)
    ratio = fsyncs / records
    print(
        f"group commit: {fsyncs} fsyncs for {records} set_fsync records ({ratio:.3f})"
    )
    assert ratio < 0.8, (
        f"{fsyncs} fsyncs for {records} records ({ratio:.3f} per record)"
    )
    wal = parse_wal(read_bytes(path))
    assert sorted(wal) == sorted(
        ("S", f"m:t{t}-{j}", str(t * 1000 + j).encode())
        for t in range(threads)
        for j in range(per_thread)
    )


# --------------------------------------------------------------------------
# Shrink with writes while it runs
# --------------------------------------------------------------------------


class ShrinkWithWriters:
    """A shrink during which another thread writes: when the shrink fsyncs
    its temp file (the dump is written, the store still appends to the old
    file and copies every write), a helper thread does ``m.set("during")``
    and ``m.set_async("dasync")``; they reach the new file through the
    capture.  Then ``m.set("after")`` and close."""

    def __init__(self, path: Path, n: int | None = None, kind: object = None) -> None:
        path.write_bytes(HEADER)
        self.path = path
        self.store, self.m = open_for_walk(path)  # (why: see open_for_walk)
        self.m.set("z", "0")
        self.m.set("a", "1")
        self.m.set_async("b", "2")
        self.side_effect_ran = False
        self.helper_error: BaseException | None = None
        self.hook = installed(Hook(n, kind, before=self._before))

    def _before(self, step: str, name: str) -> None:
        if step != "shrink" or name != "fsync" or self.side_effect_ran:
            return
        self.side_effect_ran = True
        self.hook.step = "helper"
        helper = threading.Thread(target=self._helper)
        helper.start()
        helper.join(30)
        assert not helper.is_alive(), "a write during the shrink hung"
        self.hook.step = "shrink"

    def _helper(self) -> None:
        try:
            self.m.set("during", "3")
        except BaseException as exc:  # checked by the walk
            self.helper_error = exc
        self.m.set_async("dasync", "4")


def _shrink_with_writers_calls(tmp_path: Path) -> Hook:
    run = ShrinkWithWriters(tmp_path / "count.db")
    try:
        run.hook.step = "shrink"
        run.store.shrink()
        run.hook.step = "after"
        run.m.set("after", "5")
        run.hook.step = CLOSE
        run.store.close()
    finally:
        _core._set_fault_hook(None)
        run.store.close()
    assert run.side_effect_ran and run.helper_error is None
    return run.hook


def test_counting_pass_shrink_with_writers(tmp_path):
    """The shrink's calls: temp file, the pending async change to the old
    file, the dump, fsync; the helper's write to the old file; the async
    change queued meanwhile, the captured bytes to the new file, fsync,
    rename, directory fsync."""
    hook = _shrink_with_writers_calls(tmp_path)
    assert list(zip(hook.where, hook.calls, strict=True)) == [
        ("shrink", "open"),
        ("shrink", "fchmod"),
        ("shrink", "write"),  # b, pending, to the old file
        ("shrink", "write"),  # the dump
        ("shrink", "fsync"),
        ("helper", "write"),  # during, to the old file (captured)
        ("shrink", "write"),  # dasync, to the old file (captured)
        ("shrink", "write"),  # the captured bytes, to the new file
        ("shrink", "fsync"),
        ("shrink", "rename"),
        ("shrink", "fsync_dir"),
        ("after", "write"),
        (CLOSE, "fsync"),
    ]


def _records(*pairs: tuple[str, str]) -> list[tuple[str, str, bytes]]:
    return [("S", f"m:{k}", f'"{v}"'.encode()) for k, v in pairs]


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))
def test_fault_at_every_call_of_a_shrink_with_writers(tmp_path, kind):
    """Walk a fault over every call of a shrink while another thread writes:
    a fault before the rename leaves the store on the file at its path (no
    temp file, no descriptor), and every change, the ones made during the
    shrink included, is in that file exactly once; a failed directory fsync
    after the rename fails the store; a failed write of the helper is
    written exactly once by the shrink itself."""
    count_dir = tmp_path / "count"
    count_dir.mkdir()
    hook = _shrink_with_writers_calls(count_dir)
    failures = []
    for n, (step, name) in enumerate(zip(hook.where, hook.calls, strict=True)):
        if kind == SHORT_ENOSPC and name != "write":
            continue
        if kind == INTERRUPT and name == "fsync_dir":
            continue  # test_interrupt_at_the_shrink_directory_fsync
        run_dir = tmp_path / f"run{n}"
        run_dir.mkdir()
        try:
            _walk_shrink_with_writers(run_dir / "w.db", n, kind, step, name)
        except Exception as exc:  # collected: report every failing point
            failures.append(
                f"call #{n} {name!r} in {step!r}: {type(exc).__name__}: {exc}"
            )
    assert not failures, "\n".join(failures)


def _walk_shrink_with_writers(
    path: Path, n: int, kind: object, step: str, name: str
) -> None:
    harmless = kind in HARMLESS
    err = None if harmless else fault_errno(kind)
    raised = Interrupt if kind == INTERRUPT else OSError
    tmp = Path(str(path) + ".shrink-tmp")
    run = ShrinkWithWriters(path, n, kind)
    store, m = run.store, run.m
    failed = installed_new_file = False
    try:
        run.hook.step = "shrink"
        if harmless or step == "after" or step == CLOSE:
            store.shrink()
            installed_new_file = True
        elif step == "helper":
            store.shrink()
            installed_new_file = True
            assert isinstance(run.helper_error, raised), repr(run.helper_error)
            assert getattr(run.helper_error, "errno", None) == err
        elif name == "fsync_dir":
            exc = expect_raises(persist.StoreFailedError, store.shrink, "shrink")
            assert isinstance(exc.__cause__, OSError) and exc.__cause__.errno == err
            installed_new_file = failed = True
            check_failed_state(store, m, exc.__cause__, path)
        else:
            exc = expect_raises(raised, store.shrink, "shrink")
            assert getattr(exc, "errno", None) == err, repr(exc)
            assert not tmp.exists(), "a failed shrink left its temp file"
            assert fds_of(tmp) == [], "a failed shrink leaked a descriptor"
            assert len(fds_of(path)) == 1
        if step != "helper":
            assert run.helper_error is None, repr(run.helper_error)
        run.hook.step = "after"
        if failed:
            expect_raises(persist.StoreFailedError, lambda: m.set("after", "5"), "set")
        elif step == "after" and not harmless:
            exc = expect_raises(raised, lambda: m.set("after", "5"), "set after")
            assert getattr(exc, "errno", None) == err
        else:
            m.set("after", "5")
        run.hook.step = CLOSE
        if step == CLOSE and kind == INTERRUPT:
            expect_raises(Interrupt, store.close, "close")
            assert not store.closed  # the next close() resumes
            assert store.close() is None
        elif step == CLOSE and not harmless:
            exc = expect_raises(persist.StoreFailedError, store.close, "close")
            assert isinstance(exc.__cause__, OSError) and exc.__cause__.errno == err
        else:
            assert store.close() is None
    finally:
        _core._set_fault_hook(None)
        if not store.closed:
            with contextlib.suppress(Exception):
                store.close()
    assert run.hook.fired == 1, f"call #{n} was not reached"
    assert not tmp.exists() and fds_of(tmp) == [] and fds_of(path) == []
    # exactly the records of every change made, each once, in call order
    # (the shrink writes the keys it dumps in shard order)
    dumped = _records(("z", "0"), ("a", "1"), ("b", "2"))
    later = []
    if run.side_effect_ran:
        later += _records(("during", "3"), ("dasync", "4"))
    if not failed:
        later += _records(("after", "5"))
    records = parse_wal(read_bytes(path))
    if installed_new_file:
        assert sorted(records[:3]) == sorted(dumped), records
        assert records[3:] == later, records
    else:
        assert records == dumped + later
    live = check_file(path)
    assert live == {key: value.decode().strip('"') for _, key, value in dumped + later}


@pytest.mark.parametrize("call", ["write", "fsync"])
def test_error_handler_may_close_the_store(db_path, call):
    """error_handler may close the store from the background thread: the
    close finishes (a failed write is retried by its final flush; after a
    failed fsync nothing more is written), the lock is released."""
    seen: list[object] = []
    store: persist.Store

    def handler(exc: BaseException) -> None:
        seen.append(exc)
        store.close()
        seen.append("closed")

    store, m = open_fast(db_path, handler)
    try:
        installed(Hook(0, EIO, only=call))
        m.set_async("a", "1")
        wait_until(lambda: "closed" in seen, what="close() from error_handler")
    finally:
        _core._set_fault_hook(None)
        store.close()
    assert len(seen) == 2
    if call == "write":
        assert type(seen[0]) is OSError and seen[0].errno == EIO
    else:
        assert isinstance(seen[0], persist.StoreFailedError)
    assert store.closed and fds_of(db_path) == []
    # written by close's flush after the failed write; written before the
    # failed fsync
    assert read_bytes(db_path) == HEADER + b'S m:a\n"1"\n'
    assert check_file(db_path) == {"m:a": "1"}


# --------------------------------------------------------------------------
# Several faults
# --------------------------------------------------------------------------


def test_disk_full_for_a_while_then_every_queued_change_lands_once(db_path):
    """While every write(2) fails with ENOSPC, each writing call raises
    OSError (never StoreFailedError) and a shrink gives up cleanly; once
    space is back, the next write puts every queued change in the file, in
    call order, exactly once."""
    store, m = open_for_walk(db_path)
    m.set("a", "1")
    before = read_bytes(db_path)
    tmp = Path(str(db_path) + ".shrink-tmp")
    full = Hook(kind=ENOSPC)
    full.n = -1  # never matches: the verdict comes from full_disk below

    def full_disk(name: str) -> object:
        full(name)
        return ENOSPC if name == "write" else None

    _core._set_fault_hook(full_disk)
    try:
        attempts = [
            ("m.set b", lambda: m.set("b", "2")),
            ("m.set_fsync c", lambda: m.set_fsync("c", "3")),
            ("m.delete a", lambda: m.delete("a")),
            ("m.update c", lambda: m.update("c", _append_bang)),
            ("Store.set k", lambda: store.set("k", 7)),
            (
                "m.set_async d + Store.sync",
                lambda: (m.set_async("d", "4"), store.sync()),
            ),
            ("Store.fsync_all", store.fsync_all),
            ("Store.shrink", store.shrink),
        ]
        for what, call in attempts:
            exc = expect_raises(OSError, call, what)
            assert exc.errno == ENOSPC, f"{what}: {exc!r}"
            assert read_bytes(db_path) == before, f"{what} wrote on a full disk"
            assert not tmp.exists() and fds_of(tmp) == [], what
        assert "fsync" not in full.calls  # nothing written: nothing to fsync
    finally:
        _core._set_fault_hook(None)
    assert dict(m.items()) == {"b": "2", "c": "3!", "d": "4"}
    m.set_fsync("e", "5")
    expected = before + (
        b'S m:b\n"2"\nS m:c\n"3"\nD m:a\n\nS m:c\n"3!"\n'
        b'S k\n7\nS m:d\n"4"\nS m:e\n"5"\n'
    )
    assert read_bytes(db_path) == expected
    store.close()
    assert read_bytes(db_path) == expected
    assert check_file(db_path) == {
        "m:b": "2",
        "m:c": "3!",
        "k": 7,
        "m:d": "4",
        "m:e": "5",
    }


@pytest.mark.usefixtures("fast_thread_switching")
def test_no_set_fsync_succeeds_once_its_fsync_failed(db_path):
    """8 threads doing set_fsync while the 5th fsync fails: every call that
    returned had its record fsync'd by an earlier, successful fsync; every
    call that ended later raised StoreFailedError caused by that failure;
    the reopened file holds every acknowledged record."""
    threads, per_thread = 8, 30
    store = persist.Store()
    store.sync_interval = 0.002
    m = store.map("m", int)
    store.open(db_path)
    sizes: list[int] = []  # the file's size at each fsync (what it makes durable)

    def record_size(step: str, name: str) -> None:
        if name == "fsync":
            sizes.append(os.path.getsize(db_path))

    hook = installed(Hook(4, EIO, only="fsync", before=record_size))
    acked: dict[int, list[str]] = {t: [] for t in range(threads)}
    refused: dict[int, list[BaseException]] = {t: [] for t in range(threads)}

    def writer(t: int) -> None:
        for j in range(per_thread):
            key = f"t{t}-{j}"
            try:
                m.set_fsync(key, j)
            except persist.StoreFailedError as exc:
                refused[t].append(exc)
            else:
                assert not refused[t], f"{key} succeeded after a refusal"
                acked[t].append(key)

    try:
        run_threads(*(lambda t=t: writer(t) for t in range(threads)), timeout=60)
    finally:
        _core._set_fault_hook(None)
        store.close()
    assert hook.fired == 1
    cause = store_failure = None
    for excs in refused.values():
        for exc in excs:
            cause = exc.__cause__
            assert isinstance(cause, OSError) and cause.errno == EIO, repr(cause)
            store_failure = store_failure or cause
            assert cause is store_failure  # one failure, named by every refusal
    assert store_failure is not None
    durable = max(sizes[:4])  # bytes made durable before the failed fsync
    data = read_bytes(db_path)
    offsets = {}
    pos = len(HEADER)
    for kind, key, value in parse_wal(data):
        pos += len(f"{kind} {key}\n".encode()) + len(value) + 1
        assert key not in offsets, f"{key} written twice"
        offsets[key] = pos  # the end of its record
    for keys in acked.values():
        for key in keys:
            assert f"m:{key}" in offsets, f"acknowledged {key} is not in the file"
            assert offsets[f"m:{key}"] <= durable, (
                f"set_fsync({key!r}) returned, but its record (ending at byte "
                f"{offsets[f'm:{key}']}) was only covered by the failed fsync "
                f"(durable up to byte {durable})"
            )
    assert sum(map(len, acked.values())) + sum(map(len, refused.values())) == (
        threads * per_thread
    )
    live = check_file(db_path, int)
    for keys in acked.values():
        for key in keys:
            assert live[f"m:{key}"] == int(key.split("-")[1])


@pytest.mark.usefixtures("fast_thread_switching")
@pytest.mark.parametrize("partial", [False, True], ids=["ENOSPC", "short+ENOSPC"])
def test_failed_writes_under_concurrency_write_every_record_once(db_path, partial):
    """8 threads writing (set, set_async, delete) while every 5th write(2)
    fails (after writing half its bytes, with partial): each call returns or
    raises OSError, never StoreFailedError; after close every change is in
    the file exactly once, in an order that replays to memory's state."""
    threads, per_thread = 8, 30
    store = persist.Store()
    store.sync_interval = 0.002
    m = store.map("m", int)
    errors: list[BaseException] = []
    store.error_handler = errors.append
    store.open(db_path)
    lock = threading.Lock()
    state = {"writes": 0, "fail_next": False, "faults": 0}

    def every_fifth_write(name: str) -> object:
        if name != "write":
            return None
        with lock:
            if state["fail_next"]:
                state["fail_next"] = False
                return ENOSPC
            state["writes"] += 1
            if state["writes"] % 5:
                return None
            state["faults"] += 1
            if partial:
                state["fail_next"] = True
                return SHORT
            return ENOSPC

    raised: list[BaseException] = []

    def writer(t: int) -> None:
        for j in range(per_thread):
            key = f"t{t}-{j}"
            try:
                if j % 3 == 0:
                    m.set_async(key, j)
                else:
                    m.set(key, j)
            except OSError as exc:  # queued all the same
                raised.append(exc)
            if j % 5 == 4:
                try:
                    assert m.delete(f"t{t}-{j - 1}") is True
                except OSError as exc:
                    raised.append(exc)

    _core._set_fault_hook(every_fifth_write)
    try:
        run_threads(*(lambda t=t: writer(t) for t in range(threads)), timeout=60)
    finally:
        _core._set_fault_hook(None)
    memory = dict(m.items())
    store.close()
    assert state["faults"] >= 5
    for exc in [*raised, *errors]:
        assert type(exc) is OSError and exc.errno == ENOSPC, repr(exc)
    records = parse_wal(read_bytes(db_path))
    seen = set()
    for kind, key, _ in records:
        assert (kind, key) not in seen, f"{kind} {key} written twice"
        seen.add((kind, key))
    expected = set()
    for t in range(threads):
        for j in range(per_thread):
            expected.add(("S", f"m:t{t}-{j}"))
            if j % 5 == 4:
                expected.add(("D", f"m:t{t}-{j - 1}"))
    assert seen == expected
    assert check_file(db_path, int) == {f"m:{k}": v for k, v in memory.items()}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file away")
@pytest.mark.parametrize(
    "kind",
    [errno.EPERM, EIO, EINTR, INTERRUPT],
    ids=["EPERM", "EIO", "EINTR", "interrupt"],
)
def test_fault_giving_the_shrink_temp_file_its_owner(db_path, kind):
    """A store file owned by another user: the shrink gives its temp file
    that owner (fchown).  When that fails the shrink raises (EPERM says to
    shrink as that user), removes the temp file and leaves the store on its
    file; EINTR is retried and the shrink succeeds."""
    store, m = open_for_walk(db_path)
    m.set("a", "1")
    m.set("a", "2")
    os.chown(db_path, 1234, 1234)
    tmp = Path(str(db_path) + ".shrink-tmp")
    hook = installed(Hook(0, kind, only="fchown"))
    try:
        if kind == EINTR:
            store.shrink()
        elif kind == INTERRUPT:
            expect_raises(Interrupt, store.shrink, "shrink")
        else:
            exc = expect_raises(OSError, store.shrink, "shrink")
            assert exc.errno == kind
            if kind == errno.EPERM:
                assert isinstance(exc, PermissionError) and "uid 1234" in str(exc)
    finally:
        _core._set_fault_hook(None)
    assert hook.fired == 1
    assert not tmp.exists() and fds_of(tmp) == []
    m.set("b", "3")
    store.close()
    body = b'S m:a\n"2"\nS m:b\n"3"\n'
    if kind != EINTR:
        body = b'S m:a\n"1"\n' + body
    assert read_bytes(db_path) == HEADER + body
    assert os.stat(db_path).st_uid == 1234
    assert check_file(db_path) == {"m:a": "2", "m:b": "3"}


# --------------------------------------------------------------------------
# Ctrl-C around the shrink's switch to the new file
# --------------------------------------------------------------------------


def _shrunk_store(path: Path) -> tuple[persist.Store, object]:
    store, m = open_for_walk(path)
    m.set("a", "1")
    m.set("a", "2")  # something to shrink away
    return store, m


def test_interrupt_right_after_the_shrink_rename_loses_nothing(db_path):
    """A Ctrl-C that lands just after the shrink's rename (the new file is
    at the path): the store must not go on writing to the old, unlinked
    file.  Every later set_fsync that returns is in the file at the path
    (or the store refuses it), the file at the path stays locked while the
    store is open, and a reopen finds every acknowledged value."""
    store, m = _shrunk_store(db_path)
    tmp = str(db_path) + ".shrink-tmp"

    def rename_then_interrupt(name: str) -> None:
        if name == "rename":
            os.rename(tmp, db_path)  # the rename is done ...
            raise Interrupt(name)  # ... and the signal handler raises now

    _core._set_fault_hook(rename_then_interrupt)
    try:
        expect_raises(Interrupt, store.shrink, "shrink")
    finally:
        _core._set_fault_hook(None)
    acked = {"a": "2"}
    try:
        try:
            m.set_fsync("b", "3")
        except persist.StoreFailedError:
            pass  # refusing is safe
        else:
            acked["b"] = "3"
            assert b'S m:b\n"3"\n' in read_bytes(db_path), (
                "set_fsync returned, but its record is not in the file at the path"
            )
        expect_raises(
            persist.StoreLockedError,
            lambda: persist.Store(db_path),
            "a second open while the store is open",
        )
    finally:
        with contextlib.suppress(persist.PersistError):
            store.close()
    assert fds_of(db_path) == [] and not Path(tmp).exists()
    live = check_file(db_path)
    for key, value in acked.items():
        assert live.get(f"m:{key}") == value, f"acknowledged {key}={value!r} lost"


def test_interrupt_at_the_shrink_directory_fsync(db_path):
    """A Ctrl-C at the shrink's directory fsync (after the rename): the
    rename may not be durable, so either the store fails (StoreFailedError,
    as for a failed directory fsync), or the directory is fsync'd before the
    next set_fsync returns; never an acknowledged change in a file whose
    name may vanish."""
    store, m = _shrunk_store(db_path)
    installed(Hook(0, INTERRUPT, only="fsync_dir"))
    try:
        expect_raises(Interrupt, store.shrink, "shrink")
    finally:
        _core._set_fault_hook(None)
    counted = installed(Hook())
    try:
        m.set_fsync("b", "3")
    except persist.StoreFailedError:
        pass  # the failed state: safe
    else:
        assert "fsync_dir" in counted.calls, (
            f"set_fsync returned after the calls {counted.calls}: the shrink's "
            "rename was never made durable"
        )
    finally:
        _core._set_fault_hook(None)
        with contextlib.suppress(persist.PersistError):
            store.close()
    assert fds_of(db_path) == []
    assert check_file(db_path)["m:a"] == "2"
