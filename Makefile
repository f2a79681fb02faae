PY ?= python

.PHONY: test lint bench bench-quick reproduction validity validity-qwen

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

# the validity study of docs/validity.md (2 cores: the family about 15 minutes, SmolLM2 about
# 25); the Qwen confirmation series (about 40 minutes more) is its own target
validity:
	$(PY) benchmarks/validity_probe.py --series family --json docs/validity/probe_family.json
	$(PY) benchmarks/validity_probe.py --json docs/validity/probe_smollm2.json
	$(PY) benchmarks/validity_probe.py --seed-spread 5 --json docs/validity/seeds_smollm2.json

validity-qwen:
	bash scripts/build_qwen_gguf.sh
	$(PY) benchmarks/validity_probe.py --series qwen --gguf runs/qwen/qwen.gguf \
		--json docs/validity/probe_qwen.json
