"""Render pyperf result files as the README's Markdown tables.

    python perf/report.py perf/results/map.json [--baseline dict]
    python perf/report.py perf/results/codecs.json --pivot [--baseline msgspec]

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
    args = parser.parse_args()
    if args.pivot:
        print(pivot(args.results, args.baseline or "msgspec"))
    else:
        print(table(args.results, args.baseline or "dict"))


if __name__ == "__main__":
    main()
