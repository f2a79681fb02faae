"""Time the full IE profile of SmolLM2-135M-Instruct on country ICL lists.

All 30 blocks, macro and micro, on 2,048 lists of k=4 countries (T = 8 tokens), as in the issue:

    python -m studies.benchmarks.emergence_profile                       # default estimator
    python -m studies.benchmarks.emergence_profile --estimator gaussian  # closed-form baseline
    python -m studies.benchmarks.emergence_profile --projection-dim none -o steps=500

Prints seconds for model load, data, macro capture, micro capture, estimation and total, the peak
resident memory, the machine (CPU count, torch threads) and the result table and summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import torch  # noqa: E402

from lm_eval_emergence.data import make_icl_sequences  # noqa: E402
from lm_eval_emergence.default_model import load_default_model  # noqa: E402
from lm_eval_emergence.metrics.emergence import measure  # noqa: E402
from lm_eval_emergence.profile import (  # noqa: E402
    add_settings_arguments,
    format_result,
    settings_from_args,
)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark once and print its timings; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--category", default="country")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--n", type=int, default=2048)
    add_settings_arguments(p)
    p.add_argument("--json", type=Path, default=None, help="write timings and result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    settings = settings_from_args(args)

    start = time.perf_counter()
    model, tokenizer = load_default_model("cpu")
    t_load = time.perf_counter()
    sequences = make_icl_sequences(tokenizer, args.category, args.k, args.n, args.seed)
    t_data = time.perf_counter()
    result = measure(model, tokenizer, sequences, settings, progress=not args.quiet)
    end = time.perf_counter()
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux

    timings = {
        "model load": t_load - start,
        "data (ICL lists)": t_data - t_load,
        "macro capture": result.seconds_capture_macro,
        "micro capture": result.seconds_capture_micro,
        "estimation": result.seconds_estimation,
        "total": end - start,
    }
    print(
        f"\nIE profile of {result.model_name}: {result.n} {args.category} lists, k={args.k} "
        f"(T={result.seq_len}), {len(result.layers)} blocks, estimator {args.estimator} "
        f"{settings.estimation.options or ''}, projection {args.projection_dim}"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads\n"
    )
    print(f"{'step':<18} {'seconds':>9}")
    print("-" * 28)
    for name, seconds in timings.items():
        print(f"{name:<18} {seconds:>9.1f}")
    print(f"{'peak memory':<18} {peak_gib:>8.1f}G\n")
    print(format_result(result))
    if args.json is not None:
        record = {"timings_s": timings, "peak_rss_gib": peak_gib, "result": result.to_dict()}
        args.json.write_text(json.dumps(record, indent=2, allow_nan=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
