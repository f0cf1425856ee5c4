"""Group commit scaling: ops/s of ``set_fsync`` and ``set`` at 1..16 writer threads.

    python perf/bench_commit.py                    # markdown table on stdout
    python perf/bench_commit.py -o perf/results/commit.json
    python perf/bench_commit.py --strace    # also count write/fsync calls per record
    python perf/bench_commit.py --quick     # 0.5 s points, 1 repeat (a smoke run)

Each point: a fresh store in a temporary directory, N threads each calling
``m.set_fsync(key, value)`` (or ``m.set``) in a loop on keys of its own for a
fixed time (``--seconds``, 1.5 s by default), value a small
``persist.schemas.examples.User``; total completed calls / elapsed time is the
point's ops/s. Every point is repeated (``--repeat``, 3 by default) and the
median is reported, with the ratio to the 1-thread median of the same method
and the median of the ratios taken within each repeat (the disk's fsync
latency drifts by 10x on a shared machine; points of one repeat are seconds
apart). Each repeat also times a bare ``os.write`` + ``os.fsync`` loop on one
thread: the disk's floor for one writer.

pyperf is the house tool for single-call timings (gobench.py,
bench_codecs.py); a thread-scaling measurement does not fit its model (one
timed function, loops calibrated by it), so this is a plain script with
repeats and medians. The machine is shared and noisy: read the ratios, not
the third digit.

``--strace`` counts system calls from outside the library, without touching
its code: for each method it re-runs this script on one point per thread count
(``--strace-threads``, 1,2,8,16 by default) under ``strace -f -c --seccomp-bpf -e
trace=write,pwrite64,writev,fsync,fdatasync`` and divides the counts by the
records the run wrote. ptrace slows every traced system call, which tends to
make batches larger, so take fsyncs per record under strace as an indication
of whether records share an fsync, not as the exact figure of an untraced
run. The counts include the few writes of the interpreter itself (a line on
stdout) and of open/close (header, final fsync).

Run as a script (not ``-m`` from the repository root) so the installed,
compiled persist is measured, not the source folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from machine import finish, machine
from persist.schemas.examples import User

import persist

THREADS = (1, 2, 4, 8, 16)
METHODS = ("set_fsync", "set")
KEYS_PER_THREAD = 20_000
STRACE_CALLS = "write,pwrite64,writev,fsync,fdatasync"


def raw_fsync_point(seconds: float, folder: str) -> dict:
    """The disk's floor: one thread, ``os.write`` of a record line + ``os.fsync``."""
    path = os.path.join(folder, "raw-fsync.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    line = b'S users:t0:0\n{"Name":"name","Email":"user@example.com","Age":42}\n'
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        os.write(fd, line)
        os.fsync(fd)
        n += 1
    elapsed = time.perf_counter() - t0
    os.close(fd)
    os.unlink(path)
    return {"ops": n, "seconds": elapsed, "ops_per_s": n / elapsed}


def run_point(method: str, n_threads: int, seconds: float, folder: str) -> dict:
    """One measurement: a fresh store, ``n_threads`` writers for ``seconds``."""
    path = os.path.join(folder, f"commit-{method}-{n_threads}.db")
    store = persist.Store(path)
    m = store.map("users", User)
    value = User("name", "user@example.com", 42)
    keys = [[f"t{t}:{i}" for i in range(KEYS_PER_THREAD)] for t in range(n_threads)]
    counts = [0] * n_threads
    stop = False
    start = threading.Barrier(n_threads + 1)

    def writer(t: int) -> None:
        call = getattr(m, method)
        my_keys = keys[t]
        n = 0
        start.wait()
        while not stop:
            call(my_keys[n % KEYS_PER_THREAD], value)
            n += 1
        counts[t] = n

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    start.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop = True
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    records = store.stats().wal_records
    store.close()
    os.unlink(path)
    total = sum(counts)
    return {
        "ops": total,
        "seconds": elapsed,
        "ops_per_s": total / elapsed,
        "wal_records": records,
        "per_thread": counts,
    }


def strace_point(method: str, n_threads: int, seconds: float) -> dict | None:
    """Re-run this script on one point under strace; syscalls per record."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    with tempfile.TemporaryDirectory(prefix="persist-bench-") as folder:
        out = os.path.join(folder, "strace.txt")
        cmd = [
            strace, "-f", "-c", "--seccomp-bpf", "-o", out, "-e",
            f"trace={STRACE_CALLS}",
            sys.executable, os.path.abspath(__file__), "--child", method,
            str(n_threads), str(seconds), folder,
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return {"error": (proc.stderr or proc.stdout).strip()[-500:]}
        point = json.loads(proc.stdout.strip().splitlines()[-1])
        calls = {}
        with open(out) as f:
            for line in f:
                fields = line.split()
                # % time, seconds, usecs/call, calls, [errors], syscall
                if len(fields) >= 5 and fields[-1] in STRACE_CALLS.split(","):
                    calls[fields[-1]] = int(fields[3])
    records = point["ops"]
    writes = sum(calls.get(c, 0) for c in ("write", "pwrite64", "writev"))
    fsyncs = calls.get("fsync", 0) + calls.get("fdatasync", 0)
    return {
        "method": method,
        "threads": n_threads,
        "records": records,
        "ops_per_s_under_strace": point["ops_per_s"],
        "syscalls": calls,
        "writes_per_record": writes / records if records else None,
        "fsyncs_per_record": fsyncs / records if records else None,
        "records_per_fsync": records / fsyncs if fsyncs else None,
        "records_per_write": records / writes if writes else None,
    }


def table(results: dict) -> str:
    lines = ["| method | " + " | ".join(f"{n} thr" for n in results["threads"]) + " |"]
    lines.append("|---" * (len(results["threads"]) + 1) + "|")
    for method in results["methods"]:
        pts = results["points"][method]
        ops = [pts[str(n)]["median_ops_per_s"] for n in results["threads"]]
        base = ops[0] if results["threads"][0] == 1 else None
        lines.append(
            f"| {method} ops/s | " + " | ".join(f"{o:,.0f}" for o in ops) + " |"
        )
        if base:
            lines.append(
                f"| {method} ratio to 1 thr | "
                + " | ".join(f"{o / base:.2f}x" for o in ops)
                + " |"
            )
            lines.append(
                f"| {method} ratio, median within repeat | "
                + " | ".join(
                    f"{pts[str(n)]['median_ratio_within_repeat']:.2f}x"
                    for n in results["threads"]
                )
                + " |"
            )
    raw = results.get("raw_fsync")
    if raw:
        lines.append(
            f"| os.write+os.fsync loop, 1 thr (the disk's floor) | "
            f"{raw['median_ops_per_s']:,.0f} |" + " |" * (len(results["threads"]) - 1)
        )
        pts = results["points"]["set_fsync"]
        lines.append(
            "| set_fsync / floor, median within repeat | "
            + " | ".join(
                f"{pts[str(n)]['median_ratio_to_floor']:.2f}x"
                for n in results["threads"]
            )
            + " |"
        )
    out = "\n".join(lines)
    st = results.get("strace")
    if st:
        out += "\n\nSystem calls per record (under strace, see the docstring):\n\n"
        out += (
            "| method | threads | records | writes/record | fsyncs/record "
            "| records/write | records/fsync |\n"
        )
        out += "|---|---|---|---|---|---|---|\n"
        for s in st:
            if "error" in s:
                out += f"| ? | ? | strace failed: {s['error'][:80]} | | | | |\n"
                continue

            def f(x, fmt):
                return "-" if x is None else format(x, fmt)

            out += (
                f"| {s['method']} | {s['threads']} | {s['records']:,} "
                f"| {f(s['writes_per_record'], '.3f')} "
                f"| {f(s['fsyncs_per_record'], '.3f')} "
                f"| {f(s['records_per_write'], '.1f')} "
                f"| {f(s['records_per_fsync'], '.1f')} |\n"
            )
    elif "strace" in results:
        out += "\n\n(strace not available: system calls not counted)\n"
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        method, n, seconds, folder = sys.argv[2:6]
        point = run_point(method, int(n), float(seconds), folder)
        print(json.dumps(point))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", help="write the results as JSON to this file")
    ap.add_argument("--seconds", type=float, default=1.5, help="length of one point")
    ap.add_argument("--repeat", type=int, default=3, help="repeats per point (median)")
    ap.add_argument(
        "--threads", default=",".join(map(str, THREADS)), help="comma-separated"
    )
    ap.add_argument(
        "--methods", default=",".join(METHODS), help="set_fsync,set (comma-separated)"
    )
    ap.add_argument(
        "--strace", action="store_true", help="count write/fsync calls per record"
    )
    ap.add_argument(
        "--strace-threads", default="1,2,8,16", help="thread counts of the strace runs"
    )
    ap.add_argument("--quick", action="store_true", help="0.5 s points, 1 repeat")
    ap.add_argument("--dir", default=None, help="parent of the temporary directory")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.repeat = 0.5, 1
    threads = [int(x) for x in args.threads.split(",")]
    methods = [x for x in args.methods.split(",") if x]
    results: dict = {
        "benchmark": "commit",
        "machine": machine(),
        "seconds_per_point": args.seconds,
        "repeat": args.repeat,
        "threads": threads,
        "methods": methods,
        "points": {m: {} for m in methods},
    }
    with tempfile.TemporaryDirectory(prefix="persist-bench-", dir=args.dir) as folder:
        # Interleave repeats so slow phases of a noisy machine spread over every point.
        runs: dict = {(m, n): [] for m in methods for n in threads}
        raw: list[dict] = []
        for r in range(args.repeat):
            if "set_fsync" in methods:
                p = raw_fsync_point(args.seconds, folder)
                raw.append(p)
                print(
                    f"  [{r + 1}/{args.repeat}] os.write+os.fsync  1 thr: "
                    f"{p['ops_per_s']:>10,.0f} ops/s",
                    file=sys.stderr,
                )
            for m in methods:
                for n in threads:
                    p = run_point(m, n, args.seconds, folder)
                    runs[(m, n)].append(p)
                    print(
                        f"  [{r + 1}/{args.repeat}] {m:9} {n:2} thr: "
                        f"{p['ops_per_s']:>10,.0f} ops/s",
                        file=sys.stderr,
                    )
    for (m, n), ps in runs.items():
        ops = [p["ops_per_s"] for p in ps]
        results["points"][m][str(n)] = {
            "median_ops_per_s": statistics.median(ops),
            "runs_ops_per_s": ops,
            "runs": ps,
        }
    for m in methods:
        base = results["points"][m].get("1", {}).get("median_ops_per_s")
        for n in threads:
            pt = results["points"][m][str(n)]
            pt["ratio_to_1"] = pt["median_ops_per_s"] / base if base else None
            if 1 in threads:
                # The disk's speed drifts on a shared machine: the ratio within
                # each repeat (points taken seconds apart), then the median.
                ones = results["points"][m]["1"]["runs_ops_per_s"]
                pt["median_ratio_within_repeat"] = statistics.median(
                    a / b for a, b in zip(pt["runs_ops_per_s"], ones, strict=True)
                )
    if raw:
        ops = [p["ops_per_s"] for p in raw]
        results["raw_fsync"] = {"median_ops_per_s": statistics.median(ops), "runs": raw}
        for n in threads:
            pt = results["points"]["set_fsync"][str(n)]
            pt["median_ratio_to_floor"] = statistics.median(
                a / b for a, b in zip(pt["runs_ops_per_s"], ops, strict=True)
            )
    if args.strace:
        results["strace"] = []
        if shutil.which("strace"):
            for m in methods:
                for n in [int(x) for x in args.strace_threads.split(",")]:
                    s = strace_point(m, n, args.seconds)
                    results["strace"].append(s)
    finish(results, table(results), args.output)


if __name__ == "__main__":
    main()
