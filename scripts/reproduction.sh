#!/usr/bin/env bash
# The reproduction study of docs/reproduction.md, with the project's own commands (2 CPU cores:
# about 40 minutes). Runs go to runs/ (not committed); the report, figures and the numbers the
# document quotes go to docs/reproduction/.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=docs/reproduction
mkdir -p runs "$OUT"

# 1. the control: SmolLM2's architecture and tokenizer with random weights
[ -d runs/smollm2-random ] || python scripts/make_random_control.py runs/smollm2-random

# 2. the same lm-eval run on the trained model and on the control (8 of 30 blocks, 1,000
#    documents per task, to fit the CPU budget)
TASKS=emergence_icl,emergence_icl_shots,emergence_natural
COMMON=(--tasks "$TASKS" --batch_size 32 --metadata '{"n_docs": 1000}')
LAYERS='ie_layers=0;4;8;12;16;20;24;29,ie_protocol=infonce'  # the protocol the study measured
lm-eval-emergence "${COMMON[@]}" --model_args "$LAYERS" --output_path runs/smollm2
lm-eval-emergence "${COMMON[@]}" --model hf-emergence \
    --model_args "pretrained=runs/smollm2-random,dtype=float32,$LAYERS" --output_path runs/random

# 3. keep the results and sidecars (small JSON), and write the report of both runs from them
for run in smollm2 random; do
    mkdir -p "$OUT/runs/$run"
    cp "$(ls -t runs/$run/*/results_*.json | head -1)" "$(ls -t runs/$run/*/emergence_*.json | head -1)" \
        "$OUT/runs/$run/"
done
rm -rf "$OUT/report"
lm-eval-emergence report "$OUT/runs/smollm2" "$OUT/runs/random" --out "$OUT/report"

# 4. the estimator: IE against N and the shuffled-pair null
python benchmarks/ie_convergence.py --model default --model runs/smollm2-random \
    --json "$OUT/ie_convergence.json" --png "$OUT/ie_vs_n.png"

# 5. the paper's MINE configuration (300 steps; its 10,000 take hours on 2 cores) against InfoNCE
#    on block 16 at N = 1,024, both models
python benchmarks/ie_convergence.py --model default --model runs/smollm2-random --n 1024 \
    --paper-n 1024 --paper-layers 16 --paper-steps 300 --json "$OUT/mine_paper.json"
