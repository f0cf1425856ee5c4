"""attrs schema classes compiled at persist's own build (examples, benchmarks)."""
