"""Cost of an emergence request against a plain loglikelihood request on the same documents.

Loads `hf-emergence` on SmolLM2-135M-Instruct (or --pretrained DIR), builds the country ICL
documents of `emergence_icl_country`, and times, on the same documents and batch size:

- `loglikelihood`: lm-eval's standard pass, scoring the list's last token given the rest;
- `emergence`: the plugin's pass (all blocks hooked, projection, micro table, greedy token).

    python benchmarks/harness_overhead.py                  # 2000 documents, batch 32
    python benchmarks/harness_overhead.py --docs 500 --json out.json

The issue's target: emergence at most 1.3 times the loglikelihood pass.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

import torch  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402

from lm_eval_emergence.data.icl import build_icl_lists  # noqa: E402
from lm_eval_emergence.default_model import default_model_dir  # noqa: E402
from lm_eval_emergence.harness.model import HFEmergenceLM, tokenizer_fingerprint  # noqa: E402
from lm_eval_emergence.settings import CaptureSettings  # noqa: E402


def _time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print a table; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrained", default=None, help="model directory (default: SmolLM2)")
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)

    pretrained = args.pretrained or str(default_model_dir())
    lm = HFEmergenceLM(
        pretrained=pretrained, device="cpu", dtype="float32", batch_size=args.batch_size
    )
    tok = lm.tokenizer
    built = build_icl_lists(tok, "country", 4, args.docs, seed=1234)
    fmt = built.format
    fingerprint = tokenizer_fingerprint(tok)
    texts = [fmt.text(s) for s in built.selections]
    cut = len(fmt.separator)
    ll_requests = [
        Instance("loglikelihood", {}, (text[:-cut], text[-cut:]), 0, ("bench", i, 1))
        for i, text in enumerate(texts)
    ]
    em_requests = [
        Instance(
            "emergence",  # type: ignore[arg-type]
            {},
            (
                text,
                json.dumps(
                    {
                        "token_ids": ids,
                        "positions": [len(ids) - 1],
                        "next_token": True,
                        "tokenizer": fingerprint,
                        "capture": CaptureSettings().to_dict(),
                    }
                ),
            ),
            0,
            ("bench", i, 1),
        )
        for i, (text, ids) in enumerate(zip(texts, built.sequences, strict=True))
    ]
    lm.loglikelihood(ll_requests[:64])  # warm-up
    lm.emergence(em_requests[:64])
    t_ll = _time(lambda: lm.loglikelihood(ll_requests), args.repeats)
    t_em = _time(lambda: lm.emergence(em_requests), args.repeats)
    feats = lm.emergence(em_requests[:1])
    row = {
        "model": pretrained,
        "docs": args.docs,
        "tokens_per_doc": len(built.sequences[0]),
        "batch_size": args.batch_size,
        "blocks": len(feats[0].info.layers),
        "projection_dim": feats[0].info.settings.projection_dim,
        "seconds_loglikelihood": t_ll,
        "seconds_emergence": t_em,
        "ratio": t_em / t_ll,
        "payload_bytes_per_doc": feats[0].payload_bytes,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    print(f"{'pass':<14}{'seconds':>10}{'docs/s':>10}")
    print(f"{'loglikelihood':<14}{t_ll:>10.2f}{args.docs / t_ll:>10.0f}")
    print(f"{'emergence':<14}{t_em:>10.2f}{args.docs / t_em:>10.0f}")
    print(f"ratio emergence / loglikelihood: {t_em / t_ll:.2f} (target <= 1.3)")
    print(json.dumps(row, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
