"""go-persist's operation benchmark (``benchmark/main.go``) for persist and rivals.

Run by ``python perf/gobench.py [--quick | --rigorous] [--only scenarios]``.

Scenarios (Go's parameters): s1 100,000 keys, 1,000,000 ops, 20% writes; s2
10,000 keys, 10,000 ops, 20% writes, with the rows that fsync every write
(persist ``set_fsync``, lmdb synced, sqlitedict autocommit); s3 5,000,000 keys,
5,000,000 ops, 10% writes. Each at 1, 4 and 16 threads (s3: 1 and 16).

Each row pre-fills a fresh store with ``keys`` records (keys ``"0"`` ..,
untimed), then runs one op list: a key drawn uniformly, a write
``write_percent``% of the time, else a get. Values are Go's: a two-field struct
(``TestStruct(i, "example struct")``, writes ``TestStruct(i, "updated
struct")``) or Go's 61-character string (writes append ``" updated"``). The op
list and every value are built before the clock starts and are the same for
every candidate; with N threads, thread k runs the k-th contiguous slice of the
list (as Go's ``Ops``). Every get returns the value decoded into its class.

Timing: one plain ``time.perf_counter`` run per candidate and thread count
(three under ``--rigorous``, median kept), stored as pyperf JSON with one
value (seconds per op) per run. pyperf's calibrated loops do not fit: an op
list runs once, on a store that took seconds to fill; looping it would time a
different store (a grown log). Before the timed run, a pilot (the list's first
ops, on the same store) estimates the run; a candidate estimated over the budget
(10 minutes) is not run and its row says so, with the pilot's figure.
``--quick`` runs s1 with 20,000 keys and 100,000 ops and s2, at 1 and 4
threads, no s3; its budget is 1 s per row and a slower row times the op
list's first second's worth (its row says how many ops).

Run as a script (not ``-m`` from the repository root) so the installed,
compiled persist is measured, not the source folder.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import data
import twins
from machine import machine, summary
from persist.schemas.bench import TestStruct

import persist

if TYPE_CHECKING:
    import pyperf


@dataclass(frozen=True)
class Scenario:
    """One of go-persist's workloads."""

    name: str
    keys: int
    ops: int
    write_percent: int
    threads: tuple[int, ...]
    fsync: bool = False  # include the candidates that fsync every write


FULL = (
    Scenario("s1", 100_000, 1_000_000, 20, (1, 4, 16)),
    Scenario("s2", 10_000, 10_000, 20, (1, 4, 16), fsync=True),
    Scenario("s3", 5_000_000, 5_000_000, 10, (1, 16)),
)
QUICK = (
    Scenario("s1", 20_000, 100_000, 20, (1, 4)),
    Scenario("s2", 10_000, 10_000, 20, (1, 4), fsync=True),
)
FULL_BUDGET = 600.0  # seconds per row; a slower row is skipped
QUICK_BUDGET = 1.0  # a slower row runs the op list's first second's worth
PEERS = (
    "dict_plain",
    "dict_lock",
    "write_log",
    "diskcache_",
    "diskcache_index",
    "sqlitedict_batched",
    "sqlitedict_",
    "shelve_",
    "lmdb_nosync",
    "lmdb_",
)
PERSIST_METHODS = ("set_async", "set", "update", "set_fsync")
KINDS = ("struct", "string")


@dataclass(frozen=True)
class Candidate:
    """A row: how to open a pre-filled store and which value class it holds."""

    label: str
    open_store: Callable  # (folder, records) -> (get, write, close)
    value_class: type | None  # None: the string kind
    updates: bool = False  # writes are persist ``update`` calls (payload: a function)


def _persist_opener(method: str, value_type: type) -> Callable:
    def open_store(folder: str, records: dict):
        m = persist.open_single_map(os.path.join(folder, "persist.db"), value_type)
        for key, value in records.items():
            m.set_async(key, value)
        m.sync()
        return m.get, getattr(m, method), m.store.close

    return open_store


def candidates(kind: str, with_fsync: bool) -> list[Candidate]:
    """The rows of one table: persist's write methods, then the peers installed."""
    classes = (
        [("compiled", TestStruct), ("runtime", twins.TestStruct)]
        if kind == "struct"
        else [(None, str)]
    )
    rows = []
    for method in PERSIST_METHODS:
        if method == "set_fsync" and not with_fsync:
            continue
        for codec, cls in classes:
            suffix = f" ({codec})" if codec else ""
            rows.append(
                Candidate(
                    f"persist `{method}`{suffix}",
                    _persist_opener(method, cls),
                    cls if kind == "struct" else None,
                    updates=method == "update",
                )
            )
    for name in PEERS:
        try:
            module = importlib.import_module(f"compare.{name}")
        except ImportError:
            continue  # not installed: the bench extra brings every peer
        if getattr(module, "fsync", False) and not with_fsync:
            continue
        cls = TestStruct if kind == "struct" else None
        rows.append(Candidate(module.label, module.open_store, cls))
    return rows


def _value(cls: type | None, i: int, updated: bool):
    if cls is None:
        return data.GO_STRING + " updated" if updated else data.GO_STRING
    return cls(i, "updated struct" if updated else "example struct")


def _mutate(i: int, upd) -> None:
    """Go's update: change the fields of the current value's copy."""
    upd.value.field1 = i
    upd.value.field2 = "updated struct"


def _replace(value, upd) -> None:
    upd.set(value)


def payloads(candidate: Candidate, ops: list[data.Op]) -> list[tuple[str, object]]:
    """``(key, payload)`` per op, payload ``None`` for a get; built before timing."""
    cls = candidate.value_class
    out = []
    for key, i in ops:
        if i < 0:
            out.append((key, None))
        elif not candidate.updates:
            out.append((key, _value(cls, i, True)))
        elif cls is None:
            out.append((key, functools.partial(_replace, _value(cls, i, True))))
        else:
            out.append((key, functools.partial(_mutate, i)))
    return out


def run_slice(get: Callable, write: Callable, ops: list[tuple[str, object]]) -> None:
    """The timed loop: one get or one write per op."""
    for key, payload in ops:
        if payload is None:
            get(key)
        else:
            write(key, payload)


def timed(get: Callable, write: Callable, ops: list, threads: int) -> float:
    """Seconds to run ``ops`` on ``threads`` threads, each a contiguous slice."""
    if threads == 1:
        t0 = time.perf_counter()
        run_slice(get, write, ops)
        return time.perf_counter() - t0
    step = len(ops) // threads
    slices = [
        ops[k * step : (k + 1) * step if k < threads - 1 else None]
        for k in range(threads)
    ]
    start = threading.Barrier(threads + 1)

    def worker(part):
        start.wait()
        run_slice(get, write, part)

    pool = [threading.Thread(target=worker, args=(part,)) for part in slices]
    for t in pool:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    return time.perf_counter() - t0


def plan(quick: bool) -> tuple[tuple[Scenario, ...], float, bool]:
    """Scenarios, budget per row, and whether slower rows are cut (or skipped)."""
    return (QUICK, QUICK_BUDGET, True) if quick else (FULL, FULL_BUDGET, False)


def folder_size(folder: str) -> int:
    """Bytes of every file under ``folder`` (a store may be several files)."""
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _dirs, files in os.walk(folder)
        for name in files
    )


@dataclass
class Result:
    label: str
    seconds: list[float]  # one per run; empty when skipped
    ops: int  # ops timed: fewer than planned when cut to the budget
    planned: int
    file_size: int | None
    pilot_per_op: float
    skipped: bool = False


def measure(
    candidate: Candidate,
    scenario: Scenario,
    threads: int,
    ops: list[data.Op],
    runs: int,
    budget: float,
    workdir: str,
    cut: bool = False,
) -> Result:
    """Pre-fill, pilot, then ``runs`` timed runs of the op list (a fresh store each).

    A candidate whose pilot says the list would take over ``budget`` seconds is
    skipped, or with ``cut`` runs the list's first ``budget`` seconds' worth.
    """
    work = payloads(candidate, ops)
    pilot = work[: max(100, min(2_000, len(work) // 50))]
    seconds: list[float] = []
    size = None
    pilot_per_op = 0.0
    for _ in range(runs):
        folder = tempfile.mkdtemp(prefix="store-", dir=workdir)
        records = {
            str(i): _value(candidate.value_class, i, False)
            for i in range(scenario.keys)
        }
        get, write, close = candidate.open_store(folder, records)
        del records
        try:
            pilot_per_op = timed(get, write, pilot, 1) / len(pilot)
            if pilot_per_op * len(work) > budget:
                if not cut:
                    return Result(
                        candidate.label, [], 0, len(work), None, pilot_per_op, True
                    )
                work = work[: max(len(pilot), int(budget / pilot_per_op))]
            seconds.append(timed(get, write, work, threads))
            check = get(work[0][0])
            expected = candidate.value_class or str
            if not isinstance(check, expected):
                raise AssertionError(f"{candidate.label}: get returned {check!r}")
        finally:
            close()
            size = folder_size(folder) or None
            shutil.rmtree(folder, ignore_errors=True)
    return Result(candidate.label, seconds, len(work), len(ops), size, pilot_per_op)


def to_benchmark(name: str, result: Result, meta: dict) -> pyperf.Benchmark:
    """A pyperf benchmark: one value (seconds per op) per timed run."""
    import pyperf  # here, not at the top: the tests run the suite without it

    values = [s / result.ops for s in result.seconds] or [result.pilot_per_op]
    metadata = {
        "name": name,
        "label": result.label,
        "ops": result.ops,
        "planned_ops": result.planned,
        "unit": "second",
        "skipped": int(result.skipped),
        **meta,
    }
    if result.file_size is not None:
        metadata["file_size"] = result.file_size
    runs = [pyperf.Run([v], metadata=metadata, collect_metadata=False) for v in values]
    return pyperf.Benchmark(runs)


def run_all(
    scenarios: tuple[Scenario, ...], runs: int, budget: float, cut: bool = False
) -> list[pyperf.Benchmark]:
    """Every scenario x value kind x thread count x candidate; progress on stderr."""
    host = machine()
    benchmarks = []
    workdir = tempfile.mkdtemp(prefix="persist-gobench-")
    try:
        for sc in scenarios:
            ops = data.go_ops(sc.keys, sc.ops, sc.write_percent)
            for kind in KINDS:
                for threads in sc.threads:
                    for cand in candidates(kind, sc.fsync):
                        res = measure(
                            cand, sc, threads, ops, runs, budget, workdir, cut
                        )
                        _progress(sc, kind, threads, res)
                        name = f"{sc.name}.{kind}.t{threads}.{cand.label}"
                        meta = {
                            "scenario": sc.name,
                            "kind": kind,
                            "threads": threads,
                            "keys": sc.keys,
                            "write_percent": sc.write_percent,
                            "budget_s": budget,
                            "machine": summary(host),
                        }
                        benchmarks.append(to_benchmark(name, res, meta))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return benchmarks


def _progress(sc: Scenario, kind: str, threads: int, res: Result) -> None:
    where = f"[{sc.name} {kind} {threads}t]"
    if res.skipped:
        est = res.pilot_per_op * res.planned
        print(f"{where} {res.label}: skipped (estimated {est:,.0f} s)", file=sys.stderr)
        return
    s = statistics.median(res.seconds)
    part = (
        f" (first {res.ops:,} of {res.planned:,} ops)" if res.ops < res.planned else ""
    )
    print(
        f"{where} {res.label}{part}: {s:.3f} s, {res.ops / s:,.0f} ops/s",
        file=sys.stderr,
    )
