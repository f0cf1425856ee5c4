"""pyperf benchmarks whose results make the README tables (python -m perf.bench_<area>)."""
