PY ?= python

.PHONY: test lint bench bench-quick reproduction

test:
	$(PY) -m pytest

lint:
	ruff check . && ruff format --check .

# speed and accuracy tables (docs/performance.md); not part of the test run
bench:
	$(PY) benchmarks/estimators.py --seeds 2 --paper-json benchmarks/results/mine_paper_300_h200.json
	$(PY) benchmarks/emergence_profile.py
	$(PY) benchmarks/harness_overhead.py --json benchmarks/results/harness_overhead_smollm2.json

bench-quick:
	$(PY) benchmarks/estimators.py --quick

# the reproduction study of docs/reproduction.md (about 40 minutes on 2 cores)
reproduction:
	bash scripts/reproduction.sh
