"""Across models: intrinsic metrics against ability (correlations) and every metric against
scale (series), read from the replicate table (`table.replicates`).

A point is a distinct model (its seed replicates averaged), and only models measured alike
(one board: the same task and settings) share a coefficient or a series: repeats of one model
are never points. Where too few models or sizes are there, nothing is drawn; `build_report`
says in one sentence what more is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..metrics.table import ABILITY_KEYS, INTRINSIC_KEYS, direction
from .figures import scatter_figure, series_figure
from .stats import Breakpoint, breakpoint_fit, ci_text, correlate
from .text import params_text, slug, table

#: Distinct models a correlation needs, and distinct sizes (or steps) a series needs (the
#: breakpoint fit's minimum).
MIN_MODELS = 3
MIN_SIZES = 4
#: Scatter figures drawn at most (the table lists every pair), and series per panel.
MAX_SCATTER_FIGURES = 12
MAX_SERIES = 8
#: What the series section can put on its x axis: log10 parameters, or log10(1 + step).
X_AXES = ("params", "step")


@dataclass
class Pair:
    """An intrinsic metric of one board against an ability metric: a point per model."""

    task: str
    metric: str  # the intrinsic metric (its key, with a filter other than "none")
    key: str  # the intrinsic metric's key
    board: str  # the board's name among the task's boards ("" for its only one)
    ability_task: str
    ability_metric: str
    points: pd.DataFrame  # model, x (intrinsic), y (ability), issues
    order: tuple[Any, ...]  # where its row goes: IE first, a task's own ability first

    @property
    def intrinsic(self) -> str:
        """ "task: metric", with the board's settings where the task has several."""
        return f"{self.task}: {self.metric}" + (f" ({self.board})" if self.board else "")

    @property
    def ability(self) -> str:
        return f"{self.ability_task}: {self.ability_metric}"

    def figure_name(self) -> str:
        prefix = "" if self.key == "emergence" else f"{self.key}_"
        board = f"_{slug(self.board)[:40]}" if self.board else ""
        ability = f"{slug(self.ability_task)}_{slug(self.ability_metric)}"
        return f"scatter_{prefix}{slug(self.task)}{board}__{ability}.png"


def _ability_by_model(abil: pd.DataFrame, atask: str, metric: str, board: str | None) -> pd.Series:
    """A model's value of an ability metric: of the same measurement (own task), else the mean
    over the model's measurements of that task."""
    rows = abil[(abil["task"] == atask) & (abil["metric"] == metric)]
    if board is not None:
        rows = rows[rows["board"] == board]
    return rows.groupby("model")["value"].mean()


def correlation_pairs(reps: pd.DataFrame, boards: dict[str, str]) -> list[Pair]:
    """Every intrinsic metric of a board against every ability metric, a point per model: a
    task's own ability, and top-level tasks against each other (a subtask only with its own).
    IE first, own-task pairs first."""
    intr = reps[reps["key"].isin(INTRINSIC_KEYS)]
    abil = reps[reps["key"].isin(ABILITY_KEYS)]
    subtasks = set(reps.loc[reps["subtask"], "task"])
    abilities = list(abil[["task", "metric", "key"]].drop_duplicates().itertuples(index=False))
    pairs = []
    for (board, metric), rows in intr.groupby(["board", "metric"], sort=False):
        itask, ikey = str(rows["task"].iloc[0]), str(rows["key"].iloc[0])
        for atask, ametric, akey in abilities:
            own = atask == itask
            if not own and not {itask, atask}.isdisjoint(subtasks):
                continue
            ability = _ability_by_model(abil, atask, ametric, board if own else None)
            points = rows.set_index("model")[["value", "issues"]].join(
                ability.rename("y"), how="inner"
            )
            if points.empty:
                continue
            points = points.rename(columns={"value": "x"}).reset_index()
            order = (
                INTRINSIC_KEYS.index(ikey),
                not own,
                itask in subtasks,
                ABILITY_KEYS.index(akey),
                -len(points),
                str(board),
                atask,
            )
            name = boards.get(str(board), "")
            pairs.append(Pair(itask, str(metric), ikey, name, atask, ametric, points, order))
    return sorted(pairs, key=lambda p: p.order)


def _sign(key: str) -> str:
    return {1: "+", -1: "−"}.get(direction(key), "none")


def correlation_section(pairs: list[Pair], out: Path, bootstrap: int, seed: int) -> list[str]:
    """The coefficients of the pairs with enough models and their scatter figures (nothing
    when no pair has enough); one sentence counts the pairs left out."""
    computed = [p for p in pairs if len(p.points) >= MIN_MODELS]
    if not computed:
        return []
    md = [
        "",
        "## Intrinsic metrics against ability",
        "",
        "Every intrinsic metric (IE `emergence`, `emergence_vs_random`, Diff-eRank `diff_erank`, "
        "`erank`, `matrix_entropy`) against every ability metric (`acc`, `acc_norm`, and the "
        "continuous `logprob_correct`): a task's own, and top-level tasks against each other. "
        "One point per distinct model (a model's seed replicates: their mean), over the models "
        "measured with the same settings; a pair with fewer than "
        f"{MIN_MODELS} models is left out. Spearman ρ and Pearson r (scipy.stats); 95% "
        f"intervals from a percentile bootstrap that resamples models ({bootstrap} resamples, "
        f"seed {seed}); resamples in which a variable is constant are skipped, 'used' counts "
        "the others. With few models a percentile interval understates the uncertainty: "
        "[1.00, 1.00] only says that every resample kept the models' order. No p-values: the "
        "asymptotic ones are wrong for a handful of models. Expected: the sign its authors read "
        "with more ability (`metrics/table.py`).",
        "",
    ]
    rows, figures, not_drawn = [], [], []
    for pair in computed:
        corr = correlate(list(pair.points["x"]), list(pair.points["y"]), bootstrap=bootstrap,
                         seed=seed)  # fmt: skip
        note = "unreliable estimates" if pair.points["issues"].str.len().gt(0).any() else ""
        if corr.note:
            cells = [corr.note, "", ""]
        else:
            cells = [
                f"{corr.spearman:.3f} {ci_text(corr.spearman_ci)}",
                f"{corr.pearson:.3f} {ci_text(corr.pearson_ci)}",
                f"{corr.resamples_used}/{corr.resamples}",
            ]
        rows.append([pair.intrinsic, pair.ability, str(corr.n), *cells, _sign(pair.key), note])
        if corr.note is None:
            (figures if len(figures) < MAX_SCATTER_FIGURES else not_drawn).append((pair, corr))
    header = ["intrinsic", "ability", "models", "Spearman ρ [95% CI]", "Pearson r [95% CI]"]
    md += table([*header, "resamples used", "expected", "notes"], rows)
    if any(row[-1] for row in rows):
        md += [
            "",
            "unreliable estimates: a model's estimate has flagged blocks, is at the ceiling or "
            "has estimator warnings (see Reliability).",
        ]
    for pair, corr in figures:
        xy = [(str(m), float(x), float(y)) for m, x, y in pair.points[["model", "x", "y"]].values]
        fig = scatter_figure(xy, pair.intrinsic, pair.ability, corr, pair.figure_name(), out)
        title = f"{pair.intrinsic} vs {pair.ability}"
        md += ["", f"### {title}", "", f"![{title}]({fig})"]
    if not_drawn:
        md += [
            "",
            f"Not drawn (at most {MAX_SCATTER_FIGURES} scatter figures; the numbers are in the "
            f"table): {'; '.join(f'{p.intrinsic} vs {p.ability}' for p, _ in not_drawn)}.",
        ]
    left_out = len(pairs) - len(computed)
    if left_out:
        md += ["", f"Left out: {left_out} pair(s) with fewer than {MIN_MODELS} distinct models."]
    return md


# --------------------------------------------------------------------------------- series


def x_of(reps: pd.DataFrame, x: str) -> pd.Series:
    """Each row's place on the series axis: log10 parameters, or log10(1 + step)."""
    values = (reps["parameters"] if x == "params" else reps["step"] + 1).astype(float)
    return values.where(values > 0).map(math.log10)


def _x_text(value: float, x: str) -> str:
    """A place on the series axis in its own units (a parameter count or a step)."""
    return params_text(round(10**value)) if x == "params" else f"{10**value - 1:,.0f}"


def _breakpoint_cells(fit: Breakpoint, x: str) -> list[str]:
    """Breakpoint, interval, slope after it, R² of the hinge and of one line."""
    if fit.note:
        return [fit.note, "", "", ""]
    lo, hi = fit.ci  # type: ignore[misc]
    low = f"≤ {_x_text(lo, x)}" if fit.open_low else _x_text(lo, x)
    high = f"≥ {_x_text(hi, x)}" if fit.open_high else _x_text(hi, x)
    where = _x_text(fit.at, x)  # type: ignore[arg-type]
    if fit.at == lo and fit.open_low:
        where += " (no bend inside the runs: one line fits as well)"
    return [f"{where} [{low}, {high}]", f"{fit.slope:+.3g}", f"{fit.r2:.2f}", f"{fit.r2_line:.2f}"]


def series_points(reps: pd.DataFrame, x: str) -> pd.DataFrame:
    """The rows a series can place: top-level tasks' ability and intrinsic metrics with an x."""
    rows = reps[reps["key"].isin((*ABILITY_KEYS, *INTRINSIC_KEYS)) & ~reps["subtask"]].copy()
    rows["x"] = x_of(rows, x)
    return rows[rows["x"].notna()]


def series_section(reps: pd.DataFrame, boards: dict[str, str], out: Path, x: str) -> list[str]:
    """Every metric against scale on one figure, a series per task measured alike with at least
    MIN_SIZES distinct sizes (or steps), each with where it starts to change."""
    what = "parameter count" if x == "params" else "training step"
    unit = "size" if x == "params" else "step"
    rows = series_points(reps, x)
    order = {k: i for i, k in enumerate((*ABILITY_KEYS, *INTRINSIC_KEYS))}
    found, shared = [], {}
    for (board, metric), points in rows.groupby(["board", "metric"], sort=False):
        if points["x"].nunique() < MIN_SIZES:
            continue
        if points["x"].duplicated().any():  # two models of one size: two series, not one
            same = points[points["x"].duplicated(keep=False)]
            shared[str(points["task"].iloc[0])] = sorted(map(str, same["model"].unique()))
            continue
        found.append((order[points["key"].iloc[0]], metric, board, points.sort_values("x")))
    notes = [
        f"Not a series: {task} has several models of one {unit} ({', '.join(models)}); a "
        f"series holds one model per {unit}."
        for task, models in shared.items()
    ]
    if not found:
        return ["", f"## Intrinsic and ability metrics against {what}", "", *notes] if notes else []
    found.sort(key=lambda f: f[:3])
    by_metric: dict[str, list] = {}
    for _, metric, board, points in found:
        by_metric.setdefault(str(metric), []).append((board, points))
    md = ["", f"## Intrinsic and ability metrics against {what}", ""]
    md += [*notes, ""] if notes else []
    no_x = reps[x_of(reps, x).isna()]["model"].unique()
    if len(no_x):
        reason = "no parameter count" if x == "params" else "no training step in its model name"
        md += [f"Left out ({reason}): {', '.join(map(str, no_x))}.", ""]
    panels, table_rows, omitted = [], [], []
    for metric, series_of in by_metric.items():
        series = []
        for board, points in series_of[:MAX_SERIES]:
            task = points["task"].iloc[0]
            label = f"{task} ({boards[board]})" if boards.get(board) else str(task)
            xs, ys = list(points["x"]), list(points["value"])
            ses = [None if math.isnan(v) else v for v in points["se"]]
            fit = breakpoint_fit(xs, ys)
            bends = fit.at is not None and fit.at > min(xs)  # at the first model: one line
            series.append((label, xs, ys, ses, fit if bends else None))
            table_rows.append([metric, label, str(len(points)), *_breakpoint_cells(fit, x)])
        omitted += [f"{metric}: {points['task'].iloc[0]}" for _, points in series_of[MAX_SERIES:]]
        panels.append((metric, series))
    if omitted:
        md += [f"Not plotted (at most {MAX_SERIES} tasks a panel): {', '.join(omitted)}.", ""]
    xlabel = "log10 parameters" if x == "params" else "log10(1 + training step)"
    figure = series_figure(panels, xlabel, f"series_{x}.png", out)
    md += [
        f"One panel per metric, one point per distinct model (its seed replicates averaged, ± "
        f"as in the Leaderboard), against the log of the {what}, over the models measured "
        f"alike; a series needs {MIN_SIZES} distinct values. Ability first (`acc`, "
        "discontinuous; `logprob_correct`, the continuous log-probability of a correct next "
        "entity), then the intrinsic metrics. Where each one starts to change: the hinge "
        "y = a + b·max(0, x − c) fitted by least squares over the breakpoint c (at least two "
        "points above it), with the profile 95% interval of c (the breakpoints whose residual "
        "sum of squares is within the F(1, n − 3) bound of the best; approximate: on simulated "
        "series it covered the true breakpoint in 87–95% of them); 'b' is the slope after c per "
        "unit of log10, and R² compares the hinge with one straight line. With a handful of "
        "models the interval is wide and an end marked ≤ / ≥ is not bounded by the data.",
        "",
        f"![metrics against {what}]({figure})",
        "",
    ]
    md += table(
        ["metric", "task", "models", "starts to change at [95% interval]", "slope after", "R²",
         "R² line"],
        table_rows,
    )  # fmt: skip
    return md
