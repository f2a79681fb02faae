"""IE against N, against the shuffled-pair null and against the paper's MINE configuration.

Captures once, per model, the block states of N_max country lists (k = 4, T = 8) and then
estimates IE on nested subsets of N lists, so every N reads the same documents' prefix:

    python -m studies.benchmarks.ie_convergence --model default --model runs/smollm2-random \
        --json OUT/ie_convergence.json --png OUT/ie_vs_n.png   # OUT: studies/reproduction/results

For each model and N: IE, the mean macro and micro terms, the same terms on shuffled pairs
(`null=True`: what the estimator reads where there is no dependence) and the ceiling log2 of
the held-out rows. `--paper-n N` also runs `mine-paper` (the paper's MINE, `--paper-steps`
steps) on the blocks of `--paper-layers` at that N, for comparison with InfoNCE there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch  # noqa: E402

from lm_eval_emergence.capture import capture_states, plan_capture  # noqa: E402
from lm_eval_emergence.data import make_icl_sequences  # noqa: E402
from lm_eval_emergence.metrics.emergence import emergence_from_states  # noqa: E402
from lm_eval_emergence.profile import load_model  # noqa: E402
from lm_eval_emergence.settings import CaptureSettings, EstimationSettings  # noqa: E402


def _summary(result, seconds: float) -> dict:
    rows = result.per_layer
    mean = lambda key: sum(getattr(r, key) for r in rows) / len(rows)  # noqa: E731
    nulls = [r.macro_null_bits for r in rows if r.macro_null_bits is not None]
    micro_nulls = [r.micro_null_bits for r in rows if r.micro_null_bits is not None]
    return {
        "n": result.n,
        "ie_bits": result.ie_bits,
        "ie_stderr_bits": result.ie_stderr_bits,
        "macro_bits": mean("macro_bits"),
        "micro_bits": mean("micro_bits"),
        "macro_null_bits": sum(nulls) / len(nulls) if nulls else None,
        "micro_null_bits": sum(micro_nulls) / len(micro_nulls) if micro_nulls else None,
        "ceiling_bits": result.ceiling_bits,
        "flagged_blocks": result.flagged_layers,
        "per_layer_emergence_bits": [r.emergence_bits for r in rows],
        "seconds": seconds,
    }


def run_model(spec: str, args: argparse.Namespace) -> dict:
    """Capture once, estimate at every N (and mine-paper at --paper-n)."""
    model, tok = load_model(spec)
    name = str(getattr(model.config, "_name_or_path", spec))
    seqs = torch.tensor(make_icl_sequences(tok, "country", 4, max(args.n), seed=args.data_seed))
    settings = CaptureSettings(
        layers=tuple(int(v) for v in args.layers.split(",")),
        projection_dim=args.projection_dim,
        seed=args.seed,
        batch_size=32,
    )
    t0 = time.perf_counter()
    captured = capture_states(model, seqs, plan_capture(model, tok, settings))
    print(f"{name}: captured {len(seqs)} lists in {time.perf_counter() - t0:.0f} s", flush=True)

    def estimate(n: int, estimator: str, options: dict, layer_subset: list[int] | None = None):
        t = time.perf_counter()
        result = emergence_from_states(
            captured.subset(n=n, layers=layer_subset),
            EstimationSettings(estimator=estimator, options=options, seed=args.seed),
        )
        return _summary(result, time.perf_counter() - t)

    by_n = []
    for n in args.n:
        row = estimate(n, "infonce", {"null": True})
        by_n.append(row)
        print(
            f"  N={n:>5}  IE {row['ie_bits']:7.3f} ± {row['ie_stderr_bits']:.3f}  macro "
            f"{row['macro_bits']:6.3f} (null {row['macro_null_bits']:+.3f})  micro "
            f"{row['micro_bits']:6.3f} (null {row['micro_null_bits']:+.3f})  ceiling "
            f"{row['ceiling_bits']:.2f}  {row['seconds']:.0f} s",
            flush=True,
        )
    out = {"model": name, "n_parameters": sum(p.numel() for p in model.parameters())}
    out["by_n"] = by_n
    if args.paper_n:
        paper_layers = [int(v) for v in args.paper_layers.split(",")]
        infonce = estimate(args.paper_n, "infonce", {}, paper_layers)
        paper = estimate(args.paper_n, "mine-paper", {"steps": args.paper_steps}, paper_layers)
        out["paper_comparison"] = {
            "n": args.paper_n,
            "layers": paper_layers,
            "steps": args.paper_steps,
            "infonce": infonce,
            "mine_paper": paper,
        }
        print(
            f"  mine-paper ({args.paper_steps} steps) at N={args.paper_n}, blocks "
            f"{paper_layers}: IE {paper['ie_bits']:.3f} (macro {paper['macro_bits']:.3f}, micro "
            f"{paper['micro_bits']:.3f}); infonce IE {infonce['ie_bits']:.3f}; "
            f"{paper['seconds']:.0f} s",
            flush=True,
        )
    return out


def plot(results: list[dict], path: str) -> None:
    """IE, macro and micro against N (log axis) for each model, with the null as dotted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    for res in results:
        ns = [r["n"] for r in res["by_n"]]
        ie = [r["ie_bits"] for r in res["by_n"]]
        se = [r["ie_stderr_bits"] for r in res["by_n"]]
        label = Path(res["model"]).name
        line = left.errorbar(ns, ie, yerr=se, marker="o", capsize=3, label=label)
        colour = line[0].get_color()
        right.plot(ns, [r["macro_bits"] for r in res["by_n"]], "o-", color=colour)
        right.plot(ns, [r["micro_bits"] for r in res["by_n"]], "s--", color=colour)
        right.plot(ns, [r["macro_null_bits"] for r in res["by_n"]], ":", color=colour)
    ns = [r["n"] for r in results[0]["by_n"]]
    right.plot(ns, [r["ceiling_bits"] for r in results[0]["by_n"]], "k-", lw=0.8)
    left.set(xscale="log", xlabel="N (lists)", ylabel="IE (bits)", title="IE against N")
    right.set(
        xscale="log",
        xlabel="N (lists)",
        ylabel="bits",
        title="macro (o-), micro (s--), macro null (:), ceiling (black)",
    )
    left.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.minorticks_off()
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.9, wspace=0.25)
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    """Run every model and print, plot and save the numbers; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="'default' or a dir")
    parser.add_argument("--n", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--layers", default="0,4,8,12,16,20,24,29")
    parser.add_argument("--projection-dim", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-seed", type=int, default=1234)
    parser.add_argument("--paper-n", type=int, default=0)
    parser.add_argument("--paper-steps", type=int, default=300)
    parser.add_argument("--paper-layers", default="16")
    parser.add_argument("--json", default=None)
    parser.add_argument("--png", default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    results = [run_model(spec, args) for spec in args.model]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.png:
        plot(results, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
