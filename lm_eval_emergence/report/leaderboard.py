"""The leaderboard: the models of each task ordered by IE, each with the ranks it can hold.

A rank interval is read off the standard errors, as arena-style leaderboards give ranks with
confidence intervals: two models whose IE differ by no more than two combined standard errors
are not ordered by the data, so they share ranks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from ..metrics.table import definition

__all__ = ["COLUMNS", "SEPARATION_SE", "leaderboard", "rank_intervals", "rank_text"]

#: Two IE values are ordered when they differ by more than this many combined standard errors.
SEPARATION_SE = 2.0
#: The metrics of a leaderboard row, IE first (it orders them), each with its ±.
METRICS = ("emergence", "emergence_vs_random", "acc", "logprob_correct")
#: The columns of `leaderboard` (and of leaderboard.csv).
COLUMNS = (
    "task",
    "settings",
    "rank",
    "best",
    "worst",
    "model",
    "parameters",
    *(c for m in METRICS for c in (m, f"{m}_stderr")),
    "runs",
    "n",
)


def rank_intervals(values: Sequence[float], stderrs: Sequence[float]) -> list[tuple[int, int]]:
    """(best, worst) rank of each model, ranks counted from the highest value.

    With n models: model i's best rank is 1 + the number of models j whose value is above i's
    by more than 2·sqrt(se_i² + se_j²), its worst rank n − the number of models whose value is
    below i's by more than that. A missing standard error counts as 0.
    """
    ses = [0.0 if se is None or math.isnan(se) else float(se) for se in stderrs]
    n = len(values)
    out = []
    for i, (value, se) in enumerate(zip(values, ses, strict=True)):
        margins = [SEPARATION_SE * math.hypot(se, ses[j]) for j in range(n)]
        above = sum(values[j] - value > margins[j] for j in range(n) if j != i)
        below = sum(value - values[j] > margins[j] for j in range(n) if j != i)
        out.append((1 + above, n - below))
    return out


def rank_text(best: int, worst: int) -> str:
    """ "3" when the rank is certain, else "1–2"."""
    return str(best) if best == worst else f"{best}–{worst}"


def _board(rows: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard of one board (one task, one set of settings): a row per model."""
    wide = rows[rows["filter"] == "none"].pivot_table(
        index="model", columns="key", values=["value", "se"], aggfunc="first"
    )
    ie = rows[(rows["key"] == "emergence") & (rows["filter"] == "none")].set_index("model")
    sign = -1.0 if definition("emergence").higher_is_better is False else 1.0
    ie = ie.sort_values("value", ascending=sign < 0, kind="stable")
    ranks = rank_intervals(list(sign * ie["value"]), list(ie["se"]))
    out = pd.DataFrame(
        {
            "task": ie["task"],
            "rank": [rank_text(*r) for r in ranks],
            "best": [r[0] for r in ranks],
            "worst": [r[1] for r in ranks],
            "model": ie.index,
            "parameters": ie["parameters"],
            "runs": ie["runs"],
            "n": ie["n"],
        }
    )
    for metric in METRICS:
        for column, name in (("value", metric), ("se", f"{metric}_stderr")):
            present = (column, metric) in wide.columns
            out[name] = wide[(column, metric)].reindex(ie.index) if present else math.nan
    return out.reset_index(drop=True)


def leaderboard(reps: pd.DataFrame, boards: dict[str, str]) -> pd.DataFrame:
    """Every task's leaderboard (`COLUMNS`), from the replicate table (`table.replicates`).

    One leaderboard per board with IE from two or more models: the models of one task measured
    alike. `boards` names each board by what sets it apart from the task's other boards ("" for
    a task's only one); that text is the `settings` column.
    """
    with_ie = reps[(reps["key"] == "emergence") & (reps["filter"] == "none")]
    tables = []
    for board, ie in with_ie.groupby("board", sort=False):
        if ie["model"].nunique() < 2:
            continue
        table = _board(reps[reps["board"] == board])
        table.insert(1, "settings", boards.get(board, ""))
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=pd.Index(COLUMNS))
    return pd.concat(tables, ignore_index=True)[list(COLUMNS)]
