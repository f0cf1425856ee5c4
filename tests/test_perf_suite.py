"""The go-persist benchmark suite (perf/) runs; every candidate reads back real values.

Tiny sizes, no timing assertions: this proves the scripts work so the lead can
run them at full size. Peers that are not installed (the bench extra brings
them) drop out of the candidate lists; pyperf-dependent parts skip without it.
"""

import json
import os
import sys
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parent.parent / "perf"
sys.path.insert(0, str(PERF))

import data  # noqa: E402
import load  # noqa: E402
import scenarios  # noqa: E402
import twins  # noqa: E402
from persist.schemas import bench  # noqa: E402
from persist.schemas.bench import LoadMeta, LoadRecord  # noqa: E402

import persist  # noqa: E402

TINY = scenarios.Scenario("tiny", 1_000, 1_000, 20, (1, 4), fsync=True)
PERSIST_ROWS = {
    "struct": [
        f"persist `{m}` ({c})"
        for m in ("set_async", "set", "update", "set_fsync")
        for c in ("compiled", "runtime")
    ],
    "string": [f"persist `{m}`" for m in ("set_async", "set", "update", "set_fsync")],
}


def test_go_ops_are_seeded_and_have_gos_write_share():
    ops = data.go_ops(100_000, 20_000, 20)
    assert ops == data.go_ops(100_000, 20_000, 20)
    writes = [i for _key, i in ops if i >= 0]
    assert 3_600 < len(writes) < 4_400
    assert all(0 <= int(key) < 100_000 for key, _i in ops)
    assert ops[writes[0]][1] == writes[0]  # a write carries its op number


def test_load_records_have_gos_shape():
    key, rec = data.load_records(LoadRecord, LoadMeta, "map3", 2)[1]
    assert key == "key-1"
    assert (rec.id, rec.name) == ("map3-1", "Record 1")
    assert len(rec.description) == 42 and len(rec.data) == 1024
    assert rec.meta.tags == ["tag1", "tag2", "tag3"]
    encoded = persist.codec_for(LoadRecord).encode(rec)
    assert list(json.loads(encoded)) == ["ID", "Name", "Description", "Data", "Meta"]
    assert 1_150 < len(encoded) < 1_300  # Go's 1,215 +- 4 bytes on average


def test_twins_are_served_by_the_runtime_codec_and_encode_the_same_bytes():
    assert persist.codec_for(bench.TestStruct).source == "compiled"
    assert persist.codec_for(twins.TestStruct).source == "runtime"
    assert persist.codec_for(twins.LoadRecord).source == "runtime"
    assert (
        persist.codec_for(bench.TestStruct).encode(bench.TestStruct(7, "x"))
        == persist.codec_for(twins.TestStruct).encode(twins.TestStruct(7, "x"))
        == b'{"field1":7,"field2":"x"}'
    )


@pytest.mark.parametrize("kind", scenarios.KINDS)
def test_every_scenario_candidate_reads_back_the_values_written(kind, tmp_path):
    ops = data.go_ops(TINY.keys, TINY.ops, TINY.write_percent)
    rows = scenarios.candidates(kind, with_fsync=True)
    labels = [c.label for c in rows]
    assert labels[: len(PERSIST_ROWS[kind])] == PERSIST_ROWS[kind]
    assert "dict" in labels and "dict + Lock" in labels
    for n, cand in enumerate(rows):
        cls = cand.value_class
        records = {str(i): scenarios._value(cls, i, False) for i in range(TINY.keys)}
        folder = tmp_path / str(n)
        folder.mkdir()
        get, write, close = cand.open_store(str(folder), records)
        try:
            scenarios.run_slice(get, write, scenarios.payloads(cand, ops))
            expected = {key: scenarios._value(cls, i, True) for key, i in ops if i >= 0}
            for i in range(TINY.keys):
                want = expected.get(str(i), records[str(i)])
                got = get(str(i))
                assert type(got) is type(want), cand.label
                assert got == want, cand.label
        finally:
            close()


def test_scenarios_run_with_threads_and_render_the_go_tables(tmp_path):
    pyperf = pytest.importorskip("pyperf")
    import report

    benchmarks = scenarios.run_all((TINY,), 1, budget=600.0)
    path = str(tmp_path / "scenarios.json")
    pyperf.BenchmarkSuite(benchmarks).dump(path)
    per_table = {
        kind: len(scenarios.candidates(kind, with_fsync=True))
        for kind in scenarios.KINDS
    }
    assert len(benchmarks) == sum(per_table.values()) * len(TINY.threads)
    metas = [b.get_metadata() for b in benchmarks]
    assert not any(m["skipped"] for m in metas)
    by_label = {(m["kind"], m["threads"], m["label"]): m for m in metas}
    assert "file_size" not in by_label[("struct", 4, "dict")]
    assert by_label[("struct", 4, "persist `set` (compiled)")]["file_size"] > 30_000
    text = report.scenario_tables(path)
    assert text.count("#### tiny: 1,000 keys, 1,000 ops (20% writes)") == 4
    assert "| Solution | Time | Throughput (ops/sec) | Latency/op | File Size |" in text
    assert text.count("| persist `set_fsync` (runtime) |") == 2


def test_a_candidate_over_the_budget_is_not_run_and_says_so(tmp_path):
    cand = scenarios.candidates("string", with_fsync=True)[3]
    assert cand.label == "persist `set_fsync`"
    ops = data.go_ops(1_000, 1_000, 20)
    res = scenarios.measure(cand, TINY, 1, ops, 1, 1e-9, str(tmp_path))
    assert res.skipped and res.seconds == [] and res.pilot_per_op > 0
    assert (res.ops, res.planned) == (0, 1_000)
    assert os.listdir(tmp_path) == []  # its store is removed all the same


def test_quick_mode_cuts_a_slow_candidate_to_the_budget(tmp_path):
    cand = scenarios.candidates("string", with_fsync=True)[3]
    ops = data.go_ops(1_000, 1_000, 20)
    res = scenarios.measure(cand, TINY, 4, ops, 1, 1e-9, str(tmp_path), cut=True)
    assert not res.skipped and len(res.seconds) == 1
    assert (res.ops, res.planned) == (100, 1_000)  # the pilot's length at least
    assert res.file_size > 0


def test_load_phases_run_in_fresh_processes_and_read_every_record(tmp_path):
    pytest.importorskip("pyperf")
    import report

    labels = [
        label
        for label in load.PYTHON_CANDIDATES
        if _installed(label)  # persist always; peers with the bench extra
    ]
    plan = load.Plan(records=50, cycles=2, runs=1)
    benchmarks = load.measure_all(plan, labels, go=None)
    assert len(benchmarks) == len(labels) * len(load.PHASES)
    metas = {(b.get_metadata()["label"], b.get_metadata()["phase"]) for b in benchmarks}
    assert ("persist (runtime)", "cycles") in metas
    sizes = {
        b.get_metadata()["label"]: b.get_metadata()["file_size"] for b in benchmarks
    }
    # 250 records of about 1.2 KB in persist's text format
    assert 250 * 1_150 < sizes["persist (compiled)"] < 250 * 1_350
    path = str(tmp_path / "load.json")
    import pyperf

    pyperf.BenchmarkSuite(benchmarks).dump(path)
    table = report.load_table(path)
    assert "#### load: 5 maps x 50 records" in table
    assert "not measured in this run" in table  # no Go row: the figures


def _installed(label: str) -> bool:
    try:
        load.PYTHON_CANDIDATES[label]()
    except ImportError:
        return False
    return True


def test_load_child_refuses_a_wrong_record(tmp_path):
    """The child's reads check the record's ID: a store returning junk fails."""
    folder = tmp_path / "store"
    folder.mkdir()
    maps = {
        name: [
            ("key-10", twins.LoadRecord("wrong", "", "", "", twins.LoadMeta(0, 0, [])))
        ]
        for name in data.GO_MAPS
    }
    cand = load.PersistCandidate(compiled=False)
    cand.write(str(folder), maps)
    with pytest.raises(AssertionError):
        load.child("cycles", "persist (runtime)", str(folder), "", 50, 1)
    assert os.path.exists(folder / "persist.db")
