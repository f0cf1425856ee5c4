# The commands CI runs, and the ones developers use every day.
PY ?= python3
VENV ?= .venv

.PHONY: venv build test demo lint bench bench-quick bench-redis clean

venv:
	$(PY) -m venv $(VENV)

build: venv            ## editable install, compiled in place (rerun after editing a .pyx)
	$(VENV)/bin/pip install -q -e '.[test]'
	$(VENV)/bin/python setup.py build_ext --inplace

test: venv             ## install as a user would, then run the suite on the install
	$(VENV)/bin/pip install -q '.[test]' && $(VENV)/bin/pytest

lint: venv             ## ruff, cython-lint, mypy --strict, pyright strict (package, examples, README)
	bash .ci/lint $(VENV)

demo: venv
	$(VENV)/bin/pip install -q . && $(VENV)/bin/persist demo

bench: venv            ## the README's benchmark tables, full sizes (hours)
	$(VENV)/bin/pip install -q '.[bench]'
	mkdir -p perf/results
	$(VENV)/bin/python perf/gobench.py
	$(VENV)/bin/python perf/bench_codecs.py -o perf/results/codecs.json
	$(VENV)/bin/python perf/bench_commit.py --strace -o perf/results/commit.json
	$(VENV)/bin/python perf/bench_shrink_stall.py -o perf/results/shrink_stall.json
	$(VENV)/bin/python perf/report.py perf/results/codecs.json --pivot

bench-quick: venv      ## go-persist's scenarios and load benchmark at small sizes (< 3 min)
	$(VENV)/bin/pip install -q '.[bench]'
	$(VENV)/bin/python perf/gobench.py --quick

bench-redis: venv      ## persist on Redis vs redis-py and the file store (< 1 h; --quick < 3 min)
	$(VENV)/bin/pip install -q '.[bench,redis]'
	$(VENV)/bin/python perf/redis_bench.py -o perf/results/redis.json

clean:
	rm -rf build dist *.egg-info persist/*.c persist/*.so perf/results
