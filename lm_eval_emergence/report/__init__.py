"""`lm-eval-emergence report`: figures and tables of IE across lm-eval runs.

Input: lm-eval results files (`results_<date>.json`, or directories searched for them) and, next
to each, the plugin's sidecar `emergence_<date>.json`. The runs are read once into one tidy table
(`runs.csv`: a row per run, task and metric, the settings as columns) and every section is a
query of it. Output, in `--out DIR`: `report.md`, `runs.csv`, `leaderboard.csv` and PNG figures
(each with the data it draws beside it as `<figure>.json`):

1. the runs, named by their model and what differs between them (`ie_seed=2`, `N=512`);
2. one row per model, task and settings with IE, the control's IE and IE − random, the macro
   and micro terms and the accuracies (a profile, for one model);
3. Replication: runs that differ only in a seed, with the seeds' standard deviation against
   the ± the runs report;
4. Leaderboard: per task with two or more models measured alike, the models ordered by IE with
   the ranks each can hold given the standard errors;
5. E(l) per block with the control's, the shot and position curves, IE by outcome;
6. across distinct models measured alike: every intrinsic metric against every ability metric
   (Spearman and Pearson with bootstrap intervals; 3 models or more) and every metric against
   log parameters or training step (4 sizes or more) with where it starts to change. Where
   the runs hold too few models, one sentence says what more is needed.

Runs without a sidecar keep their scalar metrics; the figures that need the sidecar skip them.
Missing values read "n/a".

Modules: `runs` (reading files into `Run`s, naming models and runs), `table` (the tidy table
and its replicate groups), `leaderboard` (rank intervals), `across` (correlations, series),
`curves` (the sidecars' figures), `checks` (reliability), `stats` (correlation and breakpoint),
`figures` (matplotlib, Agg, no pyplot), `document` (the Markdown), `text` (formatting).
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
    args = parser.parse_args(argv)
    try:
        path = build_report(
            args.results,
            args.out,
            bootstrap=args.bootstrap,
            seed=args.seed,
            x=args.x,
        )
    except ReportInputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    figures = path.read_text(encoding="utf-8").count("](")
    print(f"wrote {path} ({figures} figures)")
    return 0
