"""Measurements of the core's hot paths: load + decode, and get / set_async.

    python perf/bench_core_calls.py make FILE [MB]     write ~MB of LoadRecords
    python perf/bench_core_calls.py load FILE          open + values(), RSS after open
    python perf/bench_core_calls.py orjson FILE        read + orjson.loads every value
    python perf/bench_core_calls.py mixed {user,str} THREADS [ROUNDS]
    python perf/bench_core_calls.py calls {get,set_async,encode} {user,str} N

``calls`` runs N calls and nothing else, for ``valgrind --tool=callgrind``:
instructions per call = (Ir at N - Ir at 0) / N.  ``mixed`` is go-persist's
scenario 1 (100,000 keys, 1,000,000 ops, 80% get / 20% set_async, one
precomputed op list) for persist, a dict, and a dict guarded by a Lock, split
over THREADS threads; it prints each candidate's median seconds.  Timings are
medians of ROUNDS runs in one process; benchmark-only dependency: orjson.
"""

from __future__ import annotations

import os
import random
import resource
import statistics
import sys
import tempfile
import threading
import time

from persist.schemas.bench import LoadMeta, LoadRecord
from persist.schemas.examples import User

import persist

KEYS = 100_000
OPS = 1_000_000


def _record(i: int) -> LoadRecord:
    """go-persist's load benchmark record (~1.2 KB of JSON)."""
    return LoadRecord(
        id=f"id-{i}",
        name=f"record {i}",
        description=f"description of record {i}".ljust(42, "."),
        data="x" * 1024,
        meta=LoadMeta(1_700_000_000 + i, 1_700_000_100 + i, ["alpha", "beta", "gamma"]),
    )


def make(path: str, megabytes: float = 250.0) -> None:
    """Write records until the file holds about ``megabytes`` MB."""
    target = int(megabytes * 1e6)
    m = persist.open_single_map(path, LoadRecord)
    i = 0
    while i % 10_000 or os.path.getsize(path) < target:
        m.set_async(f"record:{i}", _record(i))
        i += 1
        if i % 10_000 == 0:
            m.sync()
    m.store.close()
    print(f"{i} records, {os.path.getsize(path) / 1e6:.1f} MB")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def load(path: str) -> None:
    """Time open and values(); report the RSS growth of open against the file."""
    before = _rss()
    t0, c0 = time.perf_counter(), time.process_time()
    m = persist.open_single_map(path, LoadRecord)
    t1, c1 = time.perf_counter(), time.process_time()
    after_open = _rss()
    values = m.values()
    t2, c2 = time.perf_counter(), time.process_time()
    size = os.path.getsize(path)
    print(
        f"open {t1 - t0:.3f} s  values {t2 - t1:.3f} s  total {t2 - t0:.3f} s  "
        f"cpu: open {c1 - c0:.3f} s  values {c2 - c1:.3f} s  total {c2 - c0:.3f} s  "
        f"{len(values)} values  rss/file after open "
        f"{(after_open - before) / size:.2f}"
    )


def orjson_baseline(path: str) -> None:
    """Read the file and orjson.loads every value line: the peer to beat."""
    import orjson

    t0, c0 = time.perf_counter(), time.process_time()
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    values = [orjson.loads(line) for line in lines[2::2] if line]
    t1, c1 = time.perf_counter(), time.process_time()
    print(f"orjson {t1 - t0:.3f} s  cpu {c1 - c0:.3f} s  {len(values)} values")


def _values(kind: str):
    if kind == "user":
        return User, lambda i: User(f"name {i}", f"u{i}@example.com", i % 90)
    return str, lambda i: f"value number {i}"


def _ops(keys: list[str]) -> list[tuple[bool, str]]:
    rng = random.Random(7)
    return [(rng.random() < 0.2, rng.choice(keys)) for _ in range(OPS)]


def _run(threads: int, ops, get, put, value) -> tuple[float, float]:
    """Split ``ops`` over ``threads`` threads; (wall, CPU) seconds until all
    are done.  CPU time (all threads of the process) is the steadier figure
    on a machine shared with other work."""
    share = len(ops) // threads

    def work(part):
        for is_write, key in part:
            if is_write:
                put(key, value)
            else:
                get(key)

    parts = [ops[i * share : (i + 1) * share] for i in range(threads)]
    workers = [threading.Thread(target=work, args=(p,)) for p in parts]
    t0, c0 = time.perf_counter(), time.process_time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - t0, time.process_time() - c0


def mixed(kind: str, threads: int, rounds: int = 7) -> None:
    """Scenario 1 for persist, dict and dict + Lock; median seconds each."""
    value_type, make_value = _values(kind)
    keys = [f"key:{i}" for i in range(KEYS)]
    ops = _ops(keys)
    value = make_value(-1)
    folder = tempfile.mkdtemp(prefix="persist-bench-")
    m = persist.open_single_map(os.path.join(folder, "b.db"), value_type)
    m.store.sync_interval = 3600.0  # no flush inside the timed part
    plain: dict = {}
    guarded: dict = {}
    lock = threading.Lock()
    for i, key in enumerate(keys):
        m.set_async(key, make_value(i))
        plain[key] = guarded[key] = make_value(i)
    m.sync()

    def locked_get(key):
        with lock:
            return guarded.get(key)

    def locked_set(key, v):
        with lock:
            guarded[key] = v

    candidates = {
        "persist": (m.get, m.set_async),
        "dict": (plain.get, plain.__setitem__),
        "dict+Lock": (locked_get, locked_set),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, (get, put) in candidates.items():
            times[name].append(_run(threads, ops, get, put, value))
            m.sync()
    for clock in (0, 1):
        med = {n: statistics.median(t[clock] for t in ts) for n, ts in times.items()}
        print(
            f"{kind} threads={threads} {('wall', 'cpu')[clock]} "
            + "  ".join(f"{name} {t:.3f}s" for name, t in med.items())
            + f"  persist/dict {med['persist'] / med['dict']:.2f}"
            + f"  persist/dict+Lock {med['persist'] / med['dict+Lock']:.2f}"
        )
    m.store.close()


def calls(op: str, kind: str, n: int) -> None:
    """``n`` calls of ``op`` (get, set_async, encode, dict_get, dict_set) on a
    map of ``kind`` or a dict of the same items (for callgrind)."""
    value_type, make_value = _values(kind)
    folder = tempfile.mkdtemp(prefix="persist-bench-")
    m = persist.open_single_map(os.path.join(folder, "c.db"), value_type)
    m.store.sync_interval = 3600.0
    keys = [f"key:{i}" for i in range(1000)]
    plain = {}
    for i, key in enumerate(keys):
        m.set_async(key, make_value(i))
        plain[key] = make_value(i)
    value = make_value(-1)
    call = {
        "get": m.get,
        "set_async": m.set_async,
        "encode": persist.codec_for(value_type).encode,
        "dict_get": plain.get,
        "dict_set": plain.__setitem__,
    }[op]
    if op == "encode":
        for _key in [keys[i % 1000] for i in range(n)]:
            call(value)
    elif op.endswith("get"):
        for key in [keys[i % 1000] for i in range(n)]:
            call(key)
    else:
        for key in [keys[i % 1000] for i in range(n)]:
            call(key, value)
    m.store.close()


def main(argv: list[str]) -> None:
    cmd, args = argv[0], argv[1:]
    if cmd == "make":
        make(args[0], *map(float, args[1:]))
    elif cmd == "load":
        load(args[0])
    elif cmd == "orjson":
        orjson_baseline(args[0])
    elif cmd == "mixed":
        mixed(args[0], int(args[1]), *map(int, args[2:]))
    elif cmd == "calls":
        calls(args[0], args[1], int(args[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
