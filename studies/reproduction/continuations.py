"""Continuations of the corpus's sentence starts written by one model, for claim 4 of
docs/reproduction.md (can a small model's IE score text written by larger ones?).

Each prompt is the first `--prompt-words` words of a sentence of the shipped corpus (sentences
with distinct prompts, seeded choice), the same prompts for every writer. The model continues it
greedily and by sampling (temperature 1, top-k 50; batch b is seeded with seed + b), up to
`--new-tokens` tokens, cut at the first line break. Writes `<out>/<label>_greedy.jsonl` and
`<out>/<label>_sampled.jsonl` ({"text": prompt + continuation, "prompt": ...} per line), and with
`--human` also `<out>/human.jsonl`, the sentences' own text: the human-written reference.

    python -m studies.reproduction.continuations --model DIR --label qwen15 \
        --out studies/reproduction/results/text
    python -m studies.reproduction.continuations --scorable DIR FILE...   # before scoring them

`--scorable` keeps, in place, the texts of at least `--window` tokens of the scoring model's
tokenizer (emergence_text refuses a shorter text: a continuation cut at an early line break is
one) and prints how many each file keeps.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lm_eval_emergence.data.windows import corpus_sentences  # noqa: E402


def prompts(n: int, words: int, seed: int) -> list[tuple[str, str]]:
    """(prompt, sentence) for n corpus sentences with distinct first `words` words."""
    sentences = corpus_sentences()
    order = np.random.default_rng(seed).permutation(len(sentences))
    out, seen = [], set()
    for i in order.tolist():
        parts = sentences[i].split()
        if len(parts) < words + 6:
            continue
        prompt = " ".join(parts[:words])
        if prompt in seen:
            continue
        seen.add(prompt)
        out.append((prompt, sentences[i]))
        if len(out) == n:
            return out
    raise ValueError(f"only {len(out)} sentences have distinct {words}-word starts; lower --n")


def continue_all(
    model, tokenizer, texts: list[str], new_tokens: int, sample: bool, seed: int, batch: int
) -> list[str]:
    """Each prompt followed by the model's continuation (cut at the first line break)."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    out = []
    for b, start in enumerate(range(0, len(texts), batch)):
        chunk = texts[start : start + batch]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(seed + b)
        with torch.inference_mode():
            ids = model.generate(
                **enc,
                max_new_tokens=new_tokens,
                do_sample=sample,
                temperature=1.0 if sample else None,
                top_k=50 if sample else None,
                top_p=None,
                pad_token_id=tokenizer.pad_token_id,
            )
        for prompt, row in zip(chunk, ids[:, enc["input_ids"].shape[1] :], strict=True):
            text = tokenizer.decode(row, skip_special_tokens=True).split("\n")[0]
            out.append(prompt + text)
    return out


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"wrote {path} ({len(rows)} texts)")


def keep_scorable(files: list[Path], scorer: str, window: int) -> None:
    """Drop, in place, the texts shorter than `window` tokens of the scorer's tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(scorer)
    for path in files:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        ids = tokenizer([r["text"] for r in rows], add_special_tokens=False)["input_ids"]
        lengths = [len(row) for row in ids]
        kept = [r for r, n in zip(rows, lengths, strict=True) if n >= window]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
        print(f"{path}: kept {len(kept)} of {len(rows)} texts (at least {window} tokens)")


def main(argv: list[str] | None = None) -> int:
    """Write the continuations; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scorable", metavar="SCORER", help="only filter the FILEs (see above)")
    parser.add_argument("files", nargs="*", type=Path, help="JSONL files for --scorable")
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--model", help="Hugging Face model directory")
    parser.add_argument("--label", help="file name prefix of this writer")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--n", type=int, default=512, help="prompts")
    parser.add_argument("--prompt-words", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--human", action="store_true", help="also write human.jsonl")
    args = parser.parse_args(argv)
    if args.scorable:
        keep_scorable(args.files, args.scorable, args.window)
        return 0
    if not (args.model and args.label and args.out):
        parser.error("--model, --label and --out are needed (or --scorable SCORER FILE...)")
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = prompts(args.n, args.prompt_words, args.seed)
    if args.human:
        _write(args.out / "human.jsonl", [{"text": s, "prompt": p} for p, s in pairs])
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, args.dtype))
    model.eval()
    for mode in ("greedy", "sampled"):
        t0 = time.perf_counter()
        texts = continue_all(
            model, tokenizer, [p for p, _ in pairs], args.new_tokens, mode == "sampled",
            args.seed, args.batch,
        )  # fmt: skip
        rows = [
            {"text": t, "prompt": p, "writer": args.label, "mode": mode, "seed": args.seed}
            for t, (p, _) in zip(texts, pairs, strict=True)
        ]
        _write(args.out / f"{args.label}_{mode}.jsonl", rows)
        print(f"{args.label} {mode}: {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
