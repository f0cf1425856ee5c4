"""Model-based test of the whole public API: a hypothesis state machine drives
a Store (two typed maps and the plain orphan API) against a dict model, with
the background sync and auto-shrink running fast, and checks memory, the file
after close + reopen, and copies of the file taken at any moment (a simulated
crash) against what the model allows.

What the file may hold for a key is tracked precisely (``KeyModel``):

- a synchronous write (``set``, ``set_fsync``, ``delete``, ``update``, ...)
  first puts every earlier async change of the store into the file (call
  order), then its own record: the file then holds exactly that value;
- an async write may or may not be in the file until the next flush
  (a synchronous write of any key, ``sync``, ``fsync_all``, ``close``);
- a memory-only change (``set_in_memory``, ``update_in_memory``) is in the
  file only if a shrink (auto-shrink may run at any moment) wrote it, or a
  later write of the key did;
- an explicit ``shrink`` writes memory: the file then holds exactly it.

A crash copy must show, for every key, one of the values the model allows at
that moment (a copy taken by another thread during a synchronous write: one
allowed before or after it), and ``persist check`` / ``dump`` must agree with
what the store loads from it; after close + reopen, a key must hold its last
logged value or one of the memory-only values set since (which a shrink may
have written).  Refused writes (bad keys, wrong types) raise their error and
change nothing.

Every step runs in a worker thread joined with a timeout: a deadlock fails
the test (``Hang``, listing the steps and every thread's stack) instead of
stalling the run.  A failure's report lists the steps taken (timing-dependent
failures may also be reported by hypothesis as flaky; the first failure and
its steps come first).  ``PERSIST_MODEL_EXAMPLES`` sets the number of
examples (default 100).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

import persist
from persist import cli


@attrs.define
class Rec:
    """A mutable attrs value (update functions mutate their copy in place)."""

    name: str
    n: int
    tags: list[str] = attrs.field(factory=list)


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()

MAPS = {"recs": Rec, "ints": int}
# few keys, so writes collide; "" is a valid map key; "a" is also an orphan
KEYS = ["a", "b", "", "ü"]
ORPHAN_KEYS = ["a", "o"]

SYNC_INTERVAL = 0.002
AUTO_SHRINK = (0.005, 1.5)

map_names = st.sampled_from(sorted(MAPS))
keys = st.sampled_from(KEYS)
orphan_keys = st.sampled_from(ORPHAN_KEYS)
recs = st.builds(
    Rec,
    name=st.sampled_from(["x", "y"]),
    n=st.integers(0, 3),
    tags=st.lists(st.sampled_from(["t", "u"]), max_size=2),
)
ints = st.integers(-3, 5)
# (map name, a value of that map's type)
map_values = st.one_of(
    st.tuples(st.just("recs"), recs), st.tuples(st.just("ints"), ints)
)


class Boom(Exception):
    """Raised by update functions."""


# A step that takes longer than this has hung (a deadlock in the store).
HANG_SECONDS = 10.0


class Hang(BaseException):
    """A step of the state machine did not finish in HANG_SECONDS.

    Not an Exception: hypothesis lets it through at once instead of shrinking
    (a hung store cannot be closed, and every retry would wait again); its
    message lists the steps taken and every thread's stack.
    """


def _thread_stacks() -> str:
    frames = sys._current_frames()
    out = []
    for t in threading.enumerate():
        frame = frames.get(t.ident)
        if frame is not None:
            out.append(
                f"--- thread {t.name}\n" + "".join(traceback.format_stack(frame))
            )
    return "\n".join(out)


def bounded(step):
    """Run a step in a worker thread, failing (not stalling) if it hangs."""

    @functools.wraps(step)
    def run(self, *args, **kwargs):
        self.steps.append(f"{step.__name__}{args}{kwargs}")
        outcome: list = []

        def target() -> None:
            try:
                outcome.append((True, step(self, *args, **kwargs)))
            except BaseException as exc:
                outcome.append((False, exc))

        worker = threading.Thread(
            target=target, name=f"step {step.__name__}", daemon=True
        )
        worker.start()
        worker.join(HANG_SECONDS)
        if worker.is_alive():
            self.hung = True
            # the exit hook would close the hung store and hang the run
            open_stores = getattr(persist.store, "_open_stores", None)
            if open_stores is not None:
                open_stores.discard(self.store)
            report = (
                f"step {step.__name__} hung for {HANG_SECONDS}s.\nsteps so far:\n  "
                + "\n  ".join(self.steps)
                + "\nthreads:\n"
                + _thread_stacks()
            )
            raise Hang(report)
        ok, result = outcome[0]
        if not ok:
            self.failed = True
            if isinstance(result, Exception):  # a replayable record of the run
                result.add_note(
                    "steps (the last one failed):\n  " + "\n  ".join(self.steps)
                )
            raise result
        return result

    return run


def run_cli(*argv: str) -> tuple[int, str]:
    """The command line (its own entry point) in this process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli.main(list(argv))
    return code, out.getvalue()


def copy_value(value: object) -> object:
    """An equal, independent copy (the store keeps values by reference)."""
    if isinstance(value, Rec):
        return Rec(value.name, value.n, list(value.tags))
    return value


def same(a: object, b: object) -> bool:
    """Equality that tells apart 0 / False and a Rec from anything else."""
    return type(a) is type(b) and a == b


def member(value: object, allowed: list[object]) -> bool:
    return any(same(value, x) for x in allowed)


class KeyModel:
    """One key: its memory value and the values its file record may hold."""

    def __init__(self) -> None:
        self.mem: object = ABSENT
        self.last: object = ABSENT  # the value of the key's last logged write
        self.since: list[object] = []  # memory-only values set after it
        self.possible: list[object] = [ABSENT]  # what the file may hold now

    def log_sync(self, value: object) -> None:
        self.mem = self.last = value
        self.since = []
        self.possible = [value]

    def log_async(self, value: object) -> None:
        self.mem = self.last = value
        self.since = []
        self.possible.append(value)

    def memory_only(self, value: object) -> None:
        self.mem = value
        self.since.append(value)
        self.possible.append(value)  # an auto-shrink may write it

    def flushed(self) -> None:
        """Every async change is in the file now."""
        self.possible = [self.last, *self.since]

    def shrunk(self) -> None:
        """The file holds exactly memory."""
        self.log_sync(self.mem)


def make_update_fn(kind: str, payload: object, value_type: type):
    """An update function of the given kind."""

    def mutate(upd) -> None:
        if upd.value is None:
            upd.value = copy_value(payload)
        elif value_type is Rec:
            upd.value.n += 1  # in place: the copy, never the stored value
            upd.value.tags.append("m")
        else:
            upd.value = upd.value + 1

    def fn(upd) -> None:
        if kind == "mutate":
            mutate(upd)
        elif kind == "set":
            upd.set(copy_value(payload))
        elif kind == "delete":
            upd.delete()
        elif kind == "cancel":
            mutate(upd)
            upd.cancel()
        elif kind == "raise":
            mutate(upd)
            raise Boom(kind)
        elif kind == "noop":
            pass
        else:  # pragma: no cover
            raise AssertionError(kind)

    return fn


def expected_update(kind: str, payload: object, current: object, value_type: type):
    """The model of update: (new memory value or ABSENT, changed?, return value).

    ``changed`` False means nothing is stored or written.
    """
    exists = current is not ABSENT
    if kind == "mutate":
        if not exists:
            new = copy_value(payload)
        elif value_type is Rec:
            new = Rec(current.name, current.n + 1, [*current.tags, "m"])
        else:
            new = current + 1
        return new, True, (new, True)
    if kind == "set":
        return copy_value(payload), True, (copy_value(payload), True)
    if kind == "delete":
        return ABSENT, exists, (None, False)
    if kind == "cancel":
        return current, False, (current if exists else None, exists)
    if kind == "noop":
        if not exists:
            return ABSENT, False, (None, False)
        return current, True, (current, True)
    raise AssertionError(kind)


class StoreMachine(RuleBasedStateMachine):
    """The public API of Store / PersistMap against a dict model."""

    base_dir: Path  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.hung = False
        self.failed = False  # a step failed: teardown only closes
        self.steps: list[str] = []
        self.dir = tempfile.mkdtemp(dir=self.base_dir)
        self.path = os.path.join(self.dir, "model.db")
        self.model = {(name, key): KeyModel() for name in MAPS for key in KEYS}
        self.orphans: dict[str, int] = {}
        self.errors: list[BaseException] = []
        self.crash_copies = 0
        self.store: persist.Store | None = None
        self.maps: dict[str, persist.PersistMap] = {}

    # -- helpers ------------------------------------------------------------

    def _open(self) -> None:
        store = persist.Store()
        maps = {name: store.map(name, tp) for name, tp in MAPS.items()}
        store.sync_interval = SYNC_INTERVAL
        store.error_handler = self.errors.append
        store.open(self.path)
        store.start_auto_shrink(*AUTO_SHRINK)
        self.store, self.maps = store, maps

    def _flushed(self, only_map: str | None = None) -> None:
        for (name, _), km in self.model.items():
            if only_map is None or name == only_map:
                km.flushed()

    def _sync_write(self, name: str, key: str, value: object) -> None:
        """A synchronous write: earlier async changes of every key first."""
        self._flushed()
        self.model[name, key].log_sync(copy_value(value))

    def _memory(self, name: str) -> dict[str, object]:
        return {
            key: km.mem
            for (n, key), km in self.model.items()
            if n == name and km.mem is not ABSENT
        }

    def _check_orphans(self, store: persist.Store) -> None:
        for key in ORPHAN_KEYS:
            if key in self.orphans:
                assert same(store.get(key, int), self.orphans[key]), key
            else:
                with pytest.raises(persist.KeyNotFoundError):
                    store.get(key, int)

    # -- lifecycle ----------------------------------------------------------

    @initialize()
    @bounded
    def open_store(self) -> None:
        self._open()

    @bounded
    def close_and_check(self) -> None:
        self.store.close()
        assert not self.errors, self.errors
        self._reopen_and_check(keep_open=False)

    def teardown(self) -> None:
        if self.hung:  # the store cannot be closed: leave it to the daemon threads
            return
        try:
            if self.store is not None and not self.store.closed:
                if self.failed:  # report the step's failure, not a follow-up
                    closer = threading.Thread(target=self.store.close, daemon=True)
                    closer.start()
                    closer.join(HANG_SECONDS)
                else:
                    self.close_and_check()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    @invariant()
    def background_work_never_failed(self) -> None:
        assert not self.errors, self.errors

    @invariant()
    @bounded
    def memory_equals_model(self) -> None:
        for name, m in self.maps.items():
            got = dict(m.items())
            want = self._memory(name)
            assert got.keys() == want.keys(), (name, got, want)
            for key, value in want.items():
                assert same(got[key], value), (name, key, got[key], value)

    # -- writes -------------------------------------------------------------

    @rule(mv=map_values, key=keys, how=st.sampled_from(["set", "set_fsync", "setitem"]))
    @bounded
    def set_sync(self, mv, key, how) -> None:
        name, value = mv
        m = self.maps[name]
        if how == "setitem":
            m[key] = value
        else:
            assert getattr(m, how)(key, value) is None
        self._sync_write(name, key, value)

    @rule(mv=map_values, key=keys)
    @bounded
    def set_async(self, mv, key) -> None:
        name, value = mv
        assert self.maps[name].set_async(key, value) is None
        self.model[name, key].log_async(copy_value(value))

    @rule(mv=map_values, key=keys)
    @bounded
    def set_in_memory(self, mv, key) -> None:
        name, value = mv
        assert self.maps[name].set_in_memory(key, value) is None
        self.model[name, key].memory_only(copy_value(value))

    @rule(
        name=map_names,
        key=keys,
        how=st.sampled_from(["delete", "delete_fsync", "delitem"]),
    )
    @bounded
    def delete_sync(self, name, key, how) -> None:
        km = self.model[name, key]
        existed = km.mem is not ABSENT
        m = self.maps[name]
        if how == "delitem":
            if existed:
                del m[key]
            else:
                with pytest.raises(KeyError):
                    del m[key]
        else:
            assert getattr(m, how)(key) is existed
        if existed:  # an absent key: nothing is written
            self._sync_write(name, key, ABSENT)

    @rule(name=map_names, key=keys)
    @bounded
    def delete_async(self, name, key) -> None:
        km = self.model[name, key]
        existed = km.mem is not ABSENT
        assert self.maps[name].delete_async(key) is existed
        if existed:
            km.log_async(ABSENT)

    @rule(
        mv=map_values,
        key=keys,
        how=st.sampled_from(
            ["update", "update_fsync", "update_async", "update_in_memory"]
        ),
        kind=st.sampled_from(["mutate", "set", "delete", "cancel", "raise", "noop"]),
    )
    @bounded
    def update(self, mv, key, how, kind) -> None:
        name, payload = mv
        tp = MAPS[name]
        km = self.model[name, key]
        fn = make_update_fn(kind, payload, tp)
        m = self.maps[name]
        if kind == "raise":
            with pytest.raises(Boom):
                getattr(m, how)(key, fn)
            return  # map and file unchanged (checked by the invariants)
        result = getattr(m, how)(key, fn)
        new, changed, want = expected_update(kind, payload, km.mem, tp)
        assert type(result) is tuple and len(result) == 2, result
        assert same(result[0], want[0]) and result[1] is want[1], (result, want)
        if not changed:
            return
        if how == "update_in_memory":
            km.memory_only(copy_value(new))
        elif how == "update_async":
            km.log_async(copy_value(new))
        else:
            self._sync_write(name, key, new)

    @rule(
        name=map_names,
        how=st.sampled_from(
            [
                "set",
                "set_async",
                "set_fsync",
                "set_in_memory",
                "delete",
                "delete_async",
                "delete_fsync",
                "update",
                "update_async",
                "update_fsync",
                "update_in_memory",
            ]
        ),
        bad=st.sampled_from(
            [
                "control",
                "del",
                "c1",
                "surrogate",
                "not str",
                "wrong type",
                "bool",
                "field",
            ]
        ),
        key=keys,
    )
    @bounded
    def refused_write(self, name, how, bad, key) -> None:
        """A bad key or value raises its error and changes nothing (memory is
        checked by the invariant, the file by every later reopen and copy)."""
        tp = MAPS[name]
        good = Rec("x", 1) if tp is Rec else 1
        if bad in ("control", "del", "c1", "surrogate", "not str"):
            key = {
                "control": key + "\x00",
                "del": "\x7f" + key,
                "c1": key + "\x85",
                "surrogate": "\ud800" + key,
                "not str": 7,
            }[bad]
            value = good
            error = TypeError if bad == "not str" else persist.InvalidKeyError
        elif how.startswith("delete"):
            return  # a delete takes no value
        elif bad == "field":
            key, value, error = (
                key,
                (Rec("x", "1") if tp is Rec else "1"),
                (persist.EncodeError if tp is Rec else TypeError),
            )
        else:
            value = {
                "wrong type": 1 if tp is Rec else "1",
                "bool": True if tp is int else Rec("x", True),
            }[bad]
            error = (
                TypeError if (tp is int or bad == "wrong type") else persist.EncodeError
            )
        call = getattr(self.maps[name], how)
        with pytest.raises(error):
            if how.startswith("update"):
                call(key, lambda upd: upd.set(value))
            elif how.startswith("delete"):
                call(key)
            else:
                call(key, value)

    @rule(
        key=st.sampled_from(["a:b", "", "o\x01", ":o", 7]),
        how=st.sampled_from(["set", "delete"]),
    )
    @bounded
    def store_refused(self, key, how) -> None:
        """The plain API refuses keys with ':', the empty key, control
        characters (InvalidKeyError) and non-str keys (TypeError)."""
        error = TypeError if not isinstance(key, str) else persist.InvalidKeyError
        with pytest.raises(error):
            if how == "set":
                self.store.set(key, 1)
            else:
                self.store.delete(key)

    # -- plain Store API (orphans) ------------------------------------------

    @rule(key=orphan_keys, value=ints)
    @bounded
    def store_set(self, key, value) -> None:
        assert self.store.set(key, value) is None
        self._flushed()
        self.orphans[key] = value

    @rule(key=orphan_keys)
    @bounded
    def store_delete(self, key) -> None:
        existed = key in self.orphans
        assert self.store.delete(key) is existed
        if existed:
            self._flushed()
            del self.orphans[key]

    @rule(key=orphan_keys)
    @bounded
    def store_get(self, key) -> None:
        if key in self.orphans:
            assert same(self.store.get(key, int), self.orphans[key])
        else:
            with pytest.raises(persist.KeyNotFoundError):
                self.store.get(key, int)

    # -- reads --------------------------------------------------------------

    @rule(name=map_names, key=keys)
    @bounded
    def get(self, name, key) -> None:
        m = self.maps[name]
        want = self.model[name, key].mem
        sentinel = object()
        if want is ABSENT:
            assert m.get(key) is None
            assert m.get(key, sentinel) is sentinel
            assert key not in m
            with pytest.raises(KeyError):
                m[key]
        else:
            assert same(m.get(key), want)
            assert same(m[key], want)
            assert key in m

    @rule(name=map_names)
    @bounded
    def listings(self, name) -> None:
        m = self.maps[name]
        want = self._memory(name)
        assert len(m) == len(want) == m.size()
        assert sorted(m.keys()) == sorted(want)
        assert sorted(iter(m)) == sorted(want)
        items = m.items()
        assert len(items) == len(want)
        for key, value in items:
            assert same(value, want[key])
        values = m.values()
        assert len(values) == len(want)
        for value in want.values():
            assert member(value, values)
        seen: list = []
        assert m.range(lambda k, v: seen.append((k, v))) is None  # None goes on
        assert sorted(k for k, _ in seen) == sorted(want)
        for key, value in seen:
            assert same(value, want[key])
        calls: list = []
        m.range(lambda k, v: calls.append(k) or False)  # False stops at once
        assert len(calls) == min(1, len(want))
        zeros: list = []
        m.range(lambda k, v: zeros.append(k) or 0)  # only False stops
        assert len(zeros) == len(want)

    @rule()
    @bounded
    def stats(self) -> None:
        live = sum(km.mem is not ABSENT for km in self.model.values())
        assert self.store.stats().active_keys == live + len(self.orphans)

    # -- flushing, shrink, reopen, crash --------------------------------------

    @rule(how=st.sampled_from(["map.sync", "store.sync", "fsync_all"]), name=map_names)
    @bounded
    def sync(self, how, name) -> None:
        if how == "map.sync":
            assert self.maps[name].sync() is None
            self._flushed(only_map=name)  # this map's at least
        elif how == "store.sync":
            assert self.store.sync() is None
            self._flushed()
        else:
            assert self.store.fsync_all() is None
            self._flushed()

    @rule()
    @bounded
    def shrink(self) -> None:
        deadline = time.monotonic() + 10.0
        while True:  # the auto-shrink may be running: retry
            try:
                self.store.shrink()
                break
            except persist.ShrinkInProgressError:
                assert time.monotonic() < deadline, "shrink never got its turn"
                time.sleep(0.0005)
        for km in self.model.values():
            km.shrunk()
        assert not os.path.exists(self.path + ".shrink-tmp")

    def _reopen_and_check(self, keep_open: bool) -> None:
        """Open the closed file: each key holds what the model allows."""
        store = persist.Store()
        maps = {name: store.map(name, tp) for name, tp in MAPS.items()}
        store.sync_interval = SYNC_INTERVAL
        store.error_handler = self.errors.append
        store.open(self.path)
        try:
            with pytest.raises(persist.PersistError):
                store.open(self.path)  # already open
            with pytest.raises(persist.MapExistsError):
                store.map("ints", int)
            for name, m in maps.items():
                assert set(m.keys()) <= set(KEYS), (name, m.keys())
            for (name, key), km in self.model.items():
                got = maps[name].get(key, ABSENT)
                # close flushed every async change; memory-only values since
                # the last logged write are there only if a shrink wrote them
                allowed = [km.last, *km.since]
                assert member(got, allowed), (name, key, got, allowed)
                km.log_sync(copy_value(got))  # the model follows the file
            self._check_orphans(store)
        except BaseException:
            store.close()
            raise
        if keep_open:
            store.start_auto_shrink(*AUTO_SHRINK)
            self.store, self.maps = store, maps
        else:
            store.close()

    @rule()
    @bounded
    def close_and_reopen(self) -> None:
        self.store.close()
        assert self.store.closed
        self.store.close()  # twice: a no-op
        with pytest.raises(persist.NotOpenError):
            self.maps["ints"].set("a", 1)
        with pytest.raises(persist.NotOpenError):
            self.maps["recs"].delete_async("a")
        with pytest.raises(persist.NotOpenError):
            self.store.set("o", 1)
        assert not os.path.exists(self.path + ".shrink-tmp")
        self._reopen_and_check(keep_open=True)

    @rule()
    @bounded
    def crash_copy(self) -> None:
        """Copy the file as it is now (background work running) and open the
        copy: every key holds a value the model allows at this moment."""
        self._check_crash_copy(Path(self.path).read_bytes())

    @rule(
        first=map_values,
        key1=keys,
        first_how=st.sampled_from(["set_async", "update_async", "delete_async"]),
        second=map_values,
        key2=keys,
        second_how=st.sampled_from(["set", "update", "delete", "Store.set"]),
        orphan=orphan_keys,
    )
    @bounded
    def async_then_sync_then_crash(
        self, first, key1, first_how, second, key2, second_how, orphan
    ) -> None:
        """An async change, at once a synchronous write (of any key), at once a
        copy of the file, before the background sync can run: the async change
        must be in the copy (call order), the synchronous write too."""
        name1, v1 = first
        km1 = self.model[name1, key1]
        m1 = self.maps[name1]
        if first_how == "set_async":
            m1.set_async(key1, v1)
            km1.log_async(copy_value(v1))
        elif first_how == "update_async":
            new1 = copy_value(v1)
            m1.update_async(key1, lambda upd: upd.set(new1))
            km1.log_async(copy_value(v1))
        elif m1.delete_async(key1):
            km1.log_async(ABSENT)
        name2, v2 = second
        km2 = self.model[name2, key2]
        m2 = self.maps[name2]
        if second_how == "Store.set":
            self.store.set(orphan, v2 if isinstance(v2, int) else v2.n)
            self._flushed()
            self.orphans[orphan] = v2 if isinstance(v2, int) else v2.n
        elif second_how == "delete" and km2.mem is not ABSENT:
            assert m2.delete(key2) is True
            self._sync_write(name2, key2, ABSENT)
        elif second_how == "update":
            new2 = copy_value(v2)
            m2.update(key2, lambda upd: upd.set(new2))
            self._sync_write(name2, key2, v2)
        else:
            m2.set(key2, v2)
            self._sync_write(name2, key2, v2)
        self._check_crash_copy(Path(self.path).read_bytes())

    @rule(
        mv=map_values,
        key=keys,
        how=st.sampled_from(["set", "set_fsync", "delete", "update"]),
        delay=st.sampled_from([0.0, 1e-5, 1e-4, 1e-3]),
    )
    @bounded
    def copy_during_sync_write(self, mv, key, how, delay) -> None:
        """A copy of the file taken by another thread while a synchronous
        write runs holds, for every key, a value allowed before or after it."""
        name, value = mv
        before = {where: list(km.possible) for where, km in self.model.items()}
        copied: list[bytes] = []

        def copier() -> None:
            time.sleep(delay)
            copied.append(Path(self.path).read_bytes())

        thread = threading.Thread(target=copier, daemon=True)
        thread.start()
        m = self.maps[name]
        km = self.model[name, key]
        if how == "delete":
            existed = km.mem is not ABSENT
            assert m.delete(key) is existed
            if existed:
                self._sync_write(name, key, ABSENT)
        elif how == "update":
            new = copy_value(value)
            assert same(m.update(key, lambda upd: upd.set(new))[0], value)
            self._sync_write(name, key, value)
        else:
            getattr(m, how)(key, value)
            self._sync_write(name, key, value)
        thread.join(HANG_SECONDS)
        assert not thread.is_alive(), "reading the file hung"
        allowed = {
            where: before[where] + self.model[where].possible for where in before
        }
        self._check_crash_copy(copied[0], allowed)

    def _check_crash_copy(
        self, data: bytes, allowed: dict[tuple[str, str], list] | None = None
    ) -> None:
        """Open a copy of the file's bytes: every key holds a value the model
        allows now (or the values in allowed)."""
        self.crash_copies += 1
        copy = os.path.join(self.dir, f"crash{self.crash_copies}.db")
        Path(copy).write_bytes(data)
        store = persist.Store()
        maps = {name: store.map(name, tp) for name, tp in MAPS.items()}
        store.sync_interval = 3600.0
        store.open(copy)  # no CorruptWALError, whatever the moment
        try:
            for name, m in maps.items():
                assert set(m.keys()) <= set(KEYS), (name, m.keys())
            for (name, key), km in self.model.items():
                got = maps[name].get(key, ABSENT)
                ok = km.possible if allowed is None else allowed[name, key]
                assert member(got, ok), (name, key, got, ok)
            self._check_orphans(store)
            loaded = {
                (name, key): value
                for name, m in maps.items()
                for key, value in m.items()
            }
            loaded.update(
                ((None, key), store.get(key, int))
                for key in ORPHAN_KEYS
                if key in self.orphans
            )
        finally:
            store.close()
        # the command line reads the copy as the store does
        code, out = run_cli("check", copy)
        assert code == 0, out  # sound, or only a torn tail
        code, out = run_cli("dump", copy)
        assert code == 0, out
        dumped = {}
        for line in out.splitlines():
            record = json.loads(line)
            dumped[record["map"], record["key"]] = record["value"]
        assert dumped == {
            where: attrs.asdict(v) if isinstance(v, Rec) else v
            for where, v in loaded.items()
        }, out
        os.unlink(copy)


@pytest.fixture
def switch_often():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


@pytest.mark.usefixtures("switch_often")
def test_store_against_model(tmp_path):
    """Random sequences of every API call agree with the dict model in memory,
    after close + reopen, and in copies of the file taken at any moment."""
    StoreMachine.base_dir = tmp_path
    run_state_machine_as_test(
        StoreMachine,
        settings=settings(
            max_examples=int(os.environ.get("PERSIST_MODEL_EXAMPLES", "100")),
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
