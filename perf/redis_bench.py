"""persist on Redis: RedisStore maps against redis-py by hand and the file store.

    python perf/redis_bench.py --quick   # s1 at 20,000 keys, rows cut at 2 s: < 3 min
    python perf/redis_bench.py           # s1 at Go's sizes, rows cut at 120 s: < 1 h
    python perf/redis_bench.py --runs 3  # 3 timed runs per row (median)
    python perf/redis_bench.py --budget 15   # Go's sizes, rows cut at 15 s

Starts its own redis-servers (``tests/redis_server.RedisServer``, localhost, a
temporary folder): one with AOF on and ``appendfsync everysec`` for every
figure but ``set_fsync``, and one with ``appendfsync always`` for the
``set_fsync`` figures (Redis 7.0 has no WAITAOF: RedisStore's ``set_fsync``
needs that server). Writes pyperf JSON to ``perf/results/redis.json`` (``-o``)
and prints Markdown tables with the machine line.

Throughput: go-persist's scenario 1 (``perf/scenarios.py``: keys ``"0"``..,
one seeded op list, 20% writes, ``TestStruct`` values with the compiled codec,
every get decoded into the class) at 1, 4 and 16 threads of one process
sharing one store or client, and at 4 processes each with its own (file store:
threads only, a file has one writer process). Rows: RedisStore ``get`` +
``set_async`` and ``get`` + ``set`` (local cache on, the default), redis-py by
hand (``HGET``/``HSET`` of one hash, values ``json.dumps(attrs.asdict(v))`` /
``TestStruct(**json.loads(b))``, and ``pickle``), and the file store
(``set_async``, ``set``). RedisStore's local cache starts empty, as in a
process that has just opened the store: a key's first ``get`` is a round trip
(a large share of the gets of a short run). Each row pre-fills a fresh
namespace or file (untimed, ``HSET`` pipelines) and times the op list as
``scenarios.measure`` does: a pilot estimates the run and a row over the budget
times the op list's first budget's worth of ops (its row says how many). Final
flushes (close) are not timed, as in gobench.

Single calls: ``get`` of a cached key, ``get`` without the local cache, a bare
redis-py ``HGET`` and the file store's ``get``; ``set`` against a bare
``HSET`` of pre-encoded bytes (and the file store's); ``set_fsync`` (and a bare
``HSET``) on the ``always`` server against the file store's. Each figure:
``repeats`` loops of ``calls`` calls over 1,000 keys, seconds per call, median.

Run as a script so the installed, compiled persist is measured. Figures on a
shared machine are indicative: read the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import attrs
import data
import pyperf
import redis
import report
import scenarios
from machine import finish, machine, summary
from persist.schemas.bench import TestStruct

import persist
from persist.redis import RedisStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from redis_server import RedisServer

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
MAP = "bench"
QUICK = scenarios.Scenario("s1", 20_000, 100_000, 20, (1, 4, 16))
FULL = scenarios.Scenario("s1", 100_000, 1_000_000, 20, (1, 4, 16))
PROCESSES = 4
QUICK_BUDGET, FULL_BUDGET = 2.0, 120.0  # seconds per row (then cut)
PREFILL_BATCH = 1_000
SERVER_BINARY = "/usr/bin/redis-server"  # where tests/redis_server.py also looks

Opened = tuple[Callable, Callable, Callable[[], None]]  # get, write, close


@dataclass(frozen=True)
class RedisRow:
    """A throughput row on Redis: how its values are stored and how to attach."""

    label: str
    encode: Callable[[TestStruct], bytes]  # the pre-fill's value bytes
    attach: Callable[[str, str], Opened]  # (url, namespace): a fresh client/store


def _store_row(method: str) -> RedisRow:
    def attach(url: str, namespace: str) -> Opened:
        store = RedisStore(url, namespace)
        m = store.map(MAP, TestStruct)
        return m.get, getattr(m, method), store.close

    codec = persist.codec_for(TestStruct)
    return RedisRow(f"RedisStore `{method}`", codec.encode, attach)


def _json_encode(value: TestStruct) -> bytes:
    return json.dumps(attrs.asdict(value)).encode()


def _json_decode(data: bytes) -> TestStruct:
    return TestStruct(**json.loads(data))


def _pickle_encode(value: TestStruct) -> bytes:
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


def _by_hand_row(label: str, encode: Callable, decode: Callable) -> RedisRow:
    def attach(url: str, namespace: str) -> Opened:
        client = redis.Redis.from_url(url)
        name = f"{namespace}:{MAP}"

        def get(key: str) -> TestStruct | None:
            found = client.hget(name, key)
            return None if found is None else decode(found)

        def write(key: str, value: TestStruct) -> None:
            client.hset(name, key, encode(value))

        return get, write, client.close

    return RedisRow(label, encode, attach)


REDIS_ROWS = (
    _store_row("set_async"),
    _store_row("set"),
    _by_hand_row("redis-py HGET/HSET + json", _json_encode, _json_decode),
    _by_hand_row("redis-py HGET/HSET + pickle", _pickle_encode, pickle.loads),
)
FILE_ROWS = tuple(
    scenarios.Candidate(
        f"file store `{method}`",
        scenarios._persist_opener(method, TestStruct),
        TestStruct,
    )
    for method in ("set_async", "set")
)


def prefill(url: str, namespace: str, encode: Callable, records: dict) -> None:
    """Write ``records`` into the map's hash in pipelined batches (untimed)."""
    with redis.Redis.from_url(url) as client, client.pipeline(False) as pipe:
        fields: list = []
        for key, value in records.items():
            fields += (key, encode(value))
            if len(fields) == 2 * PREFILL_BATCH:
                pipe.hset(f"{namespace}:{MAP}", items=fields).execute()
                fields = []
        if fields:
            pipe.hset(f"{namespace}:{MAP}", items=fields).execute()


def drop(url: str, namespace: str) -> None:
    with redis.Redis.from_url(url) as client:
        client.delete(f"{namespace}:{MAP}")


def as_candidate(row: RedisRow, url: str) -> scenarios.Candidate:
    """The row as ``scenarios.measure`` runs it: a fresh namespace per run
    (the run's temporary folder's name), dropped at close."""

    def open_store(folder: str, records: dict) -> Opened:
        namespace = os.path.basename(folder)
        prefill(url, namespace, row.encode, records)
        get, write, close = row.attach(url, namespace)

        def close_and_drop() -> None:
            close()
            drop(url, namespace)

        return get, write, close_and_drop

    return scenarios.Candidate(row.label, open_store, TestStruct)


def _child(row: RedisRow, url: str, namespace: str, part: list, start, done) -> None:
    """One client process: attach, wait for the start, run its slice."""
    get, write, close = row.attach(url, namespace)
    try:
        start.wait(60)
        scenarios.run_slice(get, write, part)
        done.put(None)
    except BaseException as exc:
        done.put(repr(exc))
        raise
    finally:
        close()


def measure_processes(
    row: RedisRow,
    url: str,
    sc: scenarios.Scenario,
    ops: list[data.Op],
    runs: int,
    budget: float,
    cut: bool,
) -> scenarios.Result:
    """The op list split over ``PROCESSES`` processes (forked), each attached
    on its own; the time from their common start until the last is done."""
    cand = as_candidate(row, url)
    work = scenarios.payloads(cand, ops)
    pilot = work[: max(100, min(2_000, len(work) // 50))]
    ctx = multiprocessing.get_context("fork")
    seconds, pilot_per_op = [], 0.0
    for run in range(runs):
        namespace = f"processes-{os.getpid()}-{run}"
        records = {
            str(i): scenarios._value(TestStruct, i, False) for i in range(sc.keys)
        }
        prefill(url, namespace, row.encode, records)
        get, write, close = row.attach(url, namespace)
        try:
            pilot_per_op = scenarios.timed(get, write, pilot, 1) / len(pilot)
        finally:
            close()
        if pilot_per_op * len(work) > budget:
            if not cut:
                drop(url, namespace)
                return scenarios.Result(
                    row.label, [], 0, len(work), None, pilot_per_op, True
                )
            work = work[: max(len(pilot), int(budget / pilot_per_op))]
        step = len(work) // PROCESSES
        start, done = ctx.Barrier(PROCESSES + 1), ctx.Queue()
        children = [
            ctx.Process(
                target=_child,
                args=(
                    row,
                    url,
                    namespace,
                    work[k * step : (k + 1) * step],
                    start,
                    done,
                ),
            )
            for k in range(PROCESSES)
        ]
        for child in children:
            child.start()
        try:
            start.wait(60)
            t0 = time.perf_counter()
            failures = [done.get(timeout=600) for _ in children]
            seconds.append(time.perf_counter() - t0)
        finally:
            for child in children:
                child.join(60)
            drop(url, namespace)
        if any(failures):
            raise RuntimeError(f"{row.label}: a client process failed: {failures}")
    return scenarios.Result(
        row.label, seconds, step * PROCESSES, len(ops), None, pilot_per_op
    )


def throughput(
    url: str, sc: scenarios.Scenario, runs: int, budget: float, cut: bool
) -> list[pyperf.Benchmark]:
    """Scenario 1 rows at every thread count, then the Redis rows at 4 processes."""
    ops = data.go_ops(sc.keys, sc.ops, sc.write_percent)
    meta = {
        "scenario": sc.name,
        "kind": "struct",
        "keys": sc.keys,
        "write_percent": sc.write_percent,
        "budget_s": budget,
        "machine": summary(machine()),
    }
    benchmarks = []
    workdir = tempfile.mkdtemp(prefix="persist-redis-bench-")
    try:
        candidates = [as_candidate(r, url) for r in REDIS_ROWS] + list(FILE_ROWS)
        for threads in sc.threads:
            for cand in candidates:
                res = scenarios.measure(
                    cand, sc, threads, ops, runs, budget, workdir, cut
                )
                _progress(f"{threads} threads", res)
                name = f"redis.{sc.name}.t{threads}.{cand.label}"
                extra = {"threads": threads, "processes": 1}
                benchmarks.append(scenarios.to_benchmark(name, res, {**meta, **extra}))
        for row in REDIS_ROWS:
            res = measure_processes(row, url, sc, ops, runs, budget, cut)
            _progress(f"{PROCESSES} processes", res)
            name = f"redis.{sc.name}.p{PROCESSES}.{row.label}"
            extra = {"threads": 1, "processes": PROCESSES}
            benchmarks.append(scenarios.to_benchmark(name, res, {**meta, **extra}))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return benchmarks


def _progress(where: str, res: scenarios.Result) -> None:
    if res.skipped:
        print(f"[{where}] {res.label}: skipped", file=sys.stderr)
        return
    s = statistics.median(res.seconds)
    print(f"[{where}] {res.label}: {res.ops / s:,.0f} ops/s", file=sys.stderr)


# --- single calls ---------------------------------------------------------------

KEYS = [str(i) for i in range(1_000)]
VALUE = TestStruct(7, "example struct")


def per_call(call: Callable, args: list[tuple], repeats: int) -> list[float]:
    """Seconds per call of ``call(*a)`` over ``args``, once per repeat."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for a in args:
            call(*a)
        out.append((time.perf_counter() - t0) / len(args))
    return out


def single_calls(
    url: str, fsync_url: str, folder: str, calls: int, fsync_calls: int, repeats: int
) -> list[pyperf.Benchmark]:
    """The single-call figures, each a pyperf benchmark (one value per repeat)."""
    encoded = persist.codec_for(TestStruct).encode(VALUE)
    gets = [(KEYS[i % len(KEYS)],) for i in range(calls)]
    sets = [(KEYS[i % len(KEYS)], VALUE) for i in range(calls)]
    raw_gets = [(f"calls:{MAP}", key) for (key,) in gets]
    raw_sets = [(f"calls:{MAP}", key, encoded) for (key,) in gets]
    fsyncs = sets[:fsync_calls]
    raw_fsyncs = raw_sets[:fsync_calls]
    cached_store = RedisStore(url, "calls")
    plain_store = RedisStore(url, "calls", local_cache=False)
    fsync_store = RedisStore(fsync_url, "calls")
    client = redis.Redis.from_url(url)
    fsync_client = redis.Redis.from_url(fsync_url)
    file_map = persist.open_single_map(os.path.join(folder, "calls.db"), TestStruct)
    cached = cached_store.map(MAP, TestStruct)
    plain = plain_store.map(MAP, TestStruct)
    durable = fsync_store.map(MAP, TestStruct)
    for key in KEYS:
        cached.set(key, VALUE)
        durable.set(key, VALUE)
        file_map.set(key, VALUE)
    for key in KEYS:
        cached.get(key)  # now in the local cache
    figures = [
        ("get", "RedisStore `get`, local cache", cached.get, gets),
        ("get", "RedisStore `get`, no local cache", plain.get, gets),
        ("get", "redis-py `HGET` (bytes, not decoded)", client.hget, raw_gets),
        ("get", "file store `get`", file_map.get, gets),
        ("set", "RedisStore `set`", cached.set, sets),
        ("set", "redis-py `HSET` of encoded bytes", client.hset, raw_sets),
        ("set", "RedisStore `set_async`", cached.set_async, sets),
        ("set", "file store `set`", file_map.set, sets),
        (
            "set_fsync",
            "RedisStore `set_fsync` (appendfsync always)",
            durable.set_fsync,
            fsyncs,
        ),
        (
            "set_fsync",
            "redis-py `HSET` (appendfsync always)",
            fsync_client.hset,
            raw_fsyncs,
        ),
        ("set_fsync", "file store `set_fsync`", file_map.set_fsync, fsyncs),
    ]
    benchmarks = []
    try:
        for op, label, call, args in figures:
            values = per_call(call, args, repeats)
            print(
                f"[calls] {label}: {report._format(statistics.median(values))}",
                file=sys.stderr,
            )
            metadata = {
                "name": f"redis.calls.{label}",
                "label": label,
                "op": op,
                "unit": "second",
                "calls": len(args),
            }
            runs = [
                pyperf.Run([v], metadata=metadata, collect_metadata=False)
                for v in values
            ]
            benchmarks.append(pyperf.Benchmark(runs))
    finally:
        for store in (cached_store, plain_store, fsync_store):
            store.close()
        file_map.store.close()
        client.close()
        fsync_client.close()
    return benchmarks


# --- tables -----------------------------------------------------------------------


def tables(benchmarks: list[pyperf.Benchmark]) -> str:
    """Markdown: ops/s per row and concurrency; then µs per single call."""
    columns: list[str] = []
    rows: dict[str, dict[str, str]] = {}
    calls = [
        "| call | label | time per call | vs the first of its call |",
        "|---|---|---:|---:|",
    ]
    first: dict[str, float] = {}
    heading = ""
    for b in benchmarks:
        meta = b.get_metadata()
        median = statistics.median(b.get_values())
        if "op" in meta:
            base = first.setdefault(meta["op"], median)
            figure = f"{report._format(median)} | {report._ratio(median / base)}"
            calls.append(f"| {meta['op']} | {meta['label']} | {figure} |")
            continue
        heading = (
            f"#### {meta['scenario']}: {meta['keys']:,} keys, "
            f"{meta['planned_ops']:,} ops ({meta['write_percent']}% writes), ops/s"
        )
        column = (
            f"{meta['processes']} processes"
            if meta["processes"] > 1
            else f"{meta['threads']} thread{'s' if meta['threads'] > 1 else ''}"
        )
        if column not in columns:
            columns.append(column)
        cell = "skipped" if meta["skipped"] else f"{1 / median:,.0f}"
        if meta["ops"] < meta["planned_ops"] and not meta["skipped"]:
            cell += f" ({meta['ops']:,} ops)"
        rows.setdefault(meta["label"], {})[column] = cell
    out = []
    if rows:
        out += [
            heading,
            "",
            "| Solution | " + " | ".join(columns) + " |",
            "|---|" + "---:|" * len(columns),
        ]
        out += [
            f"| {label} | " + " | ".join(cells.get(c, "—") for c in columns) + " |"
            for label, cells in rows.items()
        ]
        out.append("")
    if len(calls) > 2:
        out += ["#### Single calls (median of the repeats)", "", *calls]
    return "\n".join(out)


def run_all(
    url: str,
    fsync_url: str,
    sc: scenarios.Scenario,
    runs: int,
    budget: float,
    cut: bool,
    calls: int,
    fsync_calls: int,
    repeats: int,
) -> list[pyperf.Benchmark]:
    """Every figure, against the given servers (``fsync_url``: appendfsync always)."""
    folder = tempfile.mkdtemp(prefix="persist-redis-calls-")
    try:
        benchmarks = throughput(url, sc, runs, budget, cut)
        benchmarks += single_calls(url, fsync_url, folder, calls, fsync_calls, repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return benchmarks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, < 3 minutes")
    parser.add_argument("--runs", type=int, default=1, help="timed runs per row")
    parser.add_argument(
        "--budget",
        type=float,
        help="seconds per row before it is cut (default: 2 quick, 120 full)",
    )
    parser.add_argument("-o", "--output", default=os.path.join(RESULTS, "redis.json"))
    args = parser.parse_args()
    if not shutil.which("redis-server") and not os.path.exists(SERVER_BINARY):
        sys.exit(
            "redis_bench: redis-server is not installed (apt-get install redis-server)"
        )
    sc, budget = (QUICK, QUICK_BUDGET) if args.quick else (FULL, FULL_BUDGET)
    if args.budget is not None:
        budget = args.budget
    calls, fsync_calls, repeats = (2_000, 200, 5) if args.quick else (20_000, 2_000, 7)
    host = machine()
    home = Path(tempfile.mkdtemp(prefix="persist-redis-servers-"))
    servers = [
        RedisServer(home / "everysec", appendfsync="everysec"),
        RedisServer(home / "always", appendfsync="always"),
    ]
    try:
        for server in servers:
            server.start()
        benchmarks = run_all(
            servers[0].url,
            servers[1].url,
            sc,
            args.runs,
            budget,
            True,
            calls,
            fsync_calls,
            repeats,
        )
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(home, ignore_errors=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    pyperf.BenchmarkSuite(benchmarks).dump(args.output, replace=True)
    finish({"machine": host}, tables(benchmarks), None)


if __name__ == "__main__":
    main()
