"""The mixed workload (80% get / 20% writes over 100K keys) for persist and its rivals.

    python perf/bench_map.py -o perf/results/map.json

Run as a script (not ``-m`` from the repository root) so the installed,
compiled persist is measured, not the source folder.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import time

import data
import pyperf
from persist.schemas.examples import User

import persist

RIVALS = ["dict_plain", "dict_lock", "diskcache_", "sqlitedict_", "lmdb_", "shelve_"]


def _persist_store(write):
    def open_store(folder, records):
        m = persist.open_single_map(os.path.join(folder, "bench.db"), User)
        for key, value in records.items():
            m.set_async(key, value)
        m.sync()
        return m.get, getattr(m, write), m.store.close

    return open_store


def _mixed(open_store):
    """A pyperf time function that builds its store on first call (in the worker)."""
    state = {}

    def time_func(loops: int) -> float:
        if not state:
            records = data.users()
            state["ops"] = data.mixed_ops(list(records))
            folder = tempfile.mkdtemp(prefix="persist-bench-")
            state["get"], state["set"], _close = open_store(folder, records)
        get, set_, ops = state["get"], state["set"], state["ops"]
        value = User("new name", "new@example.com", 7)
        t0 = time.perf_counter()
        for _ in range(loops):
            for is_write, key in ops:
                if is_write:
                    set_(key, value)
                else:
                    get(key)
        return time.perf_counter() - t0

    return time_func


def _time_sync_baseline(loops: int, fd, ops, value) -> float:
    """A dict plus one os.write of a JSON line per write: the floor for ``set``."""
    d = {}
    t0 = time.perf_counter()
    for _ in range(loops):
        for is_write, key in ops:
            if is_write:
                d[key] = value
                line = json.dumps(
                    {"Name": value.name, "Email": value.email, "Age": value.age},
                    separators=(",", ":"),
                )
                os.write(fd, f"S :{key}\n{line}\n".encode())
            else:
                d.get(key)
    return time.perf_counter() - t0


def main() -> None:
    runner = pyperf.Runner()
    inner = data.OPS
    for write in ("set_async", "set"):
        runner.bench_time_func(
            f"map.mixed.persist-{write}",
            _mixed(_persist_store(write)),
            inner_loops=inner,
        )
    folder = tempfile.mkdtemp(prefix="persist-bench-")
    fd = os.open(os.path.join(folder, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    ops = data.mixed_ops([f"user:{i}" for i in range(data.KEYS)])
    runner.bench_time_func(
        "map.mixed.dict+os.write",
        _time_sync_baseline,
        fd,
        ops,
        User("n", "e", 1),
        inner_loops=inner,
    )
    for module in RIVALS:
        rival = importlib.import_module(f"compare.{module}")
        runner.bench_time_func(
            f"map.mixed.{rival.label}", _mixed(rival.open_store), inner_loops=inner
        )


if __name__ == "__main__":
    main()
