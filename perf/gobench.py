"""go-persist's benchmark suite for persist: the README's performance tables.

    python perf/gobench.py --quick        # s1 at 100K ops, s2, a small load: < 3 min
    python perf/gobench.py                # full sizes, scenario 3 included (hours)
    python perf/gobench.py --rigorous     # full sizes, 3 runs per figure (median)
    python perf/gobench.py --quick --only load
    python perf/gobench.py --only scenarios --scenarios s1 --budget 60  # rows < 1 min

Writes pyperf JSON to ``perf/results/scenarios.json`` and ``load.json`` and the
Markdown tables (machine noted) to ``perf/results/gobench.md`` and stdout; a
progress line per benchmark goes to stderr. ``perf/scenarios.py`` and
``perf/load.py`` say what is measured and how; ``perf/report.py`` re-renders
saved results. Run as a script so the installed, compiled persist is measured.
"""

from __future__ import annotations

import argparse
import os
import sys

import load
import pyperf
import report
import scenarios

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="small sizes, < 3 minutes")
    speed.add_argument("--rigorous", action="store_true", help="3 runs per figure")
    parser.add_argument("--only", choices=("scenarios", "load"))
    parser.add_argument("--no-go", action="store_true", help="do not build the Go row")
    parser.add_argument("--scenarios", help="a subset, comma-separated: s1,s2,s3")
    parser.add_argument(
        "--budget", type=float, help="seconds per scenario row (10 min; quick: 1 s)"
    )
    parser.add_argument("-o", "--output-dir", default=RESULTS)
    args = parser.parse_args()
    runs = 3 if args.rigorous else 1
    os.makedirs(args.output_dir, exist_ok=True)
    scenario_json = os.path.join(args.output_dir, "scenarios.json")
    load_json = os.path.join(args.output_dir, "load.json")
    parts = []
    if args.only != "load":
        chosen, budget, cut = scenarios.plan(args.quick)
        budget = args.budget or budget
        if args.scenarios:
            chosen = tuple(s for s in chosen if s.name in args.scenarios.split(","))
        suite = pyperf.BenchmarkSuite(scenarios.run_all(chosen, runs, budget, cut))
        suite.dump(scenario_json, replace=True)
        parts.append(report.scenario_tables(scenario_json))
    if args.only != "scenarios":
        go = None if args.no_go else load.build_go()
        if go is None:
            print("[load] Go not built: its row is issue 8's figures", file=sys.stderr)
        plan = load.plan(args.quick, runs)
        benchmarks = load.measure_all(plan, list(load.PYTHON_CANDIDATES), go)
        pyperf.BenchmarkSuite(benchmarks).dump(load_json, replace=True)
        parts.append(report.load_table(load_json))
    first = scenario_json if args.only != "load" else load_json
    text = f"Machine: {report.machine_line(first)}\n\n" + "\n".join(parts)
    with open(os.path.join(args.output_dir, "gobench.md"), "w") as out:
        out.write(text)
    print(text)


if __name__ == "__main__":
    main()
