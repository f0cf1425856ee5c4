"""Render pyperf result files as the README's Markdown tables.

python perf/report.py perf/results/map.json [--baseline dict]
"""

from __future__ import annotations

import argparse
import statistics

import pyperf


def _label(name: str) -> str:
    return name.split(".", 2)[-1]


def table(path: str, baseline: str) -> str:
    """One row per benchmark: median time per op and the ratio to ``baseline``."""
    suite = pyperf.BenchmarkSuite.load(path)
    medians = {
        _label(b.get_name()): statistics.median(b.get_values())
        for b in suite.get_benchmarks()
    }
    base = medians[baseline]
    rows = ["| store | time per op | vs " + baseline + " |", "|---|---:|---:|"]
    for label, seconds in sorted(medians.items(), key=lambda kv: kv[1]):
        rows.append(f"| {label} | {_format(seconds)} | {seconds / base:.2f}x |")
    return "\n".join(rows)


def _format(seconds: float) -> str:
    ns = seconds * 1e9
    return f"{ns:,.0f} ns" if ns < 10_000 else f"{ns / 1000:,.1f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results")
    parser.add_argument("--baseline", default="dict")
    args = parser.parse_args()
    print(table(args.results, args.baseline))


if __name__ == "__main__":
    main()
