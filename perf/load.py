"""go-persist's load benchmark (``benchmark-load``) for persist, its rivals and Go.

Run by ``python perf/gobench.py [--quick | --rigorous] [--only load]``.

The data set is Go's: 5 maps (``map1`` .. ``map5``) x 40,960 records of its
``ComplexRecord`` (``persist.schemas.bench.LoadRecord``: ID, Name, a
42-character Description, a 1,024-character Data, Meta with two ints and three
tags; about 1,215 bytes of JSON each, 241 MB in persist's file), keys
``key-<i>``. ``--quick`` uses 2,048 records per map and 100 cycles.

Every phase runs in a fresh process (``--child``), so each RSS figure is what
that phase added to an interpreter that had imported everything:

- write: records already in memory (unpickled before the clock), time to
  create the store and put every record (persist: ``set`` per record, as Go;
  peers: their bulk load), close included;
- one: open + one get (``map3``/``key-40000``);
- gets: open + 40,000 gets of ``map3`` keys in a seeded random order;
- all: open + a get of every record of every map;
- cycles: 1,000 x (open, one get, close) of a small file (5 x 20 records);

then the file size (every file in the store's folder). Every get returns the
record decoded into its class (orjson: a dict; it builds no classes).

The orjson and msgspec rows are floors, not stores: write encodes every record
as a line of the go-persist format and writes the file at once; open reads the
file and decodes every value line. The Go row (``go-persist (Go)``) is the Go
library itself, built from ``perf/go`` under /tmp; it writes and reads the
file persist wrote. When Go cannot be built its row is the issue's figures,
marked as not measured here.

Timing: one plain ``time.perf_counter`` figure per phase (median of three
under ``--rigorous``), stored as pyperf JSON; a phase takes seconds and runs
once on purpose (a second open in the same process would find warm caches and
a grown heap). Run as a script so the installed, compiled persist is measured.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import data
from machine import machine, summary

if TYPE_CHECKING:
    import pyperf

HERE = os.path.dirname(os.path.abspath(__file__))
FULL_RECORDS = 40_960
QUICK_RECORDS = 2_048
SMALL_RECORDS = 20


def rss() -> int:
    """Resident set size of this process in bytes (VmRSS)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return -1


# --- candidates (run inside the child) -----------------------------------------


class PersistCandidate:
    """persist: one Store, one typed map per Go map, ``set`` per record."""

    def __init__(self, compiled: bool) -> None:
        if compiled:
            from persist.schemas.bench import LoadMeta, LoadRecord
        else:
            from twins import LoadMeta, LoadRecord
        self.record, self.meta = LoadRecord, LoadMeta

    def prepare(self, maps: dict[str, list]) -> dict[str, list]:
        return {
            name: [(k, _convert(r, self.record, self.meta)) for k, r in items]
            for name, items in maps.items()
        }

    def _open(self, folder: str):
        import persist

        store = persist.Store()
        handles = {name: store.map(name, self.record) for name in data.GO_MAPS}
        store.open(os.path.join(folder, "persist.db"))
        return store, handles

    def write(self, folder: str, maps: dict[str, list]) -> None:
        store, handles = self._open(folder)
        for name, items in maps.items():
            put = handles[name].set
            for key, record in items:
                put(key, record)
        store.close()

    def open(self, folder: str):
        store, handles = self._open(folder)
        self.handles = handles
        return (lambda name, key: handles[name][key]), store.close

    def read_map(self, name: str) -> list:
        """Every value of map ``name`` by persist's bulk read (``values()``)."""
        return self.handles[name].values()


class PeerCandidate:
    """A rival from ``perf/compare``: keys ``<map>:<key>`` in one store."""

    def __init__(self, module: str) -> None:
        import importlib

        self.module = importlib.import_module(f"compare.{module}")

    def prepare(self, maps: dict[str, list]) -> dict[str, list]:
        return maps

    def write(self, folder: str, maps: dict[str, list]) -> None:
        flat = {f"{name}:{k}": r for name, items in maps.items() for k, r in items}
        _get, _set, close = self.module.open_store(folder, flat)
        close()

    def open(self, folder: str):
        get, _set, close = self.module.open_store(folder, {})

        def lookup(name, key):
            value = get(f"{name}:{key}")
            if value is None:
                raise KeyError(key)
            return value

        return lookup, close


class LineCandidate:
    """A floor: the go-persist file format, every value line decoded at open."""

    def __init__(self, codec: str) -> None:
        self.codec = codec
        self._codec()  # import it now: RSS before a phase includes the imports

    def prepare(self, maps: dict[str, list]) -> dict[str, list]:
        from msgspec_records import from_attrs, to_go_dict

        if self.codec == "orjson":
            return {n: [(k, to_go_dict(r)) for k, r in it] for n, it in maps.items()}

        return {n: [(k, from_attrs(r)) for k, r in it] for n, it in maps.items()}

    def _codec(self):
        if self.codec == "orjson":
            import orjson

            return orjson.dumps, orjson.loads
        import msgspec
        from msgspec_records import Record

        return msgspec.json.Encoder().encode, msgspec.json.Decoder(Record).decode

    def write(self, folder: str, maps: dict[str, list]) -> None:
        encode, _ = self._codec()
        parts = [b"go-persist 1\n"]
        for name, items in maps.items():
            for key, record in items:
                parts.append(f"S {name}:{key}\n".encode() + encode(record) + b"\n")
        with open(os.path.join(folder, "lines.db"), "wb") as out:
            out.write(b"".join(parts))

    def open(self, folder: str):
        _, decode = self._codec()
        with open(os.path.join(folder, "lines.db"), "rb") as f:
            lines = f.read().split(b"\n")
        maps: dict[str, dict] = {}
        for i in range(1, len(lines) - 1, 2):
            name, _, key = lines[i][2:].decode().partition(":")
            maps.setdefault(name, {})[key] = decode(lines[i + 1])
        return (lambda name, key: maps[name][key]), lambda: None


def _convert(record, record_cls, meta_cls):
    if type(record) is record_cls:
        return record
    m = record.meta
    return record_cls(
        record.id,
        record.name,
        record.description,
        record.data,
        meta_cls(m.created_at, m.updated_at, list(m.tags)),
    )


PYTHON_CANDIDATES = {
    "persist (compiled)": lambda: PersistCandidate(compiled=True),
    "persist (runtime)": lambda: PersistCandidate(compiled=False),
    "diskcache Cache": lambda: PeerCandidate("diskcache_"),
    "diskcache Index": lambda: PeerCandidate("diskcache_index"),
    "sqlitedict": lambda: PeerCandidate("sqlitedict_batched"),
    "shelve": lambda: PeerCandidate("shelve_"),
    "lmdb": lambda: PeerCandidate("lmdb_nosync"),
    "orjson (read + decode lines)": lambda: LineCandidate("orjson"),
    "msgspec (read + decode lines)": lambda: LineCandidate("msgspec"),
}
GO_LABEL = "go-persist (Go)"


def record_id(value) -> str:
    return value["ID"] if isinstance(value, dict) else value.id


def child(phase: str, label: str, folder: str, records: str, n: int, cycles: int):
    """One phase of one candidate, in this (fresh) process; returns the JSON result."""
    cand = PYTHON_CANDIDATES[label]()
    if phase in ("write", "small"):
        with open(records, "rb") as f:
            maps = cand.prepare(pickle.load(f))
    order = data.shuffled(gets_count(n))  # drawn before the clock, as Go's keys
    before = rss()
    t0 = time.perf_counter()
    if phase in ("write", "small"):
        cand.write(folder, maps)
    elif phase == "one":
        get, close = cand.open(folder)
        i = one_index(n)
        assert record_id(get("map3", f"key-{i}")) == f"map3-{i}"
    elif phase == "gets":
        get, close = cand.open(folder)
        for i in order:
            assert record_id(get("map3", f"key-{i}")) == f"map3-{i}"
    elif phase == "all":
        get, close = cand.open(folder)
        read_map = getattr(cand, "read_map", None)  # a bulk read, where there is one
        seen = []
        for name in data.GO_MAPS:
            if read_map is None:
                for i in range(n):
                    assert record_id(get(name, f"key-{i}")) == f"{name}-{i}"
            else:
                seen.append([record_id(value) for value in read_map(name)])
    elif phase == "cycles":
        for _ in range(cycles):
            get, close = cand.open(folder)
            assert record_id(get("map3", "key-10")) == "map3-10"
            close()
    seconds = time.perf_counter() - t0
    after = rss()
    for name, ids in zip(data.GO_MAPS, seen if phase == "all" else (), strict=False):
        assert sorted(ids) == sorted(f"{name}-{i}" for i in range(n))  # untimed
    if phase in ("one", "gets", "all"):
        close()
    return {"seconds": seconds, "rss_before": before, "rss_after": after}


def one_index(n: int) -> int:
    """Go reads ``key-40000`` of 40,960; the same place in a smaller map."""
    return n * 40_000 // FULL_RECORDS


def gets_count(n: int) -> int:
    """Go's 40,000 random gets of 40,960 records; as many per record when smaller."""
    return n * 40_000 // FULL_RECORDS


# --- the parent: one subprocess per phase ---------------------------------------


@dataclass
class Plan:
    records: int
    cycles: int
    runs: int


def _run_child(args: list[str]) -> dict:
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _python_phase(label, phase, folder, records_path, plan) -> dict:
    return _run_child(
        [
            sys.executable,
            os.path.join(HERE, "load.py"),
            "--child",
            phase,
            label,
            folder,
            records_path,
            str(plan.records),
            str(plan.cycles),
        ]
    )


def _go_phase(binary, phase, folder, small, persist_folder, plan) -> dict:
    maps = list(data.GO_MAPS)
    db = os.path.join(folder, "persist.db")
    if phase == "write":
        src = os.path.join(persist_folder, "persist.db")
        args = [binary, "write", src, db, *maps]
    elif phase == "small":
        src = os.path.join(persist_folder + "-small", "persist.db")
        args = [binary, "write", src, os.path.join(small, "persist.db"), *maps]
    elif phase == "one":
        args = [binary, "one", db, "map3", f"key-{one_index(plan.records)}", *maps]
    elif phase == "gets":
        args = [binary, "gets", db, "map3", str(gets_count(plan.records)), *maps]
    elif phase == "all":
        args = [binary, "all", db, *maps]
    else:
        small_db = os.path.join(small, "persist.db")
        args = [binary, "cycles", small_db, "map3", "key-10", str(plan.cycles), *maps]
    return _run_child(args)


def build_go() -> str | None:
    """perf/go built against go-persist (perf/go/build.sh), or None if it cannot be."""
    try:
        out = subprocess.run(
            ["bash", os.path.join(HERE, "go", "build.sh")],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    return path if out.returncode == 0 and os.access(path, os.X_OK) else None


PHASES = ("write", "one", "gets", "all", "cycles")


def measure_all(
    plan: Plan, labels: list[str], go: str | None
) -> list[pyperf.Benchmark]:
    """Every candidate's phases in fresh processes; progress on stderr."""
    from persist.schemas.bench import LoadMeta, LoadRecord

    workdir = tempfile.mkdtemp(prefix="persist-load-")
    host = machine()
    benchmarks = []
    try:
        records_path = os.path.join(workdir, "records.pickle")
        small_path = os.path.join(workdir, "small.pickle")
        for path, n in ((records_path, plan.records), (small_path, SMALL_RECORDS)):
            maps = {
                name: data.load_records(LoadRecord, LoadMeta, name, n)
                for name in data.GO_MAPS
            }
            with open(path, "wb") as f:
                pickle.dump(maps, f, protocol=pickle.HIGHEST_PROTOCOL)
            del maps
        order = labels + ([GO_LABEL] if go else [])
        for label in order:
            slug = "".join(c if c.isalnum() else "-" for c in label)
            folder = os.path.join(workdir, slug)
            small = folder + "-small"
            persist_folder = os.path.join(workdir, "persist--compiled-")
            results: dict[str, list[dict]] = {p: [] for p in PHASES}
            for _ in range(plan.runs):
                for d in (folder, small):
                    shutil.rmtree(d, ignore_errors=True)
                    os.makedirs(d)
                for phase in ("write", "small", *PHASES[1:]):
                    if label == GO_LABEL:
                        res = _go_phase(go, phase, folder, small, persist_folder, plan)
                    else:
                        target = small if phase in ("small", "cycles") else folder
                        source = small_path if phase == "small" else records_path
                        res = _python_phase(label, phase, target, source, plan)
                    if phase != "small":
                        results[phase].append(res)
            size = data_size(folder)
            benchmarks += _benchmarks(label, results, size, plan, host)
            _progress(label, results, size)
            if label != "persist (compiled)":
                shutil.rmtree(folder, ignore_errors=True)
                shutil.rmtree(small, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return benchmarks


def data_size(folder: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _dirs, files in os.walk(folder)
        for name in files
    )


def _benchmarks(label, results, size, plan, host) -> list[pyperf.Benchmark]:
    import pyperf  # here, not at the top: the tests run the suite without it

    out = []
    for phase, runs in results.items():
        metadata = {
            "name": f"load.{phase}.{label}",
            "label": label,
            "phase": phase,
            "records_per_map": plan.records,
            "cycles": plan.cycles,
            "file_size": size,
            "rss_added": int(
                statistics.median(r["rss_after"] - r["rss_before"] for r in runs)
            ),
            "rss_after": int(statistics.median(r["rss_after"] for r in runs)),
            "unit": "second",
            "machine": summary(host),
        }
        out.append(
            pyperf.Benchmark(
                [
                    pyperf.Run(
                        [r["seconds"]], metadata=metadata, collect_metadata=False
                    )
                    for r in runs
                ]
            )
        )
    return out


def _progress(label: str, results: dict, size: int) -> None:
    cells = ", ".join(
        f"{phase} {statistics.median(r['seconds'] for r in runs):.2f} s"
        for phase, runs in results.items()
    )
    print(f"[load] {label}: {cells}, {size / 2**20:.1f} MB", file=sys.stderr)


def plan(quick: bool, runs: int = 1) -> Plan:
    """Go's sizes, or ``--quick``'s: 2,048 records per map and 100 cycles."""
    if quick:
        return Plan(QUICK_RECORDS, 100, runs)
    return Plan(FULL_RECORDS, 1_000, runs)


def main() -> None:
    """The entry of a phase's process: ``load.py --child PHASE LABEL ...``."""
    if sys.argv[1:2] != ["--child"]:
        sys.exit("run the load benchmark with: python perf/gobench.py --only load")
    phase, label, folder, records, n, cycles = sys.argv[2:8]
    print(json.dumps(child(phase, label, folder, records, int(n), int(cycles))))


if __name__ == "__main__":
    main()
