#!/usr/bin/env bash
# The README's example output (README.md, "What the main command prints" and the profile
# figure): the main command as the README gives it, the same with its random-weights control,
# and the report of the second. About 15 minutes on 2 cores; `make readme-example`.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=studies/readme/results
rm -rf "$OUT"
mkdir -p "$OUT"
lm-eval-emergence --tasks emergence_icl --output_path "$OUT/main" > "$OUT/main.txt"
lm-eval-emergence --tasks emergence_icl --model_args ie_control=random \
    --output_path "$OUT/control" > "$OUT/control.txt"
lm-eval-emergence report "$OUT/control" --out "$OUT/report"
python -m studies.render --only README.md
