"""perf/redis_bench.py runs against a real redis-server and every row reads
back what it wrote.

Tiny sizes, no timing assertions: this proves the script works so the lead can
run it at full size. Skipped without the bench extra (pyperf), as the other
benchmark scripts' tests are.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pyperf = pytest.importorskip("pyperf")

PERF = Path(__file__).resolve().parent.parent / "perf"
sys.path.insert(0, str(PERF))

import data  # noqa: E402
import redis  # noqa: E402
import redis_bench  # noqa: E402
import scenarios  # noqa: E402
from persist.schemas import bench  # noqa: E402

TINY = scenarios.Scenario("tiny", 300, 1_000, 20, (1, 4))


@pytest.mark.parametrize("row", redis_bench.REDIS_ROWS, ids=lambda r: r.label)
def test_every_redis_row_reads_back_the_values_written(
    row: redis_bench.RedisRow, redis_url: str, raw: redis.Redis, tmp_path: Path
) -> None:
    """Pre-fill, the op list, then every key holds the last value written, read
    by the row itself and as the row's bytes in the hash; close drops it."""
    cand = redis_bench.as_candidate(row, redis_url)
    ops = data.go_ops(TINY.keys, TINY.ops, TINY.write_percent)
    records = {str(i): bench.TestStruct(i, "example struct") for i in range(TINY.keys)}
    folder = tmp_path / "ns-1"
    folder.mkdir()
    get, write, close = cand.open_store(str(folder), records)
    try:
        scenarios.run_slice(get, write, scenarios.payloads(cand, ops))
        written = {
            key: bench.TestStruct(i, "updated struct") for key, i in ops if i >= 0
        }
        want = {key: written.get(key, value) for key, value in records.items()}
        assert {key: get(key) for key in want} == want
        if hasattr(get, "__self__"):  # a RedisStore map: its async writes sent
            get.__self__.store.sync()
        assert raw.hgetall("ns-1:bench") == {
            key.encode(): row.encode(value) for key, value in want.items()
        }
    finally:
        close()
    assert raw.exists("ns-1:bench") == 0


def test_a_tiny_run_measures_every_figure_and_renders_the_tables(
    redis_url: str,
) -> None:
    """Every row at each thread count and at 4 processes, every single call
    (the session server fsyncs every write, so set_fsync runs); two tables."""
    benchmarks = redis_bench.run_all(
        redis_url, redis_url, TINY, 1, 600.0, False, 50, 5, 2
    )
    metas = [b.get_metadata() for b in benchmarks]
    rows = [m for m in metas if "op" not in m]
    calls = [m for m in metas if "op" in m]
    labels = [r.label for r in redis_bench.REDIS_ROWS] + [
        c.label for c in redis_bench.FILE_ROWS
    ]
    assert [(m["threads"], m["processes"], m["label"]) for m in rows] == [
        (1, 1, label) for label in labels
    ] + [(4, 1, label) for label in labels] + [
        (1, 4, r.label) for r in redis_bench.REDIS_ROWS
    ]
    assert not any(m["skipped"] for m in rows)
    assert all(m["ops"] == TINY.ops for m in rows)
    assert [(m["op"], m["calls"]) for m in calls] == [("get", 50)] * 4 + [
        ("set", 50)
    ] * 4 + [("set_fsync", 5)] * 3
    assert all(len(b.get_values()) == 2 for b in benchmarks[len(rows) :])
    text = redis_bench.tables(benchmarks)
    assert "#### tiny: 300 keys, 1,000 ops (20% writes), ops/s" in text
    assert "| Solution | 1 thread | 4 threads | 4 processes |" in text
    assert "| file store `set` | " in text and text.count(" | — |") == 2
    assert text.count("\n| set_fsync | ") == 3
