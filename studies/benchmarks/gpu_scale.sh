#!/usr/bin/env bash
# The GPU measurements of issue 11, as one prepared run on a machine with one GPU and torch,
# transformers and accelerate installed (the device tool's H200). First, here:
#     bash studies/benchmarks/gpu_prepare.sh
# then on the GPU machine, from the repository root, with .bench/ carried:
#     bash studies/benchmarks/gpu_scale.sh            # writes $OUT (default studies/benchmarks/results)
# It times emergence_icl_country through lm-eval on a Llama-2-7B-shaped model with random
# weights in bf16 at N = 4,096 and N = 300,000, and the emergence/loglikelihood pass ratio at
# N = 4,096 (studies/benchmarks/scale.py). Expected: about 6-8 minutes of device time.
set -euo pipefail
cd "$(dirname "$0")/../.."  # the repository root
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
  .bench/whl/*.whl
export PYTHONPATH="/tmp/site:$PWD/.bench/py:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
  HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
out="${OUT:-studies/benchmarks/results}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c 'import torch, transformers, lm_eval; print(torch.__version__, transformers.__version__, lm_eval.__version__)' | tee -a "$out/gpu.txt"
python3 -m studies.benchmarks.scale --shape 7b --device cuda --dtype bfloat16 --docs 4096 300000 \
  --ratio-docs 4096 --max-batch-size 1024 --tokenizer .bench/tokenizer \
  --json "$out/scale_7b_h200.json" 2>&1 | grep -v '%|' | tee "$out/scale_7b_h200.log"
