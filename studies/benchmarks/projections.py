"""What each number of projections per block costs and buys (docs/performance.md, §6).

SmolLM2-135M on the country lists (2,000, the task's default), captured once per setting through
the plugin's capture and estimation: for R = 1, 2, 4 and 8 independent projections a block,
the forward seconds, the estimation seconds (IE with its N/2 check, and the spectral
baselines), the second moments held at once, and IE's standard error with its documents and
projections parts. The default R is the largest whose estimation keeps the README command
within 1.15 times its former wall time; the table is the evidence.

    python -m studies.benchmarks.projections \
        --json studies/benchmarks/results/projections_smollm2.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch  # noqa: E402

from lm_eval_emergence.capture import capture_states, plan_capture  # noqa: E402
from lm_eval_emergence.data.icl import build_icl_lists  # noqa: E402
from lm_eval_emergence.default_model import load_default_model  # noqa: E402
from lm_eval_emergence.metrics.emergence import emergence_from_states  # noqa: E402
from lm_eval_emergence.metrics.spectral import erank, matrix_entropy  # noqa: E402
from lm_eval_emergence.settings import CaptureSettings, EstimationSettings  # noqa: E402


def measure(model, tok, ids: torch.Tensor, projections: int, seed: int) -> dict:
    plan = plan_capture(model, tok, CaptureSettings(projections=projections, seed=seed))
    t0 = time.perf_counter()
    captured = capture_states(model, ids, plan)
    t1 = time.perf_counter()
    estimation = EstimationSettings.of_protocol("floor-update", seed=seed)
    result = emergence_from_states(captured, estimation)
    t2 = time.perf_counter()
    rank = erank(captured, folds=estimation.folds, seed=seed)
    entropy = matrix_entropy(captured, folds=estimation.folds, seed=seed)
    t3 = time.perf_counter()
    return {
        "projections": projections,
        "seconds_forward": t1 - t0,
        "seconds_estimation_ie": t2 - t1,
        "seconds_estimation_spectral": t3 - t2,
        "moments_bytes": result.moments_bytes,
        "ie": result.ie_bits,
        "ie_stderr": result.ie_stderr_bits,
        "ie_stderr_documents": result.ie_stderr_documents_bits,
        "ie_stderr_projections": result.ie_stderr_projections_bits,
        "ie_stderr_dof": result.ie_stderr_dof,
        "erank_stderr": rank.stderr,
        "matrix_entropy_stderr": entropy.stderr,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--projections", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    model, tok = load_default_model()
    ids = torch.tensor(build_icl_lists(tok, "country", 4, args.n, 1234).sequences)
    rows = [measure(model, tok, ids, r, args.seed) for r in args.projections]
    print(f"{'R':>3} {'forward s':>9} {'IE est. s':>9} {'spectral s':>10} {'moments MB':>10} "
          f"{'IE':>8} {'±':>7} {'docs':>7} {'proj':>7} {'dof':>5}")  # fmt: skip
    for r in rows:
        proj = r["ie_stderr_projections"]
        print(
            f"{r['projections']:>3} {r['seconds_forward']:>9.1f} "
            f"{r['seconds_estimation_ie']:>9.1f} {r['seconds_estimation_spectral']:>10.1f} "
            f"{r['moments_bytes'] / 2**20:>10.0f} "
            f"{r['ie']:>8.3f} {r['ie_stderr']:>7.3f} {r['ie_stderr_documents']:>7.3f} "
            f"{'n/a' if proj is None else f'{proj:.3f}':>7} {r['ie_stderr_dof']:>5.0f}"
        )
    if args.json is not None:
        out = {"settings": vars(args) | {"json": str(args.json)}, "rows": rows}
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
