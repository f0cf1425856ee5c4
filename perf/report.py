"""Render pyperf result files as the README's Markdown tables.

    python perf/report.py RESULTS.json [--baseline dict]
    python perf/report.py perf/results/codecs.json --pivot [--baseline msgspec]
    python perf/report.py perf/results/scenarios.json --scenarios
    python perf/report.py perf/results/load.json --load

Benchmarks are named ``<area>.<case>.<impl>`` (``map.mixed.dict``) or
``<area>.<op>.<Class>.<impl>`` (``codecs.encode.User.compiled``); ``--pivot``
puts one implementation per column and one ``Class op`` per row.
"""

from __future__ import annotations

import argparse
import statistics

import pyperf


def _medians(path: str) -> dict[str, float]:
    suite = pyperf.BenchmarkSuite.load(path)
    return {
        b.get_name(): statistics.median(b.get_values()) for b in suite.get_benchmarks()
    }


def table(path: str, baseline: str) -> str:
    """One row per benchmark: median time per op and the ratio to ``baseline``."""
    medians = {name.split(".", 2)[-1]: t for name, t in _medians(path).items()}
    base = medians[baseline]
    rows = [f"| store | time per op | vs {baseline} |", "|---|---:|---:|"]
    for label, seconds in sorted(medians.items(), key=lambda kv: kv[1]):
        rows.append(f"| {label} | {_format(seconds)} | {seconds / base:.2f}x |")
    return "\n".join(rows)


def pivot(path: str, baseline: str) -> str:
    """One row per ``Class op``, one column per implementation, ns per op."""
    cells: dict[tuple[str, str], dict[str, float]] = {}
    impls: list[str] = []
    for name, seconds in _medians(path).items():
        _area, op, cls, impl = name.split(".", 3)
        cells.setdefault((cls, op), {})[impl] = seconds
        if impl not in impls:
            impls.append(impl)
    head = " | ".join(impls)
    rows = [
        f"| class | op | {head} | compiled / {baseline} |",
        "|---|---|" + "---:|" * (len(impls) + 1),
    ]
    for (cls, op), by_impl in cells.items():
        values = " | ".join(_format(by_impl[i]) if i in by_impl else "" for i in impls)
        ratio = by_impl["compiled"] / by_impl[baseline]
        rows.append(f"| {cls} | {op} | {values} | {ratio:.2f} |")
    return "\n".join(rows)


def _format(seconds: float) -> str:
    ns = seconds * 1e9
    return f"{ns:,.0f} ns" if ns < 10_000 else f"{ns / 1000:,.1f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results")
    parser.add_argument("--baseline")
    parser.add_argument("--pivot", action="store_true")
    parser.add_argument("--scenarios", action="store_true", help="perf/scenarios.py")
    parser.add_argument("--load", action="store_true", help="perf/load.py")
    args = parser.parse_args()
    if args.scenarios:
        print(scenario_tables(args.results, args.baseline or "dict"))
    elif args.load:
        print(load_table(args.results, args.baseline or "orjson (read + decode lines)"))
    elif args.pivot:
        print(pivot(args.results, args.baseline or "msgspec"))
    else:
        print(table(args.results, args.baseline or "dict"))


# --- go-persist's tables (perf/scenarios.py and perf/load.py results) ----------


def _benchmarks(path: str) -> list[tuple[dict, list[float]]]:
    suite = pyperf.BenchmarkSuite.load(path)
    return [(b.get_metadata(), list(b.get_values())) for b in suite.get_benchmarks()]


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}ms" if seconds < 10 else f"{seconds:,.1f}s"


def _ratio(r: float) -> str:
    """``2.53x``; two significant digits below 0.1 (``0.0009x``, not ``0.00x``)."""
    return f"{r:,.2f}x" if r >= 0.1 else f"{r:.2g}x"


def _size(meta: dict) -> str:
    size = meta.get("file_size")
    return "N/A" if not size else f"{size / 2**20:.2f}MB"


def scenario_tables(path: str, baseline: str = "dict") -> str:
    """A table per scenario, value kind and thread count, in the Go README's columns."""
    groups: dict[tuple, list[tuple[dict, float]]] = {}
    for meta, values in _benchmarks(path):
        key = (meta["scenario"], meta["kind"], meta["threads"])
        groups.setdefault(key, []).append((meta, statistics.median(values)))
    out = []
    for (scenario, kind, threads), rows in groups.items():
        first = rows[0][0]
        ops = first.get("planned_ops", first["ops"])
        thread_word = "thread" if threads == 1 else "threads sharing the op list"
        out.append(
            f"#### {scenario}: {first['keys']:,} keys, {ops:,} ops "
            f"({first['write_percent']}% writes), {kind} values, "
            f"{threads} {thread_word}"
        )
        out.append("")
        base = next((t for m, t in rows if m["label"] == baseline), None)
        ratio_head = f" vs {baseline} |" if base else ""
        out.append(
            "| Solution | Time | Throughput (ops/sec) | Latency/op | File Size |"
            + ratio_head
        )
        out.append("|---|---:|---:|---:|---:|" + ("---:|" if base else ""))
        measured = sorted((r for r in rows if not r[0]["skipped"]), key=lambda r: r[1])
        for meta, per_op in measured:
            ratio = f" {_ratio(per_op / base)} |" if base else ""
            label = meta["label"]
            if meta["ops"] < meta.get("planned_ops", meta["ops"]):
                label += f" (first {meta['ops']:,} ops)"
            out.append(
                f"| {label} | {_duration(per_op * meta['ops'])} | {1 / per_op:,.0f} "
                f"| {per_op * 1e9:,.0f}ns | {_size(meta)} |{ratio}"
            )
        for meta, per_op in (r for r in rows if r[0]["skipped"]):
            estimate = per_op * ops
            note = (
                f"not run: estimated {_duration(estimate)} > budget "
                f"{_duration(meta['budget_s'])} (pilot {per_op * 1e9:,.0f}ns/op)"
            )
            out.append(f"| {meta['label']} | {note} | | | |" + (" |" if base else ""))
        out.append("")
    return "\n".join(out)


LOAD_PHASES = ("write", "one", "gets", "all", "cycles")


def load_table(path: str, baseline: str = "orjson (read + decode lines)") -> str:
    """The load benchmark: one row per candidate, its phases as columns."""
    rows: dict[str, dict[str, tuple[dict, float]]] = {}
    for meta, values in _benchmarks(path):
        rows.setdefault(meta["label"], {})[meta["phase"]] = (
            meta,
            statistics.median(values),
        )
    first = next(iter(rows.values()))["write"][0]
    records, cycles = first["records_per_map"], first["cycles"]
    gets = records * 40_000 // 40_960
    base = rows.get(baseline, {}).get("one", (None, None))[1]
    head = (
        f"#### load: 5 maps x {records:,} records\n\n"
        f"| Solution | Write | Open + 1 get | Open + {gets:,} gets | Open + read all "
        f"| RSS added: 1 get / {gets:,} gets / all | File size "
        f"| {cycles:,} open-get-close (small file) | open + 1 get vs orjson |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    out = [head]
    order = sorted(rows, key=lambda label: rows[label]["one"][1])
    for label in order:
        phases = rows[label]
        t = {p: phases[p][1] for p in LOAD_PHASES}
        rss = " / ".join(
            f"{phases[p][0]['rss_added'] / 2**20:,.1f}MB"
            for p in ("one", "gets", "all")
        )
        ratio = _ratio(t["one"] / base) if base else ""
        out.append(
            f"| {label} | {_duration(t['write'])} | {_duration(t['one'])} "
            f"| {_duration(t['gets'])} | {_duration(t['all'])} | {rss} "
            f"| {_size(phases['write'][0])} | {_duration(t['cycles'])} | {ratio} |"
        )
    if "go-persist (Go)" not in rows:
        out.append(
            "| go-persist (Go), issue 8's figures, **not measured in this run** "
            "(5 x 40,960 records) | 1,580ms | ~1,000ms | | | | 241MB | | |"
        )
    return "\n".join(out) + "\n"


def machine_line(path: str) -> str:
    """The machine the results in ``path`` were measured on."""
    return _benchmarks(path)[0][0].get("machine", "unknown machine")


if __name__ == "__main__":
    main()
