"""Writer stalls during a shrink of a large store (issue 7, item 7).

    python perf/bench_shrink_stall.py                      # markdown table on stdout
    python perf/bench_shrink_stall.py -o perf/results/shrink_stall.json
    python perf/bench_shrink_stall.py --quick              # 200K records, 1 repeat

What it does, per writer method (``set`` and ``set_async``) and repeat:

1. Builds, once, a store file of about 250 MB in a temporary directory by
   writing the go-persist bytes directly (``go-persist 1\\n`` then
   ``S users:user:<i>\\n<json>\\n`` records): ``--keys`` live keys (1.2M) plus
   ``--overwrites`` (300K) older versions of some of them, so a shrink has
   work to drop; each value is the JSON of a ``User`` of about 150 bytes.
   Each repeat copies that file and opens the copy with
   ``persist.Store(path)`` then ``store.map("users", User)``.
2. Shrink window: 2 writer threads call ``m.set(key, value)`` (or
   ``set_async``) in a tight loop on existing keys (each thread its own),
   taking ``time.perf_counter_ns()`` after every completed call; after a
   short warm-up ``store.shrink()`` runs in a third thread. Gaps whose
   interval overlaps the shrink are counted.
3. Baseline window: the same writers for the same length as the shrink just
   took, on the same (now shrunk) store, with no shrink.

Reported for each window: the shrink's duration, the longest gap between two
consecutive completed calls of one writer, p99.9 and p99 of those gaps, the
longest time in which *no* writer completed a call, the calls/s, and the
cyclic GC's longest pause (from ``gc.callbacks``) and the GC time inside the
longest gap, which tell a stall of the interpreter from one of the store, and
when the longest gap ended (a gap ending just before ``shrink()`` returns is
its final switch to the new file). ``--gc-freeze`` runs ``gc.freeze()``
after the open, to see what is left without collections of the loaded data.
Medians over ``--repeat`` (3) repeats are shown; every run is in the JSON.
The machine is shared and noisy: look at orders of magnitude, not digits.
The switch interval of the GIL (5 ms by default) bounds how short a stall
can be when a thread that holds the GIL is busy computing.

A plain script (not pyperf): it measures a distribution of latencies inside
one long operation, which pyperf's loop-timing model does not cover.

Nothing is left on disk: every file lives in a ``tempfile.TemporaryDirectory``.
Run as a script (not ``-m`` from the repository root) so the installed,
compiled persist is measured, not the source folder.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from array import array

from machine import finish, machine
from persist.schemas.examples import User

import persist

WARMUP_S = 0.3
TAIL_S = 0.2
WRITERS = 2
MODES = ("set", "set_async")


# -- the file ------------------------------------------------------------------


def _user(i: int, version: int) -> User:
    # JSON about 150 bytes: {"Name":"...","Email":"...","Age":N}
    return User(
        f"user number {i:07d} of the shrink-stall benchmark of persist, "
        f"version {version}",
        f"user.{i:07d}.v{version}@stall-benchmark.persist.example.com",
        (i + version) % 90,
    )


def _json(u: User) -> str:
    return json.dumps(
        {"Name": u.name, "Email": u.email, "Age": u.age},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def build_file(path: str, keys: int, overwrites: int) -> dict:
    """Write the WAL bytes directly: ``overwrites`` stale versions, then every key."""
    t0 = time.perf_counter()
    chunk = 50_000
    with open(path, "wb") as f:
        f.write(b"go-persist 1\n")
        # Older versions first (keys spread over the whole range), then the live ones.
        stride = max(1, keys // max(1, overwrites))
        for version, idx in ((0, range(0, keys, stride)), (1, range(keys))):
            idx = list(idx)[: overwrites if version == 0 else keys]
            for s in range(0, len(idx), chunk):
                lines = []
                for i in idx[s : s + chunk]:
                    u = _user(i, version)
                    lines.append(f"S users:user:{i}\n{_json(u)}\n")
                f.write("".join(lines).encode())
    size = os.path.getsize(path)
    return {
        "keys": keys,
        "records": keys + min(overwrites, len(range(0, keys, stride))),
        "bytes": size,
        "value_bytes": len(_json(_user(keys - 1, 1)).encode()),
        "build_s": time.perf_counter() - t0,
    }


# -- the measurement -----------------------------------------------------------


class GcWatch:
    """Pauses of the cyclic GC, as (start_ns, end_ns, generation)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, int, int]] = []
        self._t = 0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t = time.perf_counter_ns()
        else:
            self.pauses.append((self._t, time.perf_counter_ns(), info["generation"]))

    def __enter__(self):
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self)


def run_writers(m, mode: str, keys: int, action, *, window_s: float | None = None):
    """Run WRITERS writer threads around ``action()`` (or ``window_s`` seconds).

    Returns (timestamps per writer, t_start_ns, t_end_ns) where the window is
    the time ``action`` ran.
    """
    stamps = [array("q") for _ in range(WRITERS)]
    stop = False
    ready = threading.Barrier(WRITERS + 1)

    def writer(t: int) -> None:
        call = getattr(m, mode)
        my_keys = [f"user:{i}" for i in range(t, keys, WRITERS)[:100_000]]
        values = [_user(i, 2) for i in range(16)]
        n_keys = len(my_keys)
        out = stamps[t]
        push = out.append
        now = time.perf_counter_ns
        n = 0
        ready.wait()
        push(now())
        while not stop:
            call(my_keys[n % n_keys], values[n & 15])
            push(now())
            n += 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(WRITERS)]
    for th in threads:
        th.start()
    ready.wait()
    time.sleep(WARMUP_S)
    t_start = time.perf_counter_ns()
    if action is not None:
        action()
    else:
        time.sleep(window_s)
    t_end = time.perf_counter_ns()
    time.sleep(TAIL_S)
    stop = True
    for th in threads:
        th.join()
    return stamps, t_start, t_end


def _pct(sorted_vals: list[int], q: float) -> int:
    if not sorted_vals:
        return 0
    return sorted_vals[min(len(sorted_vals) - 1, int(q * (len(sorted_vals) - 1) + 0.5))]


def analyse(stamps, t_start: int, t_end: int, gcw: GcWatch) -> dict:
    """Gaps (ns) whose interval overlaps [t_start, t_end]."""
    gaps: list[int] = []
    worst = (0, 0)  # (gap, end time)
    calls = 0
    for ts in stamps:
        prev = None
        for t in ts:
            if prev is not None and t >= t_start and prev <= t_end:
                g = t - prev
                gaps.append(g)
                if g > worst[0]:
                    worst = (g, t)
            if t_start <= t <= t_end:
                calls += 1
            prev = t
    gaps.sort()
    # No writer at all completing a call: gaps of the merged timeline.
    merged = sorted(
        t for ts in stamps for t in ts if t_start - 10**9 <= t <= t_end + 10**9
    )
    all_stall = 0
    for a, b in itertools.pairwise(merged):
        if b >= t_start and a <= t_end and b - a > all_stall:
            all_stall = b - a
    in_window = [(s, e, g) for s, e, g in gcw.pauses if e >= t_start and s <= t_end]
    window_s = (t_end - t_start) / 1e9
    return {
        "window_s": window_s,
        "calls": calls,
        "calls_per_s": calls / window_s if window_s else None,
        "max_gap_ms": gaps[-1] / 1e6 if gaps else None,
        # When the worst gap ended: from the window's start, and before its end
        # (< 0: after the window).
        "max_gap_at_s": (worst[1] - t_start) / 1e9,
        "max_gap_before_end_s": (t_end - worst[1]) / 1e9,
        # GC time inside the worst gap: an interpreter pause, not a store stall.
        "max_gap_gc_ms": sum(
            max(0, min(e, worst[1]) - max(s, worst[1] - worst[0]))
            for s, e, _ in gcw.pauses
        )
        / 1e6,
        "p999_gap_ms": _pct(gaps, 0.999) / 1e6,
        "p99_gap_ms": _pct(gaps, 0.99) / 1e6,
        "p50_gap_us": _pct(gaps, 0.5) / 1e3,
        "gaps_over_5ms": sum(1 for g in gaps if g > 5_000_000),
        "gaps_over_50ms": sum(1 for g in gaps if g > 50_000_000),
        "all_writers_stall_ms": all_stall / 1e6,
        "gc_collections": len(in_window),
        "gc_max_pause_ms": max(((e - s) / 1e6 for s, e, _ in in_window), default=0.0),
        "gc_gen2_collections": sum(1 for _, _, g in in_window if g == 2),
    }


def one_run(template: str, folder: str, mode: str, keys: int, gc_freeze: bool) -> dict:
    path = os.path.join(folder, "stall.db")
    shutil.copyfile(template, path)
    t0 = time.perf_counter()
    store = persist.Store(path)
    m = store.map("users", User)
    open_s = time.perf_counter() - t0
    if gc_freeze:
        gc.collect()
        gc.freeze()
    before = store.stats()
    size_before = os.path.getsize(path)
    with GcWatch() as gcw:
        shrink_err: list[BaseException] = []

        def do_shrink(store=store) -> None:
            th = threading.Thread(target=_shrink, args=(store, shrink_err))
            th.start()
            th.join()

        stamps, s0, s1 = run_writers(m, mode, keys, do_shrink)
        if shrink_err:
            raise shrink_err[0]
        shrink_s = (s1 - s0) / 1e9
        during = analyse(stamps, s0, s1, gcw)
        after = store.stats()
        size_after = os.path.getsize(path)
        del stamps
        stamps, b0, b1 = run_writers(m, mode, keys, None, window_s=shrink_s)
        baseline = analyse(stamps, b0, b1, gcw)
        del stamps
    store.close()
    del m, store
    if gc_freeze:
        gc.unfreeze()
    gc.collect()
    os.unlink(path)
    return {
        "mode": mode,
        "open_s": open_s,
        "shrink_s": shrink_s,
        "stats_before": list(before),
        "stats_after_shrink": list(after),
        "file_bytes_before": size_before,
        "file_bytes_after_shrink": size_after,
        "during_shrink": during,
        "baseline": baseline,
    }


def _shrink(store, errors: list) -> None:
    try:
        store.shrink()
    except BaseException as e:  # reported by the caller
        errors.append(e)


# -- output --------------------------------------------------------------------


def summarize(runs: list[dict]) -> dict:
    out: dict = {"shrink_s": statistics.median(r["shrink_s"] for r in runs)}
    out["open_s"] = statistics.median(r["open_s"] for r in runs)
    for window in ("baseline", "during_shrink"):
        out[window] = {
            k: statistics.median(r[window][k] for r in runs)
            for k in runs[0][window]
            if isinstance(runs[0][window][k], (int, float))
        }
    return out


ROWS = [
    ("shrink duration (s)", None, "shrink_s", ".2f"),
    ("longest gap, one writer (ms)", "max_gap_ms", None, ".1f"),
    ("p99.9 gap (ms)", "p999_gap_ms", None, ".2f"),
    ("p99 gap (ms)", "p99_gap_ms", None, ".3f"),
    ("median gap (µs)", "p50_gap_us", None, ".1f"),
    (
        "longest time no writer completed a call (ms)",
        "all_writers_stall_ms",
        None,
        ".1f",
    ),
    ("gaps > 5 ms", "gaps_over_5ms", None, ".0f"),
    ("gaps > 50 ms", "gaps_over_50ms", None, ".0f"),
    ("calls/s (both writers)", "calls_per_s", None, ",.0f"),
    ("longest GC pause in window (ms)", "gc_max_pause_ms", None, ".1f"),
    ("GC time inside the longest gap (ms)", "max_gap_gc_ms", None, ".1f"),
    (
        "longest gap ended ... s before the window's end",
        "max_gap_before_end_s",
        None,
        ".2f",
    ),
]


def table(results: dict) -> str:
    modes = results["modes"]
    head = f"| median of {results['repeat']} | " + " | ".join(
        f"{m} baseline | {m} during shrink" for m in modes
    )
    lines = [head + " |", "|---" * (1 + 2 * len(modes)) + "|"]
    for label, key, top, fmt in ROWS:
        cells = []
        for m in modes:
            s = results["summary"][m]
            if top:
                cells += ["", format(s[top], fmt)]
            else:
                cells += [
                    format(s["baseline"][key], fmt),
                    format(s["during_shrink"][key], fmt),
                ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    f = results["file"]
    open_s = statistics.median(results["summary"][m]["open_s"] for m in modes)
    lines.append("")
    lines.append(
        f"Store: {f['records']:,} records, {f['keys']:,} live keys, "
        f"{f['bytes'] / 1e6:.0f} MB, values of {f['value_bytes']} bytes; "
        f"open took {open_s:.1f} s (median). {WRITERS} writer threads; "
        "worst gap per run (ms), baseline -> shrink: "
        + "; ".join(
            m
            + ": "
            + ", ".join(
                f"{r['baseline']['max_gap_ms']:.0f}->{r['during_shrink']['max_gap_ms']:.0f}"
                for r in results["runs"][m]
            )
            for m in modes
        )
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", help="write the results as JSON to this file")
    ap.add_argument("--keys", type=int, default=1_200_000, help="live keys")
    ap.add_argument("--overwrites", type=int, default=300_000, help="stale records")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--modes", default=",".join(MODES), help="set,set_async")
    ap.add_argument("--quick", action="store_true", help="200K keys, 1 repeat")
    ap.add_argument("--dir", default=None, help="parent of the temporary directory")
    ap.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() after open (diagnosis: how much of a stall is the cyclic GC)",
    )
    args = ap.parse_args()
    if args.quick:
        args.keys, args.overwrites, args.repeat = 160_000, 40_000, 1
    modes = [x for x in args.modes.split(",") if x]
    results: dict = {
        "benchmark": "shrink_stall",
        "machine": machine(),
        "repeat": args.repeat,
        "modes": modes,
        "writers": WRITERS,
        "gc_freeze": args.gc_freeze,
        "runs": {m: [] for m in modes},
    }
    with tempfile.TemporaryDirectory(prefix="persist-bench-", dir=args.dir) as folder:
        template = os.path.join(folder, "template.db")
        results["file"] = build_file(template, args.keys, args.overwrites)
        print(
            f"built {results['file']['bytes'] / 1e6:.0f} MB in "
            f"{results['file']['build_s']:.1f} s",
            file=sys.stderr,
        )
        for r in range(args.repeat):
            for m in modes:
                run = one_run(template, folder, m, args.keys, args.gc_freeze)
                results["runs"][m].append(run)
                d = run["during_shrink"]
                print(
                    f"  [{r + 1}/{args.repeat}] {m:9} open {run['open_s']:.1f} s, "
                    f"shrink {run['shrink_s']:.2f} s, longest gap "
                    f"{run['baseline']['max_gap_ms']:.1f} ms baseline / "
                    f"{run['during_shrink']['max_gap_ms']:.1f} ms during shrink "
                    f"(at {d['max_gap_at_s']:.2f} s, ending "
                    f"{d['max_gap_before_end_s'] * 1e3:.0f} ms before the shrink "
                    f"returned, {d['max_gap_gc_ms']:.0f} ms of it GC)",
                    file=sys.stderr,
                )
    results["summary"] = {m: summarize(results["runs"][m]) for m in modes}
    finish(results, table(results), args.output)


if __name__ == "__main__":
    main()
