#!/usr/bin/env bash
# Prepares, on this machine, what benchmarks/gpu_scale.sh needs on a GPU machine that has torch,
# transformers and accelerate but not lm-eval: Python 3.12 wheels of lm-eval and the packages it
# and `datasets` need that the GPU machine lacks, two pure-Python modules published only as
# sources, and SmolLM2's tokenizer (the vocabulary of the random-weights models). All of it goes
# to .bench/ (ignored by git), which the device call carries.
set -euo pipefail
cd "$(dirname "$0")/../.."  # the repository root
grep -qx '/.bench/' .git/info/exclude 2>/dev/null || echo '/.bench/' >> .git/info/exclude
rm -rf .bench && mkdir -p .bench/whl .bench/py
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .bench/whl \
  lm-eval==0.4.13 datasets==5.2.0 dill==0.4.1 evaluate==0.4.6 multiprocess==0.70.19 \
  more-itertools==11.2.1 pytablewriter==1.2.1 DataProperty==1.1.1 mbstrdecoder==1.1.5 \
  pathvalidate==3.3.1 tabledata==1.3.5 tcolorpy==0.1.7 typepy==1.3.5 chardet
site=$(python -c 'import sqlitedict, os; print(os.path.dirname(sqlitedict.__file__))')
cp "$site/sqlitedict.py" .bench/py/
cp -r "$site/word2number" .bench/py/
# lm-eval's wheel holds thousands of task YAMLs; the benchmark needs only the plugin's
python - <<'PY'
import pathlib, zipfile
src = next(pathlib.Path(".bench/whl").glob("lm_eval-*.whl"))
dst = src.with_suffix(".slim")
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
    for item in zin.infolist():
        parts = item.filename.split("/")
        if parts[:2] == ["lm_eval", "tasks"] and len(parts) > 3:
            continue  # a task directory
        zout.writestr(item, zin.read(item.filename))
dst.replace(src)
PY
python - <<'PY'
from lm_eval_emergence.default_model import default_model_dir
from transformers import AutoTokenizer
AutoTokenizer.from_pretrained(default_model_dir()).save_pretrained(".bench/tokenizer")
PY
du -sh .bench
