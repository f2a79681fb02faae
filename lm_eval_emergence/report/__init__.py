"""`lm-eval-emergence report`: figures and tables of IE across lm-eval runs.

Input: lm-eval results files (`results_<date>.json`, or directories searched for them) and, next
to each, the plugin's sidecar `emergence_<date>.json`. Output, in `--out DIR`: `report.md` and
PNG figures:

1. E(l) per block with a +-1 stderr band, and the macro and micro terms, per emergence task;
2. the shot curve (shots task) and the per-position curve (natural / custom text);
3. every intrinsic metric (IE, IE against the control, Diff-eRank, erank, matrix entropy)
   against every ability metric (`acc`, `acc_norm`, the continuous `logprob_correct`), one point
   per run, with Spearman and Pearson coefficients and percentile bootstrap 95% intervals;
4. the series: every metric against log parameters (or the training step, `--x step`) on one
   figure, ability next to the intrinsic metrics, each with where it starts to change (a
   hinge fit's breakpoint with its profile 95% interval): performance-based emergence beside
   the intrinsic kind;
5. one table with every number and its estimator settings.

The report does not compare silently what should not be compared: runs whose estimator
settings or N differ for a task are listed under "Comparability" and every figure or coefficient
that mixes them carries a warning; blocks flagged by the estimator and estimates at the
estimator's ceiling are listed under "Reliability". Runs without a sidecar keep their scalar
metrics; the figures that need the sidecar skip them, with a note. Missing values read "n/a".

Modules: `runs` (reading files into `Run`s), `checks` (comparability and reliability),
`stats` (correlations), `figures` (matplotlib, Agg, no pyplot), `document` (the Markdown),
`text` (formatting).
"""

from __future__ import annotations

import argparse
import sys

from .document import X_AXES, build_report
from .runs import ReportInputError, Run, load_runs
from .stats import Breakpoint, Correlation, breakpoint_fit, correlate

__all__ = [
    "Breakpoint",
    "Correlation",
    "ReportInputError",
    "Run",
    "breakpoint_fit",
    "build_report",
    "correlate",
    "load_runs",
    "main",
]

PROG = "lm-eval-emergence report"


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    """`lm-eval-emergence report RESULTS... --out DIR` (argv without the word "report")."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Figures and tables of Information Emergence across lm-eval runs.",
    )
    parser.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="results_<date>.json files, or directories searched for them (recursively)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="where report.md goes")
    parser.add_argument(
        "--bootstrap",
        type=_non_negative,
        default=2000,
        help="bootstrap resamples for the correlation intervals (default 2000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument(
        "--x",
        choices=X_AXES,
        default="params",
        help="the series' axis: log parameters (default) or the training step that each run's "
        "model arguments (revision=stepN) or path (checkpoint-N, stepN) name",
    )
    parser.add_argument(
        "--rank-mixed",
        action="store_true",
        help="rank runs of one task whose N, blocks, projection width or protocol differ "
        "(refused by default: their IE values are different quantities)",
    )
    args = parser.parse_args(argv)
    try:
        path = build_report(
            args.results,
            args.out,
            bootstrap=args.bootstrap,
            seed=args.seed,
            x=args.x,
            rank_mixed=args.rank_mixed,
        )
    except ReportInputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    figures = path.read_text(encoding="utf-8").count("](")
    print(f"wrote {path} ({figures} figures)")
    return 0
