"""Store lifecycle under races: close, shrink, fork, update functions, signals.

Each race runs in a CHILD interpreter (``run_child``), so a hang or a crash
fails one test instead of taking pytest down:

- the child calls ``childlib.harden``: faulthandler dumps every thread's stack
  and exits the child 2 s before its timeout (and prints the stack of a
  segfault, exit code -11); the parent's assertion message carries the
  child's exit code, stdout and stderr;
- a wait the child itself bounds (a thread join, an Event) that runs out
  dumps the stacks and exits 3 (``childlib.hung``); a broken invariant exits 2
  with a message (``childlib.fail`` or an uncaught AssertionError), skipping
  the exit hook so a wedged store cannot turn a failure into a hang.

How the races are widened (in every child):

- ``sys.setswitchinterval(1e-6)``: the GIL changes hands every microsecond;
- the background sync runs every 2 ms (1 ms for the call-order tests) and,
  where shrink is part of the race, auto-shrink checks every 5 ms with
  ratio 1.1 (``childlib.fast_store``); the call-order tests run without it
  (a shrink rewrites the file, so the order of records could not be checked)
  and the close-racing-writers test leaves it to the shrink-racing-close one,
  so that a failure names its cause;
- the call-order tests also keep a key of a map that is drained first held
  by an update fn with an async change of it pending (so a drain that
  started stalls there), and leave a 0.5 ms gap between the async change
  and the synchronous write in every other round;
- the update-fn tests make every fn first change its own key with
  set_async, so the key it holds has a pending change that every drain
  (sync, fsync_all, another map's synchronous write, the background sync)
  must get past;
- values are ``childlib.SlowValue``, whose registered codec sleeps 0.2 ms in
  encode with the GIL released: every write spends that long between
  entering the store and queueing its record, while close, shrink and the
  background threads run;
- each race repeats in a loop inside the child, a fresh file per round, with
  a random delay before the close, for a time budget of a few seconds.

Every check is on behaviour: exception types, exit codes, the file's records
(order and contents) and what a fresh open in the same process reads.
A few cheap checks run in-process at the end of the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import fds_of, live_records, python_env, read_bytes, run_threads

import persist

TESTS_DIR = Path(__file__).resolve().parent

# Seconds a child may run before it dumps its stacks and exits (a hang).
CHILD_TIMEOUT = 20.0

PRELUDE = """\
import sys
sys.path.append({tests!r})
import childlib
childlib.install_excepthook()
childlib.harden({timeout!r})
"""


def _describe(rc: object, stdout: str, stderr: str) -> str:
    what = {
        -11: " (SIGSEGV: the interpreter crashed)",
        -6: " (SIGABRT)",
        1: " (faulthandler timeout: the child hung; stacks below)",
        2: " (an invariant broke)",
        3: " (a bounded wait ran out: hang)",
    }
    if rc == 1 and "Timeout (" not in stderr:
        what[1] = " (an error; see stderr)"
    return (
        f"child exit code {rc}{what.get(rc, '')}\n"
        f"--- stdout ---\n{stdout[-4000:]}\n--- stderr ---\n{stderr[-12000:]}"
    )


def run_child(body: str, tmp_path: Path, timeout: float = CHILD_TIMEOUT) -> dict:
    """Run ``body`` in a fresh interpreter (sys.argv[1] = tmp_path); it must
    exit 0 and print childlib.report's line, whose stats are returned."""
    code = PRELUDE.format(tests=str(TESTS_DIR), timeout=timeout) + textwrap.dedent(body)
    try:
        proc = subprocess.run(
            [sys.executable, "-P", "-c", code, str(tmp_path)],
            env=python_env(),
            capture_output=True,
            text=True,
            timeout=timeout + 10,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(
            "child still running after its timeout\n" + _describe(None, out, err)
        )
    assert proc.returncode == 0, _describe(proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("CHILD-OK ")]
    assert lines, "child exited 0 without its report\n" + _describe(
        proc.returncode, proc.stdout, proc.stderr
    )
    stats = json.loads(lines[-1][len("CHILD-OK ") :])
    print("child stats:", stats)  # shown with -s / -rA
    return stats


# ==========================================================================
# 1. close() racing writers
# ==========================================================================

# A writer thread's model: the last acknowledged value of each of its keys
# (None = deleted). A call that raised NotOpenError may or may not have
# reached the file; it is the thread's last call (every later one raises too).
WRITERS = """
import random, threading, time
import persist
from childlib import SlowValue, fail

OPS = ("set", "set_async", "set_fsync", "delete", "delete_async", "update",
       "update_async", "update_fsync", "store_set", "store_delete")

def writer(store, m, t, seed, ops=OPS):
    r = random.Random(seed)
    acked = {}          # fullkey -> v (None: deleted)
    n = 0
    while True:
        op = r.choice(ops)
        v = f"{t}/{n}"
        k = f"t{t}-{r.randrange(5)}"
        if op.startswith("store_"):
            full = f"o{k}"
        else:
            full = f"m:{k}"
        newv = None if op in ("delete", "delete_async", "store_delete") else v
        try:
            res = None
            if op == "set":
                m.set(k, SlowValue(v))
            elif op == "set_async":
                m.set_async(k, SlowValue(v))
            elif op == "set_fsync":
                m.set_fsync(k, SlowValue(v))
            elif op == "delete":
                res = m.delete(k)
            elif op == "delete_async":
                res = m.delete_async(k)
            elif op == "update":
                res = m.update(k, lambda u, v=v: u.set(SlowValue(v)))
            elif op == "update_async":
                res = m.update_async(k, lambda u, v=v: u.set(SlowValue(v)))
            elif op == "update_fsync":
                res = m.update_fsync(k, lambda u, v=v: u.set(SlowValue(v)))
            elif op == "store_set":
                store.set(f"o{k}", SlowValue(v))
            elif op == "store_delete":
                res = store.delete(f"o{k}")
        except persist.NotOpenError:
            return acked, (full, newv), n
        except BaseException as exc:
            fail(f"thread {t}: {op}({k!r}) raised {exc!r} (only NotOpenError may)")
        # this thread is the only writer of its keys: it knows the answers
        if "delete" in op:
            exists = acked.get(full) is not None
            if res is not exists:
                state = "exists" if exists else "does not exist"
                fail(f"thread {t}: {op}({k!r}) returned {res!r}, but the key "
                     f"{state} (value {acked.get(full)!r})")
        elif op.startswith("update") and res != (SlowValue(v), True):
            fail(f"thread {t}: {op}({k!r}) returned {res!r}, want "
                 f"{(SlowValue(v), True)!r}")
        acked[full] = newv
        n += 1
        if n > 200000:
            fail(f"thread {t}: writes never started failing after close()")

def check_file(path, results, state):
    for acked, (pkey, pv), n in results:
        for key, v in acked.items():
            allowed = {v, pv} if key == pkey else {v}
            if state.get(key) not in allowed:
                fail(f"{path}: {key} is {state.get(key)!r} in the file, "
                     f"acknowledged {v!r} (allowed {allowed!r})")
        if pkey not in acked and state.get(pkey) not in (None, pv):
            fail(f"{path}: {pkey} is {state.get(pkey)!r}, never written but {pv!r}")
"""


@pytest.mark.parametrize(
    "ops",
    [
        pytest.param("OPS", id="all_writes"),
        pytest.param(
            '("set_async", "delete_async", "update_async")', id="async_writes"
        ),
        pytest.param('("store_set", "store_delete", "set")', id="plain_api"),
    ],
)
def test_close_racing_writers_acknowledged_writes_reach_file(tmp_path, ops):
    """Seven threads write (set, set_async, set_fsync, delete, delete_async,
    update, update_async, update_fsync, Store.set, Store.delete) while the
    main thread closes after a random delay: every call returns (with the
    right result; its change is in the file after a reopen in the same
    process) or raises NotOpenError; after close every write raises
    NotOpenError; no crash, no hang. (Also with only the async writes, and
    with only the plain Store API, to tell failures apart.)"""
    stats = run_child(
        WRITERS
        + f"OPS_HERE = {ops}\n"
        + """
import os, sys, time, random
from childlib import fast_store, replay, reopen_items, start, join_all, report, fail
d = sys.argv[1]
r = random.Random(1)
t0 = time.monotonic()
rounds = acked_total = 0
while time.monotonic() - t0 < 5.0 or rounds < 10:
    path = f"{d}/w{rounds}.db"
    store, (m,) = fast_store(path, "m")
    ws = [start(lambda t=t: writer(store, m, t, rounds * 100 + t, OPS_HERE), f"w{t}")
          for t in range(7)]
    time.sleep(r.uniform(0, 0.03))
    store.close()
    join_all(ws, 10.0, "writers after close()")
    for w in ws:
        if w.error is not None:
            fail(f"writer raised {w.error!r}")
    if not store.closed:
        fail("store.closed is False after close()")
    for name, call in [
        ("set", lambda: m.set("x", SlowValue(1))),
        ("set_async", lambda: m.set_async("x", SlowValue(1))),
        ("set_fsync", lambda: m.set_fsync("x", SlowValue(1))),
        ("delete", lambda: m.delete("x")),
        ("update", lambda: m.update("x", lambda u: u.set(SlowValue(1)))),
        ("sync", lambda: m.sync()),
        ("Store.set", lambda: store.set("x", SlowValue(1))),
        ("Store.delete", lambda: store.delete("x")),
        ("fsync_all", lambda: store.fsync_all()),
        ("shrink", lambda: store.shrink()),
    ]:
        try:
            call()
        except persist.NotOpenError:
            pass
        else:
            fail(f"{name} after close() did not raise NotOpenError")
    results = [w.result for w in ws]
    acked_total += sum(n for _, _, n in results)
    state = replay(path)
    check_file(path, results, state)
    # a reopen in this process works and reads what the file says
    got = reopen_items(path, "m")["m"]
    want = {k[2:]: v for k, v in state.items() if k.startswith("m:")}
    if got != want:
        fail(f"reopen reads {got!r}, file replays to {want!r}")
    rounds += 1
report(rounds=rounds, acked=acked_total)
""",
        tmp_path,
    )
    assert stats["rounds"] >= 10 and stats["acked"] > 0, stats


# ==========================================================================
# 2. shrink() racing close()
# ==========================================================================


def test_shrink_racing_close_loses_nothing_and_leaks_nothing(tmp_path):
    """Writers, a thread calling shrink() in a loop and auto-shrink (5 ms,
    ratio 1.1) run while the main thread closes: shrink returns or raises
    NotOpenError / ShrinkInProgressError; every acknowledged write is in the
    file; after close no descriptor is open on the path (or the temp file),
    no ``.shrink-tmp`` is left and a reopen in the same process works."""
    stats = run_child(
        WRITERS
        + """
import os, sys, time, random
from childlib import (
    fast_store, replay, reopen_items, start, join_all, report, fail, fds_on,
)
d = sys.argv[1]
r = random.Random(2)
done = {"ok": 0, "notopen": 0, "inprogress": 0}

def shrinker(store):
    while True:
        try:
            store.shrink()
            done["ok"] += 1
        except persist.ShrinkInProgressError:
            done["inprogress"] += 1
        except persist.NotOpenError:
            done["notopen"] += 1
            return
        except BaseException as exc:
            fail(f"shrink() raised {exc!r}")

t0 = time.monotonic()
rounds = 0
while time.monotonic() - t0 < 5.0 or rounds < 10:
    path = f"{d}/s{rounds}.db"
    store, (m,) = fast_store(path, "m", shrink=True)
    for i in range(30):
        m.set_async(f"pre{i}", SlowValue(i))
    ws = [start(lambda t=t: writer(store, m, t, rounds * 100 + t,
                                   ("set", "set_fsync", "set_async", "delete",
                                    "update")),
                f"w{t}") for t in range(3)]
    ws.append(start(lambda: shrinker(store), "shrinker"))
    time.sleep(r.uniform(0, 0.04))
    store.close()
    join_all(ws, 10.0, "writers and shrinker after close()")
    for w in ws:
        if w.error is not None:
            fail(f"{w.name} raised {w.error!r}")
    leaked = fds_on(path)
    if leaked:
        fail(f"descriptors still open after close(): {leaked}")
    if os.path.lexists(path + ".shrink-tmp"):
        fail("a .shrink-tmp file was left behind")
    state = replay(path)
    for i in range(30):
        if state.get(f"m:pre{i}") != i:
            fail(f"pre{i} (set_async before close) is {state.get(f'm:pre{i}')!r} in "
                 f"the file")
    check_file(path, [w.result for w in ws[:3]], state)
    try:
        got = reopen_items(path, "m")["m"]
    except persist.StoreLockedError as exc:
        fail(f"reopen after close() in the same process: {exc!r} (leaked lock)")
    want = {k[2:]: v for k, v in state.items() if k.startswith("m:")}
    if got != want:
        fail(f"reopen reads {got!r}, file replays to {want!r}")
    rounds += 1
report(rounds=rounds, **done)
""",
        tmp_path,
    )
    assert stats["rounds"] >= 10 and stats["ok"] > 0, stats


# ==========================================================================
# 3. close() with auto-shrink on
# ==========================================================================


def test_close_of_open_single_map_never_hangs(tmp_path):
    """300 open_single_map (auto-shrink on by default) / write / close
    cycles on one file (background sync at 2 ms in odd cycles, the default
    in even ones; a thread making async changes until close stops it): no
    close hangs and each cycle's writes are in the file. A last store is
    left open for the exit hook, which must close it (and flush it) too."""
    stats = run_child(
        """
import os, sys, time
import persist
from childlib import SlowValue, report, fail, replay, start, join_all
path = sys.argv[1] + "/single.db"
worst = 0.0
for i in range(300):
    m = persist.open_single_map(path, SlowValue)
    if i % 2:
        m.store.sync_interval = 0.002
    def racer(m=m, i=i):
        j = 0
        while True:
            try:
                m.set_async(f"r{j % 5}", SlowValue(i))
            except persist.NotOpenError:
                return
            j += 1
    w = start(racer, "racer")
    m.set_async("a", SlowValue(i))
    m.set("b", SlowValue(i))
    t = time.monotonic()
    m.store.close()
    worst = max(worst, time.monotonic() - t)
    join_all([w], 10.0, "async writer after close()")
    if w.error is not None:
        fail(f"cycle {i}: set_async racing close raised {w.error!r}")
    state = replay(path)
    if state.get(":a") != i or state.get(":b") != i:
        fail(f"cycle {i}: file has a={state.get(':a')!r} b={state.get(':b')!r}")
m = persist.open_single_map(path, SlowValue)
m.set_async("a", SlowValue("exit"))
report(cycles=300, worst_close=worst)
# the exit hook closes m's store
""",
        tmp_path,
    )
    assert stats["cycles"] == 300
    assert live_records(read_bytes(tmp_path / "single.db"))[":a"] == {"v": "exit"}


def test_close_while_auto_shrink_always_due_never_hangs(tmp_path):
    """300 cycles of open / start_auto_shrink(0.001, 1.01) / rewrite one key
    until a shrink ran or 20 ms passed / close: the file always needs a
    shrink, so close() meets the shrink thread in every phase. None hangs and
    the last value of every cycle is in the file."""
    stats = run_child(
        """
import os, sys, time
import persist
from childlib import SlowValue, report, fail, replay
path = sys.argv[1] + "/auto.db"
worst = 0.0
for i in range(300):
    store = persist.Store()
    m = store.map("m", SlowValue)
    store.open(path)
    store.sync_interval = 0.002
    store.start_auto_shrink(0.001, 1.01)
    t = time.monotonic()
    j = 0
    while time.monotonic() - t < 0.02 * (i % 3) / 2:
        m.set("k", SlowValue(i * 1000 + j))
        j += 1
    m.set_async("k", SlowValue(i * 1000 + j))
    t = time.monotonic()
    store.close()
    worst = max(worst, time.monotonic() - t)
    state = replay(path)
    if state.get("m:k") != i * 1000 + j:
        fail(f"cycle {i}: k is {state.get('m:k')!r} in the file, want {i * 1000 + j}")
report(cycles=300, worst_close=worst)
""",
        tmp_path,
    )
    assert stats["cycles"] == 300


# ==========================================================================
# 4. call order: an async change before a synchronous write is in the file first
# ==========================================================================

ORDER_VARIANTS = {
    # name: (what the loop does, (first key, second key) in the file)
    "map_set": (
        "m.set_async(f'a{i}', V(i)); gap(i); m.set(f'b{i}', V(i))",
        "m:a{i}",
        "m:b{i}",
    ),
    "map_set_fsync": (
        "m.set_async(f'a{i}', V(i)); gap(i); m.set_fsync(f'b{i}', V(i))",
        "m:a{i}",
        "m:b{i}",
    ),
    "map_delete": (
        "m.set_async(f'a{i}', V(i)); gap(i); m.delete('gone')",
        "m:a{i}",
        "m:gone@{i}",
    ),
    "map_update": (
        "m.set_async(f'a{i}', V(i)); gap(i); m.update(f'b{i}', lambda u: u.set(V(i)))",
        "m:a{i}",
        "m:b{i}",
    ),
    "store_set": (
        "m.set_async(f'a{i}', V(i)); gap(i); store.set(f'x{i}', V(i))",
        "m:a{i}",
        "x{i}",
    ),
    "store_delete": (
        "m.set_async(f'a{i}', V(i)); gap(i); store.delete('gone')",
        "m:a{i}",
        "gone@{i}",
    ),
    "two_maps": (
        "m.set_async(f'a{i}', V(i)); gap(i); m2.set(f'b{i}', V(i))",
        "m:a{i}",
        "n:b{i}",
    ),
    "same_key": (
        "m.set_async(f's{i}', V(-1)); gap(i); m.set(f's{i}', V(i))",
        None,
        None,
    ),
}


@pytest.mark.parametrize("variant", sorted(ORDER_VARIANTS))
def test_async_change_reaches_file_before_later_sync_write(tmp_path, variant):
    """In one thread, an async change and then a synchronous write (by the
    same map, another map, or the plain Store API), 1,000+ times with the
    background sync at 1 ms and another thread making async changes: in the
    file, the async record always comes first (same key: the synchronous
    value is the last record, and what a reopen reads)."""
    loop, first, second = ORDER_VARIANTS[variant]
    stats = run_child(
        f"""
import sys, time, threading
import persist
from childlib import (
    SlowValue as V, fast_store, records, report, fail, start, join_all,
    reopen_items,
)
path = sys.argv[1] + "/order.db"
store, (f, m, m2) = fast_store(path, "f", "m", "n", sync_interval=0.001)
stop = threading.Event()
def noise():
    j = 0
    while not stop.is_set():
        m.set_async(f"noise{{j % 50}}", V(j))
        m2.set_async(f"noise{{j % 50}}", V(j))
        j += 1
def hold_f(u):
    # holds a shard of f (drained first) with an async change pending in it:
    # a drain that started before our set_async stalls here
    f.set_async("x", V(0))
    time.sleep(0.0005)
    u.cancel()
def noise_f():
    while not stop.is_set():
        f.update("x", hold_f)
nz = [start(noise, "noise"), start(noise_f, "noise_f")]
def gap(i):
    # every other round, let the background sync start a drain in between
    if i % 2:
        time.sleep(0.0005)
t0 = time.monotonic()
i = 0
while i < 1000 or (time.monotonic() - t0 < 3.0 and i < 5000):
    if {variant!r} == "map_delete":
        m.set("gone", V(i))
    if {variant!r} == "store_delete":
        store.set("gone", V(i))
    {loop}
    i += 1
n = i
stop.set()
join_all(nz, 10.0, "noise threads")
store.close()
recs = records(path)
first, second = {first!r}, {second!r}
bad = []
if first is None:
    last = {{}}
    for kind, key, value in recs:
        last[key] = value
    for i in range(n):
        if last.get(f"m:s{{i}}") != b'{{"v":%d}}' % i:
            bad.append((i, last.get(f"m:s{{i}}")))
    got = reopen_items(path, "m")["m"]
    for i in range(n):
        if got.get(f"s{{i}}") != i:
            bad.append(("reopen", i, got.get(f"s{{i}}")))
else:
    pos = {{}}
    deletes = 0
    for idx, (kind, key, value) in enumerate(recs):
        if kind == "D" and key in ("m:gone", "gone"):
            key = f"{{key}}@{{deletes}}"
            deletes += 1
        pos.setdefault(key, idx)
    for i in range(n):
        a, b = pos.get(first.format(i=i)), pos.get(second.format(i=i))
        if a is None or b is None or not a < b:
            bad.append((i, a, b))
if bad:
    fail(f"{{len(bad)}} of {{n}} rounds out of call order (round, pos first, pos "
         f"second): {{bad[:10]}}")
report(rounds=n)
""",
        tmp_path,
    )
    assert stats["rounds"] >= 1000


# ==========================================================================
# 5. update functions that call back into the store
# ==========================================================================

# Every fn first makes an async change of its own key: its shard (held by the
# fn) then has a pending change, which any drain (sync, fsync_all, a
# synchronous write elsewhere, the background sync) must get past.
OWN = "m.set_async(key, V(-v)); "

UPDATE_FN_BODIES = {
    "map_sync": OWN + "m.set_async(f'{key}-side', V(v)); m.sync()",
    "fsync_all": OWN + "m.set_async(f'{key}-side', V(v)); store.fsync_all()",
    "shrink": OWN + "m.set_async(f'{key}-side', V(v)); shrink_outcome(store)",
    "other_keys_same_map": OWN
    + (
        "m.set(f'{key}-side', V(v)); m.set_async(f'{key}-a', V(v)); "
        "m.set_fsync(f'{key}-f', V(v)); m.delete(f'{key}-gone'); "
        "m.update(f'{key}-u', lambda u2: u2.set(V(v)))"
    ),
    "other_map": OWN
    + (
        "m2.set(f'{key}-side', V(v)); m2.set_async(f'{key}-a', V(v)); "
        "m2.set_fsync(f'{key}-f', V(v)); "
        "m2.update(f'{key}-u', lambda u2: u2.set(V(v))); "
        "store.set(f'o{key}', V(v))"
    ),
    "thread_writing_other_map": OWN + "in_thread(lambda: (m2.set(f'{key}-side', V(v)), "
    "m2.set_fsync(f'{key}-f', V(v)), m2.set_async(f'{key}-a', V(v)), "
    "m2.update(f'{key}-u', lambda u2: u2.set(V(v)))))",
}

# which records the body writes besides the update's own: fullkey templates
UPDATE_FN_WRITES = {
    "map_sync": ["m:{key}-side"],
    "fsync_all": ["m:{key}-side"],
    "shrink": ["m:{key}-side"],
    "other_keys_same_map": ["m:{key}-side", "m:{key}-a", "m:{key}-f", "m:{key}-u"],
    "other_map": ["n:{key}-side", "n:{key}-a", "n:{key}-f", "n:{key}-u", "o{key}"],
    "thread_writing_other_map": ["n:{key}-side", "n:{key}-f", "n:{key}-a", "n:{key}-u"],
}


@pytest.mark.parametrize("what", sorted(UPDATE_FN_BODIES))
def test_update_fn_calling_back_into_store_returns(tmp_path, what):
    """Three threads run update functions that call back into the store (map
    sync, fsync_all, shrink, writes to other keys and maps, a thread writing
    another map that the fn joins), while background sync (2 ms) and
    auto-shrink (5 ms) run: every update returns; its writes are in the file."""
    body = UPDATE_FN_BODIES[what]
    writes = UPDATE_FN_WRITES[what]
    writes_other_keys = any(w.startswith("m:") for w in writes)
    stats = run_child(
        f"""
import sys, time, threading
import persist
from childlib import SlowValue as V, fast_store, replay, report, fail, start, join_all
path = sys.argv[1] + "/upd.db"
store, (m, m2) = fast_store(path, "m", "n", shrink=True)
shrinks = {{"ok": 0, "inprogress": 0}}
deadlocks = [0]

def shrink_outcome(store):
    try:
        store.shrink()
        shrinks["ok"] += 1
    except persist.ShrinkInProgressError:
        shrinks["inprogress"] += 1

def in_thread(fn):
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    t.join(5.0)
    if t.is_alive():
        fail("the update fn's helper thread (writing another map) did not finish in "
             "5 s")

def worker(t):
    done = {{}}
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0 or n < 10:
        key, v = f"k{{t}}", n
        m.set(f"{{key}}-gone", V(v))
        def fn(u):
            {body}
            u.set(V(v))
        while True:
            t1 = time.monotonic()
            try:
                res = m.update(key, fn)
                break
            except persist.DeadlockError as exc:
                # only where two fns may really wait on each other: a write
                # to another key of the same map (that key, or its lock
                # shard, may be held by the other fn); at once, then retried
                if not {writes_other_keys!r} or time.monotonic() - t1 > 1.0:
                    fail(f"update raised {{exc!r}} after "
                         f"{{time.monotonic() - t1:.2f}}s")
                deadlocks[0] += 1
        if res != (V(v), True):
            fail(f"update returned {{res!r}}")
        done[key] = v
        n += 1
    return done, n

ws = [start(lambda t=t: worker(t), f"u{{t}}") for t in range(3)]
join_all(ws, 12.0, "update functions")
for w in ws:
    if w.error is not None:
        fail(f"{{w.name}} raised {{w.error!r}}")
store.close()
state = replay(path)
total = 0
for w in ws:
    done, n = w.result
    total += n
    for key, v in done.items():
        for full in ["m:" + key] + [f.format(key=key) for f in {writes!r}]:
            if state.get(full) != v:
                fail(f"{{full}} is {{state.get(full)!r}} in the file, want {{v}}")
report(updates=total, deadlock_errors=deadlocks[0], **shrinks)
""",
        tmp_path,
    )
    assert stats["updates"] >= 30, stats
    if what == "shrink":
        assert stats["ok"] > 0, stats


def test_sync_write_to_one_map_does_not_wait_for_update_on_another(tmp_path):
    """While an update fn on map m holds its key (blocked on an Event, after
    making async changes in m), set / set_fsync / delete / update on map n
    each return within 1 s; 20 rounds."""
    stats = run_child(
        """
import sys, time, threading
import persist
from childlib import SlowValue as V, fast_store, replay, report, fail, start, join_all
path = sys.argv[1] + "/block.db"
store, (m, m2) = fast_store(path, "m", "n", shrink=True)
worst = 0.0
for r in range(20):
    held, release = threading.Event(), threading.Event()
    def fn(u, r=r):
        m.set_async("k", V(-r))
        m.set_async(f"side{r}", V(r))
        held.set()
        if not release.wait(10.0):
            fail("never released")
        u.set(V(r))
    a = start(lambda: m.update("k", fn), "holder")
    if not held.wait(5.0):
        fail("the update fn never started")
    time.sleep(0.005)
    for name, call in [
        ("set", lambda: m2.set(f"x{r}", V(r))),
        ("set_fsync", lambda: m2.set_fsync(f"y{r}", V(r))),
        ("delete", lambda: m2.delete(f"x{r}")),
        ("update", lambda: m2.update(f"z{r}", lambda u: u.set(V(r)))),
    ]:
        t = time.monotonic()
        w = start(call, name)
        w.join(1.0)
        took = time.monotonic() - t
        if w.is_alive():
            release.set()
            w.join(10.0)
            fail(f"round {r}: n.{name} took {time.monotonic() - t:.2f}s while an "
                 f"update fn held a key of m")
        if w.error is not None:
            fail(f"round {r}: n.{name} raised {w.error!r}")
        worst = max(worst, took)
    release.set()
    join_all([a], 10.0, "the update after release")
    if a.error is not None:
        fail(f"the update raised {a.error!r}")
store.close()
state = replay(path)
for r in range(20):
    want = {"m:side%d" % r: r, "n:y%d" % r: r, "n:z%d" % r: r}
    for k, v in want.items():
        if state.get(k) != v:
            fail(f"{k} is {state.get(k)!r} in the file, want {v}")
    if "n:x%d" % r in state:
        fail(f"n:x{r} was deleted but is in the file")
if state.get("m:k") != 19:
    fail(f"m:k is {state.get('m:k')!r}, want 19")
report(rounds=20, worst=worst)
""",
        tmp_path,
    )
    assert stats["worst"] < 1.0


@pytest.mark.parametrize("layout", ["two_maps", "one_map"])
def test_update_fns_writing_each_others_keys_get_deadlock_error(tmp_path, layout):
    """Two threads' update fns each hold their key, then write the other's:
    one gets DeadlockError at once (the pair is done within 2 s), the other
    completes, and the file holds the winner's writes; 20 rounds. (With
    one_map a round counts only if both fns got to hold their keys at once.)"""
    stats = run_child(
        f"""
import sys, time, threading
import persist
from childlib import SlowValue as V, fast_store, replay, report, fail, start, join_all
path = sys.argv[1] + "/dl.db"
store, (m1, m2) = fast_store(path, "m", "n")
if {layout!r} == "one_map":
    m2 = m1
arranged = 0
for r in range(20):
    k1, k2 = f"p{{r}}", f"q{{r}}"
    held1, held2 = threading.Event(), threading.Event()
    ok = [True]
    def fn1(u, r=r):
        held1.set()
        if not held2.wait(0.5):
            ok[0] = False
        m2.set(k2, V(100 + r))
        u.set(V(100 + r))
    def fn2(u, r=r):
        held2.set()
        if not held1.wait(0.5):
            ok[0] = False
        m1.set(k1, V(200 + r))
        u.set(V(200 + r))
    t = time.monotonic()
    a = start(lambda: m1.update(k1, fn1), "t1")
    b = start(lambda: m2.update(k2, fn2), "t2")
    join_all([a, b], 10.0, f"round {{r}}: two update fns writing each other's keys")
    took = time.monotonic() - t
    if not ok[0]:
        if a.error is not None or b.error is not None:
            fail(f"round {{r}}: not arranged, yet {{a.error!r}} {{b.error!r}}")
        continue
    arranged += 1
    if took > 2.0:
        fail(f"round {{r}}: the pair took {{took:.2f}}s")
    errs = [w.error for w in (a, b)]
    dead = [e for e in errs if isinstance(e, persist.DeadlockError)]
    other = [e for e in errs
             if e is not None and not isinstance(e, persist.DeadlockError)]
    if other or len(dead) != 1:
        fail(f"round {{r}}: want one DeadlockError and one success, got {{errs!r}}")
    winner = 1 if a.error is None else 2
    val = (100 if winner == 1 else 200) + r
    store.sync()
    state = replay(path)
    for k in (f"m:{{k1}}", f"{{'m' if {layout!r} == 'one_map' else 'n'}}:{{k2}}"):
        if state.get(k) != val:
            fail(f"round {{r}}: {{k}} is {{state.get(k)!r}} in the file, want the "
                 f"winner's {{val}}")
store.close()
if arranged < 10:
    fail(f"only {{arranged}} of 20 rounds had both keys held at once")
report(arranged=arranged)
""",
        tmp_path,
    )
    assert stats["arranged"] >= 10


def test_update_fn_joining_thread_writing_same_key_does_not_hang(tmp_path):
    """An update fn on key k starts a thread that sets k and joins it with a
    0.3 s timeout: the join times out (the write waits for the key), the fn
    returns, then the thread's write completes; the file ends with the
    thread's value; 10 rounds."""
    stats = run_child(
        """
import sys, time, threading
import persist
from childlib import SlowValue as V, fast_store, replay, report, fail, start, join_all
path = sys.argv[1] + "/same.db"
store, (m,) = fast_store(path, "m", shrink=True)
for r in range(10):
    inner = []
    def fn(u, r=r):
        w = start(lambda: m.set("k", V(1000 + r)), "inner")
        inner.append(w)
        w.join(0.3)
        if not w.is_alive():
            fail(f"round {r}: the same-key write finished while the update held the "
                 f"key "
                 f"(error {w.error!r})")
        u.set(V(r))
    a = start(lambda: m.update("k", fn), "outer")
    join_all([a], 5.0, "update fn joining a thread that writes its key")
    if a.error is not None:
        fail(f"round {r}: update raised {a.error!r}")
    join_all(inner, 5.0, "the inner write after the update returned")
    if inner[0].error is not None:
        fail(f"round {r}: the inner write raised {inner[0].error!r}")
    if m.get("k") != V(1000 + r):
        fail(f"round {r}: k reads {m.get('k')!r}, want the later write {1000 + r}")
store.close()
state = replay(path)
if state.get("m:k") != 1009:
    fail(f"m:k is {state.get('m:k')!r} in the file, want 1009")
report(rounds=10)
""",
        tmp_path,
    )
    assert stats["rounds"] == 10


# ==========================================================================
# 6. fork while writer threads run
# ==========================================================================


def test_fork_child_cannot_use_store_and_holds_no_descriptor(tmp_path):
    """os.fork() while writer threads (and auto-shrink) run, 5 rounds. In the
    forked child every call on the store and its map raises NotOpenError
    mentioning the parent process, close() is a no-op, and no descriptor on
    the file is open. While that child lives, the parent closes, reopens the
    same path in-process, closes again, and another process opens the file."""
    stats = run_child(
        """
import json, os, select, signal, subprocess, sys, time, threading
import persist
from childlib import (
    SlowValue as V, fast_store, fds_on, replay, report, fail, start, join_all,
)
d = sys.argv[1]

def in_grandchild(store, m, path, ready_w, go_r):
    # (faulthandler's timer does not survive fork: the parent watches us
    # instead, and SIGALRM ends us if everything else fails)
    signal.alarm(20)
    problems = []
    leaked = fds_on(path)
    if leaked:
        problems.append(f"descriptors inherited on the file: {leaked}")
    calls = [
        ("m.get", lambda: m.get("k0")), ("m[k]", lambda: m["k0"]),
        ("len(m)", lambda: len(m)), ("k in m", lambda: "k0" in m),
        ("m.keys", lambda: m.keys()), ("m.items", lambda: m.items()),
        ("m.set", lambda: m.set("k0", V(-1))),
        ("m.set_async", lambda: m.set_async("k0", V(-1))),
        ("m.set_fsync", lambda: m.set_fsync("k0", V(-1))),
        ("m.delete", lambda: m.delete("k0")),
        ("m.update", lambda: m.update("k0", lambda u: u.set(V(-1)))),
        ("m.set_in_memory", lambda: m.set_in_memory("k0", V(-1))),
        ("m.sync", lambda: m.sync()), ("store.fsync_all", lambda: store.fsync_all()),
        ("store.shrink", lambda: store.shrink()),
        ("store.stats", lambda: store.stats()),
        ("store.set", lambda: store.set("x", V(-1))),
        ("store.get", lambda: store.get("x", V)),
        ("store.delete", lambda: store.delete("x")),
    ]
    for name, call in calls:
        try:
            call()
        except persist.NotOpenError as exc:
            if "parent" not in str(exc).lower():
                problems.append(f"{name}: NotOpenError without a word on the "
                                f"parent: {exc}")
        except BaseException as exc:
            problems.append(f"{name}: raised {exc!r}, not NotOpenError")
        else:
            problems.append(f"{name}: returned in the forked child")
    try:
        store.close()
        store.close()
    except BaseException as exc:
        problems.append(f"close() in the child raised {exc!r}")
    if fds_on(path):
        problems.append(f"descriptors on the file after close(): {fds_on(path)}")
    os.write(ready_w, json.dumps(problems).encode())
    os.close(ready_w)
    select.select([go_r], [], [], 10.0)   # live until the parent is done
    os._exit(0)

import faulthandler, signal
faulthandler.register(signal.SIGUSR1, all_threads=True)  # inherited by the fork
rounds = 0
for r in range(5):
    path = f"{d}/f{r}.db"
    store, (m,) = fast_store(path, "m", shrink=True)
    stop = threading.Event()
    def writer(t):
        n = 0
        while not stop.is_set():
            m.set(f"k{t}", V(n)); m.set_async(f"a{t}", V(n))
            m.update(f"u{t}", lambda u, n=n: u.set(V(n)))
            n += 1
        return n
    ws = [start(lambda t=t: writer(t), f"w{t}") for t in range(3)]
    time.sleep(0.05)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r); os.close(go_w)
        in_grandchild(store, m, path, ready_w, go_r)
    os.close(ready_w); os.close(go_r)
    data = b""
    while True:
        if not select.select([ready_r], [], [], 8.0)[0]:
            os.kill(pid, signal.SIGUSR1)  # faulthandler: the forked child's stack
            time.sleep(0.5)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            fail(f"round {r}: the forked child did not report within 8 s (its stack "
                 f"above)")
        chunk = os.read(ready_r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(ready_r)
    if not data:
        fail(f"round {r}: the forked child died without a report: {os.waitpid(pid, 0)}")
    problems = json.loads(data)
    time.sleep(0.02)
    stop.set()
    join_all(ws, 10.0, "writers in the parent")
    for w in ws:
        if w.error is not None:
            fail(f"parent writer raised {w.error!r}")
    final = {f"k{t}": w.result - 1 for t, w in enumerate(ws)}
    errs = [f"in the forked child: {p}" for p in problems]
    store.close()
    try:
        store2, (m2,) = fast_store(path, "m")
    except persist.StoreLockedError as exc:
        errs.append(f"reopen in the parent while the forked child lives: {exc!r}")
    else:
        got = {k: m2.get(k) for k in final}
        m2.set("after", V(r))
        store2.close()
        for k, n in final.items():
            if got[k] != V(n):
                errs.append(f"{k} reads {got[k]!r} after reopen, want {n}")
        if replay(path).get("m:after") != r:
            errs.append("the write after reopen is not in the file")
    other = subprocess.run(
        [sys.executable, "-P", "-c",
         "import sys, persist; s = persist.Store(sys.argv[1]); s.close(); "
         "print('opened')", path],
        capture_output=True, text=True, timeout=30)
    if other.returncode != 0 or "opened" not in other.stdout:
        errs.append("another process could not open the file while the forked child "
                    f"lives: {other.stderr.strip().splitlines()[-1:]}")
    alive = os.waitpid(pid, os.WNOHANG) == (0, 0)
    os.close(go_w)
    os.waitpid(pid, 0)
    if not alive:
        fail(f"round {r}: the forked child was gone before the checks (test broken)")
    if errs:
        fail(f"round {r}:\\n  " + "\\n  ".join(errs))
    rounds += 1
report(rounds=rounds)
""",
        tmp_path,
    )
    assert stats["rounds"] == 5


# ==========================================================================
# 7. close() from anywhere
# ==========================================================================


def test_close_from_error_handler_releases_store(tmp_path):
    """The background flush fails (write(2) -> EBADF) with async changes
    pending and error_handler calls store.close(): close() finishes (it
    returns, or raises the flush's OSError), the store is closed, the lock is
    released (a reopen in the same process works); 10 rounds."""
    stats = run_child(
        """
import os, sys, time, threading
import persist
from childlib import (
    SlowValue as V, fast_store, writes_fail, reopen_items, report, fail, fds_on,
)
d = sys.argv[1]
outcomes = []
for r in range(10):
    path = f"{d}/eh{r}.db"
    store, (m,) = fast_store(path, "m")  # no shrink: it would replace the failing fd
    m.set("sync", V(r))
    called = threading.Event()
    result = []
    def handler(exc, store=store):
        if called.is_set():
            return
        called.set()
        try:
            store.close()
            result.append("returned")
        except OSError as e:
            result.append(f"OSError {e.errno}")
        except BaseException as e:
            result.append(f"raised {e!r}")
    store.error_handler = handler
    with writes_fail(path):
        m.set_async("a", V(r))
        if not called.wait(5.0):
            fail(f"round {r}: error_handler never called while writes fail")
        t = time.monotonic()
        while not result and time.monotonic() - t < 5.0:
            time.sleep(0.005)
    if not result:
        fail(f"round {r}: close() from error_handler did not finish in 5 s")
    if result[0] not in ("returned",) and not result[0].startswith("OSError"):
        fail(f"round {r}: close() from error_handler {result[0]}")
    outcomes.append(result[0])
    t = time.monotonic()
    while not store.closed and time.monotonic() - t < 2.0:
        time.sleep(0.005)
    if not store.closed:
        fail(f"round {r}: store not closed after close() from error_handler")
    try:
        m.set("b", V(r))
    except persist.NotOpenError:
        pass
    else:
        fail(f"round {r}: a write after close() from error_handler returned")
    if fds_on(path):
        fail(f"round {r}: descriptors left open: {fds_on(path)}")
    try:
        got = reopen_items(path, "m")["m"]
    except persist.StoreLockedError as exc:
        fail(f"round {r}: lock still held after close() from error_handler: {exc!r}")
    if got.get("sync") != r:
        fail(f"round {r}: the synchronous write is lost: {got!r}")
report(outcomes=outcomes)
""",
        tmp_path,
    )
    assert len(stats["outcomes"]) == 10


def test_close_from_update_fn_releases_store(tmp_path):
    """An update fn calls store.close() (background sync and auto-shrink
    running, a writer thread racing): close() returns; the update returns
    (and then its value is in the file) or raises NotOpenError; the store is
    closed and a reopen in the same process works; 20 rounds."""
    stats = run_child(
        WRITERS
        + """
import sys, time
from childlib import (
    fast_store, replay, reopen_items, start, join_all, report, fail, fds_on,
)
d = sys.argv[1]
kept = 0
for r in range(20):
    path = f"{d}/uc{r}.db"
    store, (m,) = fast_store(path, "m", shrink=True)
    ws = [start(lambda: writer(store, m, 0, r), "w0")]
    m.set_async("pending", SlowValue(r))
    closed_in_fn = []
    def fn(u, r=r):
        try:
            store.close()
            closed_in_fn.append("returned")
        except BaseException as exc:
            closed_in_fn.append(repr(exc))
        u.set(SlowValue(r))
    outcome = [None]
    def call():
        try:
            m.update("k", fn)
            outcome[0] = "returned"
        except persist.NotOpenError:
            outcome[0] = "NotOpenError"
    c = start(call, "updater")
    join_all([c], 10.0, "update fn calling close()")
    if c.error is not None:
        fail(f"round {r}: the update raised {c.error!r}")
    if closed_in_fn != ["returned"]:
        fail(f"round {r}: close() in the update fn: {closed_in_fn}")
    join_all(ws, 10.0, "writer after close()")
    if ws[0].error is not None:
        fail(f"round {r}: writer raised {ws[0].error!r}")
    if not store.closed:
        fail(f"round {r}: store not closed")
    if fds_on(path):
        fail(f"round {r}: descriptors left open: {fds_on(path)}")
    state = replay(path)
    check_file(path, [ws[0].result], state)
    if state.get("m:pending") != r:
        fail(f"round {r}: the set_async before close() is "
             f"{state.get('m:pending')!r} in the file")
    if outcome[0] == "returned":
        kept += 1
        if state.get("m:k") != r:
            fail(f"round {r}: the update returned but k is {state.get('m:k')!r} in "
                 f"the file")
    try:
        reopen_items(path, "m")
    except persist.StoreLockedError as exc:
        fail(f"round {r}: lock still held: {exc!r}")
report(rounds=20, update_returned=kept)
""",
        tmp_path,
    )
    assert stats["rounds"] == 20


def test_close_from_other_thread_and_from_several_threads_at_once(tmp_path):
    """(a) Another thread closes while the main thread writes: the main
    thread's writes return (and are in the file) until one raises
    NotOpenError. (b) Four threads call close() at once (after async changes,
    with writers racing), then close() once more: every close returns, the
    store is closed, the async changes are in the file and a reopen works.
    30 rounds each."""
    stats = run_child(
        WRITERS
        + """
import sys, time, threading, random
from childlib import (
    fast_store, replay, reopen_items, start, join_all, report, fail, fds_on,
)
d = sys.argv[1]
rnd = random.Random(7)
for r in range(30):
    path = f"{d}/ot{r}.db"
    store, (m,) = fast_store(path, "m", shrink=True)
    delay = rnd.uniform(0, 0.02)
    def closer():
        time.sleep(delay)
        store.close()
    c = start(closer, "closer")
    res = writer(store, m, 0, r)
    join_all([c], 10.0, "close() in another thread")
    if c.error is not None:
        fail(f"round {r}: close() in another thread raised {c.error!r}")
    check_file(path, [res], replay(path))
    reopen_items(path, "m")
for r in range(30):
    path = f"{d}/many{r}.db"
    store, (m,) = fast_store(path, "m", shrink=True)
    for i in range(10):
        m.set_async(f"a{i}", SlowValue(r))
    ws = [start(lambda t=t: writer(store, m, t, r), f"w{t}") for t in range(2)]
    barrier = threading.Barrier(4)
    def closer():
        barrier.wait()
        store.close()
    cs = [start(closer, f"closer{j}") for j in range(4)]
    join_all(cs + ws, 10.0, "close() from four threads at once")
    for w in cs + ws:
        if w.error is not None:
            fail(f"round {r}: {w.name} raised {w.error!r}")
    store.close()
    if not store.closed or fds_on(path):
        fail(f"round {r}: closed={store.closed} fds={fds_on(path)}")
    state = replay(path)
    for i in range(10):
        if state.get(f"m:a{i}") != r:
            fail(f"round {r}: a{i} (set_async before close) is "
                 f"{state.get(f'm:a{i}')!r}")
    check_file(path, [w.result for w in ws], state)
    try:
        reopen_items(path, "m")
    except persist.StoreLockedError as exc:
        fail(f"round {r}: lock still held: {exc!r}")
report(rounds=60)
""",
        tmp_path,
    )
    assert stats["rounds"] == 60


# ==========================================================================
# 8. an error_handler that raises
# ==========================================================================


def test_raising_error_handler_keeps_background_sync_alive(tmp_path):
    """The background flush fails (EBADF) and error_handler raises: once
    writes work again, the failed change and later set_async changes reach
    the file with no explicit sync or close."""
    stats = run_child(
        """
import sys, time, threading
import persist
from childlib import SlowValue as V, fast_store, writes_fail, replay, report, fail
path = sys.argv[1] + "/raise.db"
store, (m,) = fast_store(path, "m")
calls = []
def handler(exc):
    calls.append(exc)
    raise RuntimeError("handler is broken")
store.error_handler = handler
with writes_fail(path):
    m.set_async("a", V(1))
    t = time.monotonic()
    while len(calls) < 3 and time.monotonic() - t < 5.0:
        time.sleep(0.005)
if len(calls) < 3:
    fail(f"error_handler called {len(calls)} times while writes fail")
m.set_async("b", V(2))
t = time.monotonic()
while time.monotonic() - t < 5.0:
    state = replay(path)
    if state.get("m:a") == 1 and state.get("m:b") == 2:
        break
    time.sleep(0.01)
else:
    fail(f"the background sync stopped after error_handler raised: file has "
         f"{replay(path)!r}")
m.set_async("c", V(3))
t = time.monotonic()
while replay(path).get("m:c") != 3:
    if time.monotonic() - t > 5.0:
        fail("a later set_async never reached the file")
    time.sleep(0.01)
store.close()
report(handler_calls=len(calls))
""",
        tmp_path,
    )
    assert stats["handler_calls"] >= 3


# ==========================================================================
# 9. KeyboardInterrupt
# ==========================================================================


@pytest.mark.parametrize("blocked", ["set", "update", "delete", "set_fsync"])
def test_write_blocked_on_held_key_is_interruptible(tmp_path, blocked):
    """The main thread blocks writing a key whose update fn (in another
    thread) waits on an Event; SIGINT arrives: KeyboardInterrupt is raised in
    the main thread within 1 s; afterwards the update completes, close()
    completes and the file reloads with the update's value; 5 rounds."""
    stats = run_child(
        f"""
import os, signal, sys, time, threading
import persist
from childlib import (
    SlowValue as V, fast_store, reopen_items, report, fail, start, join_all,
    sigint_after,
)
path = sys.argv[1] + "/int.db"
store, (m,) = fast_store(path, "m", shrink=True)
worst = 0.0
for r in range(5):
    m.set("k", V(-1))
    held, release = threading.Event(), threading.Event()
    def fn(u, r=r):
        held.set()
        release.wait(5.0)
        u.set(V(r))
    a = start(lambda: m.update("k", fn), "holder")
    if not held.wait(5.0):
        fail("the update fn never started")
    sent = []
    k = start(lambda: sigint_after(0.2, sent), "kill")
    got = None
    try:
        try:
            m.{blocked}("k", *{{"set": (V(99),), "set_fsync": (V(99),), "delete": (),
                                 "update": (lambda u: u.set(V(99)),)}}[{blocked!r}])
            got = "returned"
        except KeyboardInterrupt:
            got = time.monotonic()
        if got == "returned":
            time.sleep(2.0)
    except KeyboardInterrupt:
        got = "late"
    if not isinstance(got, float):
        release.set()
        fail(f"round {{r}}: blocked {blocked} -> {{got}} (want KeyboardInterrupt "
             f"while blocked)")
    took = got - sent[0]
    worst = max(worst, took)
    if took > 1.0:
        fail(f"round {{r}}: KeyboardInterrupt came {{took:.2f}}s after SIGINT")
    release.set()
    join_all([a, k], 10.0, "the update after the interrupt")
    if a.error is not None:
        fail(f"round {{r}}: the update raised {{a.error!r}}")
    if m.get("k") != V(r):
        fail(f"round {{r}}: k reads {{m.get('k')!r}}, want the update's {{r}}")
t = time.monotonic()
store.close()
if reopen_items(path, "m")["m"].get("k") != 4:
    fail("the update's value is not in the reloaded file")
report(worst=worst)
""",
        tmp_path,
    )
    assert stats["worst"] <= 1.0


def test_sigint_during_close_then_close_again_completes(tmp_path):
    """close() is called while an update fn (another thread) holds a key it
    made an async change of, and other async changes are pending; SIGINT
    arrives 0.2 s later. KeyboardInterrupt
    reaches the main thread within 1 s (in close() or just after it); once the
    update fn is released, close() again completes, the store is closed, the
    lock is released (a reopen in-process works), the pending async changes
    are in the file, and so is the update's value if the update returned."""
    stats = run_child(
        """
import os, signal, sys, time, threading
import persist
from childlib import (
    SlowValue as V, fast_store, replay, reopen_items, report, fail, start, join_all,
    fds_on, sigint_after,
)
d = sys.argv[1]
outcomes = []
for r in range(5):
    path = f"{d}/ci{r}.db"
    store, (m,) = fast_store(path, "m", shrink=True)
    for i in range(20):
        m.set_async(f"a{i}", V(r))
    held, release = threading.Event(), threading.Event()
    def fn(u, r=r):
        # a pending change in the held shard: close's flush must wait for it
        m.set_async("k", V(-r))
        held.set()
        release.wait(10.0)
        u.set(V(r))
    upd = [None]
    def call():
        try:
            m.update("k", fn)
            upd[0] = "returned"
        except persist.NotOpenError:
            upd[0] = "NotOpenError"
    a = start(call, "holder")
    if not held.wait(5.0):
        fail("the update fn never started")
    sent = []
    k = start(lambda: sigint_after(0.2, sent), "kill")
    where = None
    try:
        try:
            store.close()
            where = "close returned"
            time.sleep(1.5)
        except KeyboardInterrupt:
            where = "in close"
    except KeyboardInterrupt:
        where = "after close"
    at = time.monotonic()
    if where == "close returned":
        release.set()
        fail(f"round {r}: no KeyboardInterrupt at all")
    if at - sent[0] > 1.0:
        release.set()
        fail(f"round {r}: KeyboardInterrupt ({where}) came {at - sent[0]:.2f}s "
             f"after SIGINT")
    outcomes.append(where)
    release.set()
    join_all([a, k], 10.0, "the update after release")
    if a.error is not None:
        fail(f"round {r}: the update raised {a.error!r}")
    store.close()
    if not store.closed:
        fail(f"round {r}: store not closed after the second close()")
    if fds_on(path):
        fail(f"round {r}: descriptors left open: {fds_on(path)}")
    state = replay(path)
    for i in range(20):
        if state.get(f"m:a{i}") != r:
            fail(f"round {r}: a{i} (set_async before close) is "
                 f"{state.get(f'm:a{i}')!r}")
    if upd[0] == "returned" and state.get("m:k") != r:
        fail(f"round {r}: the update returned but k is {state.get('m:k')!r} in the "
             f"file")
    try:
        reopen_items(path, "m")
    except persist.StoreLockedError as exc:
        fail(f"round {r}: lock still held after close() again: {exc!r}")
report(outcomes=outcomes)
""",
        tmp_path,
    )
    assert len(stats["outcomes"]) == 5


# ==========================================================================
# 10. shrink and the file's metadata (in-process: no race involved)
# ==========================================================================


def test_shrink_keeps_file_mode(db_path):
    """A 0600 store file is still 0600 after shrink (and after a reopen)."""
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        for i in range(20):
            m.set("k", i)
    os.chmod(db_path, 0o600)
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        m.set("k", 20)
        store.shrink()
        assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
        m.set("k", 21)
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
    assert live_records(read_bytes(db_path)) == {"m:k": 21}


def test_shrink_does_not_follow_planted_symlink(db_path, tmp_path):
    """A symlink planted at <path>.shrink-tmp (pointing at another file) is
    not followed: the other file is unchanged, the store file is a regular
    file with the right records, and no temp file is left."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        for i in range(20):
            m.set(f"k{i % 4}", i)
        os.symlink(victim, str(db_path) + ".shrink-tmp")
        with contextlib.suppress(OSError):  # refusing is fine, following is not
            store.shrink()
        m.set("after", 1)
    assert victim.read_bytes() == b"precious\n"
    assert not os.path.islink(db_path)
    want = {"m:k0": 16, "m:k1": 17, "m:k2": 18, "m:k3": 19, "m:after": 1}
    assert live_records(read_bytes(db_path)) == want
    with persist.Store(db_path) as store:
        assert dict(store.map("m", int).items()) == {k[2:]: v for k, v in want.items()}
    assert not os.path.lexists(str(db_path) + ".shrink-tmp") or os.path.islink(
        str(db_path) + ".shrink-tmp"
    )


# ==========================================================================
# In-process: the cheapest close() checks, with threads
# ==========================================================================


def test_close_from_several_threads_at_once_and_twice_in_process(db_path):
    """Eight threads close a store with pending async changes at once, then
    close() twice more: all return, the store is closed, no descriptor stays
    open on the file, the async changes are in the file, and a reopen works."""
    for r in range(5):
        store = persist.Store()
        store.sync_interval = 0.002
        m = store.map("m", int)
        store.open(db_path)
        for i in range(50):
            m.set_async(f"a{i}", r)
        barrier = threading.Barrier(8)

        def closer(store=store, barrier=barrier):
            barrier.wait(5)
            store.close()

        run_threads(*[closer] * 8, timeout=10)
        store.close()
        store.close()
        assert store.closed
        assert fds_of(db_path) == []
        with pytest.raises(persist.NotOpenError):
            m.set("x", 1)
        assert live_records(read_bytes(db_path)) == {f"m:a{i}": r for i in range(50)}
        with persist.Store(db_path) as again:
            assert again.map("m", int).get("a0") == r


def test_write_to_one_map_not_blocked_by_update_on_another_in_process(db_path):
    """While an update fn on map m holds its key (with an async change of m
    pending in the held key's lock), set and set_fsync on map n return within
    1 s. The fn waits at most 3 s, so a store that gets this wrong fails the
    test without hanging pytest."""
    store = persist.Store()
    store.sync_interval = 0.002
    m = store.map("m", int)
    n = store.map("n", int)
    store.open(db_path)
    try:
        held, release = threading.Event(), threading.Event()

        def fn(u):
            m.set_async("k", -1)
            m.set_async("side", 1)
            held.set()
            release.wait(3.0)
            u.set(1)

        def writer():
            assert held.wait(5.0)
            took = []
            for i in range(5):
                t = time.monotonic()
                n.set(f"x{i}", i)
                n.set_fsync(f"y{i}", i)
                took.append(time.monotonic() - t)
            release.set()
            return max(took)

        _, worst = run_threads(lambda: m.update("k", fn), writer, timeout=20)
        assert worst < 1.0
    finally:
        release.set()
        store.close()
    want = {"m:k": 1, "m:side": 1}
    want.update({f"n:x{i}": i for i in range(5)})
    want.update({f"n:y{i}": i for i in range(5)})
    assert live_records(read_bytes(db_path)) == want


def test_fork_while_a_shrink_has_its_new_file_open(tmp_path):
    """A fork at the moment a shrink has just created its new file (made
    deterministic by forking from the syscall seam's hook, right after the
    create): the child holds no descriptor on it, so the parent's lock on the
    new file ends with the parent's close."""
    path = tmp_path / "s.db"
    store = persist.Store(path)
    m = store.map("m", int)
    m.set("a", 1)
    m.set("a", 2)
    seen: dict[str, object] = {}

    def hook(name: str) -> None:
        if name == "fchmod" and "held" not in seen:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: report and leave at once
                held = fds_of(f"{path}.shrink-tmp") + fds_of(path)
                os.write(w, json.dumps(held).encode())
                os._exit(0)
            os.close(w)
            seen["held"] = json.loads(os.read(r, 4096))
            os.close(r)
            os.waitpid(pid, 0)

    persist._core._set_fault_hook(hook)
    try:
        store.shrink()
    finally:
        persist._core._set_fault_hook(None)
        store.close()
    assert seen["held"] == []
    assert live_records(read_bytes(path)) == {"m:a": 2}
