"""`build_report`: the runs read once into a table, and the report's sections as its queries."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from ..metrics.table import ABILITY_KEYS, INTRINSIC_KEYS
from .across import (
    MIN_MODELS,
    MIN_SIZES,
    X_AXES,
    Pair,
    correlation_pairs,
    correlation_section,
    series_points,
    series_section,
)
from .checks import CEILING_MARGIN_BITS, reliability_issues
from .curves import curves_section, layers_section, outcomes_section
from .leaderboard import SEPARATION_SE, leaderboard
from .runs import SEEDS, Run, load_runs
from .table import board_names, replicates, tidy
from .text import NA, fmt, params_text, plus_minus, table

__all__ = ["X_AXES", "build_report"]

#: The Results table's columns of the emergence tasks' own metrics, in order, when any row has
#: them (the other intrinsic metrics, then the ability metrics follow).
RESULT_METRICS = (
    ("IE", "emergence"),
    ("control IE", "emergence_random"),
    ("IE − random", "emergence_vs_random"),
    ("macro", "emergence_macro"),
    ("micro", "emergence_micro"),
    ("flagged blocks", "emergence_flagged_blocks"),
)


def build_report(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    bootstrap: int = 2000,
    seed: int = 0,
    x: str = "params",
) -> Path:
    """Write `report.md`, its PNG figures (each with the data it draws as `<name>.json`),
    `runs.csv` (the runs' tidy table: a row per run, task and metric) and `leaderboard.csv`
    into `out_dir`; return the Markdown file's path.

    `x`: the series' axis, "params" (log10 of the parameter count) or "step" (log10 of 1 + the
    training step the runs' model arguments or paths name). Raises ReportInputError for an
    input that is not an lm-eval results file.
    """
    if x not in X_AXES:
        raise ValueError(f"x must be one of {X_AXES}, got {x!r}")
    from .. import __version__

    runs = load_runs(paths)
    runs.sort(key=lambda r: (r.n_parameters is None, r.n_parameters or 0, r.label, str(r.path)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs_table = tidy(runs)
    runs_table.to_csv(out / "runs.csv", index=False)
    reps = replicates(runs_table)
    boards = board_names(reps)
    board = leaderboard(reps, boards)
    board.to_csv(out / "leaderboard.csv", index=False)
    tasks = _emergence_tasks(runs_table)

    models = runs_table["model"].nunique()
    md = [
        "# Information Emergence report",
        "",
        f"{len(runs)} run(s) of {models} model(s); lm-eval-emergence {__version__}; bootstrap "
        f"{bootstrap} resamples, seed {seed}. IE and its macro and micro terms are in bits; ± is "
        f"one standard error; {NA} marks a value the files do not hold. Every number is also in "
        "runs.csv (a row per run, task and metric, the settings as columns).",
    ]
    md += _runs_section(runs)
    md += _reliability_section(runs)
    md += _results_section(reps)
    md += _replication_section(reps)
    md += _leaderboard_section(board)
    md += layers_section(runs, tasks, out)
    md += curves_section(runs, tasks, out)
    md += outcomes_section(runs, tasks, out)
    pairs = correlation_pairs(reps, boards)
    correlations = correlation_section(pairs, out, bootstrap, seed)
    md += correlations
    series = series_section(reps, boards, out, x)
    md += series
    md += _needs(reps, pairs, x, done=(not board.empty, bool(correlations), bool(series)))
    path = out / "report.md"
    path.write_text("\n".join(md).rstrip() + "\n", encoding="utf-8")
    return path


def _emergence_tasks(runs_table: pd.DataFrame) -> list[str]:
    """Tasks with IE: top-level ones (groups and standalone tasks) first, then subtasks."""
    ie = runs_table[runs_table["key"] == "emergence"]
    subtasks = set(ie.loc[ie["subtask"], "task"])
    return sorted(ie["task"].unique(), key=lambda t: (t in subtasks, t))


# ------------------------------------------------------------------------------- sections


def _relative(paths: Sequence[Path]) -> list[str]:
    """Each results file relative to the folder that holds them all: no path of this machine."""
    resolved = [p.resolve() for p in paths]
    root = Path(os.path.commonpath([p.parent for p in resolved]))
    return [p.relative_to(root).as_posix() for p in resolved]


def _runs_section(runs: Sequence[Run]) -> list[str]:
    md = ["", "## Runs", ""]
    steps = any(r.step is not None for r in runs)
    header = ["run", "model", "parameters", *(["step"] if steps else []), "lm-eval"]
    rows = [
        [
            r.label,
            r.model,
            params_text(r.n_parameters),
            *([fmt(r.step)] if steps else []),
            r.lm_eval_version or NA,
            path,
            r.sidecar_path.name if r.sidecar_path else "none",
        ]
        for r, path in zip(runs, _relative([r.path for r in runs]), strict=True)
    ]
    md += table([*header, "results file", "sidecar"], rows)
    md += [
        "",
        "A model is named by its hub id, the shipped model's name, or its directory's last part "
        "(the model arguments' `pretrained=`); runs of one model by what differs between them.",
    ]
    md += [f"- {r.label}: {note}." for r in runs for note in r.notes]
    no_sidecar = [r.label for r in runs if r.sidecar is None]
    if no_sidecar:
        md.append(
            f"- No sidecar for {', '.join(no_sidecar)}: their scalar metrics are in the tables; "
            "the per-block, shot and position figures skip them, and their settings are unknown, "
            "so they are compared with no other run."
        )
    return md


def _reliability_section(runs: Sequence[Run]) -> list[str]:
    md = ["", "## Reliability", ""]
    rows = []
    for r in runs:
        for task in r.emergence_tasks():
            if task in r.groups and task not in (r.sidecar or {}):
                continue  # its subtasks are listed themselves
            rows += [f"- {r.label}, {task}: {text}" for _, text in reliability_issues(r, task)]
    if not rows:
        return md + ["No flagged block, no estimate at the estimator's ceiling, no warning."]
    md += [
        "Flagged blocks: estimates that diverged or lie outside the range the estimator can "
        "read; the task's IE includes them. At the ceiling: the macro term is within "
        f"{CEILING_MARGIN_BITS} bit of the most the estimator can read from N samples "
        "(`ceiling_bits`) in most blocks, so IE is a lower bound and differences between runs "
        "are not meaningful.",
        "",
    ]
    return md + rows


def _cell(rows: pd.DataFrame, metric: str) -> str:
    """A metric's mean ± its mean reported standard error in one replicate group's rows."""
    row = rows[rows["metric"] == metric]
    if row.empty:
        return NA
    value, stderr = row["value"].iloc[0], row["stderr"].iloc[0]
    if row["key"].iloc[0] == "emergence_flagged_blocks":  # a count
        return fmt(value, 0)
    return plus_minus(value, None if pd.isna(stderr) else stderr)


def _results_section(reps: pd.DataFrame) -> list[str]:
    """One row per model, task and settings (seed replicates averaged)."""
    md = ["", "## Results", ""]
    emergence = set(reps.loc[reps["key"] == "emergence", "replicate"])
    own = reps[reps["replicate"].isin(emergence)]
    if own.empty:
        md.append("No run has an emergence task.")
    else:
        present = set(own["metric"])
        columns = [(title, key) for title, key in RESULT_METRICS if key in present]
        listed = {key for _, key in RESULT_METRICS}
        columns += [(k, k) for k in INTRINSIC_KEYS if k in present and k not in listed]
        ability = own[own["key"].isin(ABILITY_KEYS)]
        columns += [(m, m) for m in sorted(set(ability["metric"]), key=_ability_order)]
        header = ["model", "parameters", "task", "runs", *(title for title, _ in columns)]
        header += ["N", "seq_len", "protocol", "estimator", "projection", "layers", "ie_seed"]
        rows = []
        for _, group in own.groupby("replicate", sort=False):
            first = group.iloc[0]
            notes = ([] if first["sidecar"] else ["no sidecar"]) + [
                i for i in first["issues"].split(", ") if i
            ]
            rows.append(
                [
                    first["group"],
                    params_text(_int(first["parameters"])),
                    first["task"],
                    str(first["runs"]),
                    *(_cell(group, key) for _, key in columns),
                    fmt(_int(first["n"])),
                    first["seq_len"],
                    first["protocol"],
                    first["estimator"],
                    first["projection_dim"],
                    first["layers"],
                    first["ie_seed"],
                    ", ".join(notes),
                ]
            )
        md += table([*header, "notes"], rows)
        md += [
            "",
            "One row per model, task and settings; a model's runs that differ only in a seed "
            "are averaged (runs: how many; see Replication). N: documents per estimate (a "
            "group: per subtask); `mixed`: a group's subtasks differ. IE of a group is the "
            "unweighted mean over its subtasks. control IE: IE of a random-weights copy of the "
            "model measured in the same run (`ie_control=random`); IE − random: the paired "
            "difference.",
        ]
    others = reps[~reps["replicate"].isin(emergence) & reps["key"].isin(ABILITY_KEYS)]
    if not others.empty:
        md += ["", "### Other tasks", ""]
        md += table(
            ["model", "task", "metric", "value", "runs", "N"],
            [
                [r.group, r.task, r.metric, plus_minus(r.value, _float(r.stderr)), str(r.runs),
                 fmt(_int(r.n))]
                for r in others.itertuples()
            ],
        )  # fmt: skip
    return md


def _ability_order(metric: str) -> tuple[int, str]:
    key = metric.split(" (", 1)[0]
    return (ABILITY_KEYS.index(key) if key in ABILITY_KEYS else len(ABILITY_KEYS), metric)


def _int(value: float) -> int | None:
    return None if pd.isna(value) else int(value)


def _float(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def _replication_section(reps: pd.DataFrame) -> list[str]:
    """The seed replicates: the spread a new seed gives against the ± a run reports."""
    keys = (*INTRINSIC_KEYS, *ABILITY_KEYS)
    replicated = reps[(reps["runs"] > 1) & reps["key"].isin(keys)]
    if replicated.empty:
        return []
    md = [
        "",
        "## Replication",
        "",
        f"Runs of one model and task that differ only in a seed ({', '.join(SEEDS)}: the "
        "projections and folds, the documents) are replicates, one row each per metric: "
        "their mean, the mean of the ± they report, the standard deviation over the seeds "
        "(sd), and sd / ±. Near 1 the ± covers what a new seed moves; well above it (beyond "
        "about 2 with a handful of seeds) the ± understates the run-to-run spread, and the "
        "Leaderboard reads such a model with sd instead.",
        "",
    ]
    replicated = replicated.assign(order=replicated["key"].map(keys.index))
    rows = [
        [
            r.group,
            r.task,
            r.metric,
            str(r.runs),
            r.seeds,
            fmt(r.value),
            fmt(_float(r.stderr)),
            fmt(_float(r.sd)),
            NA if pd.isna(r.ratio) else f"{r.ratio:.1f}",
        ]
        for r in replicated.sort_values(["task", "order"], kind="stable").itertuples()
    ]
    header = ["model", "task", "metric", "runs", "seeds", "mean", "mean ±", "sd", "sd / ±"]
    return md + table(header, rows)


def _leaderboard_section(board: pd.DataFrame) -> list[str]:
    """Per task, the models measured alike ordered by IE with the ranks each can hold."""
    if board.empty:
        return []
    md = [
        "",
        "## Leaderboard",
        "",
        "The models of each task ordered by IE, ± one standard error (a model's seed replicates: "
        "their mean, ± the larger of their mean ± and their standard deviation), over the "
        "models measured with the same settings. Rank: model i's best rank is 1 + the number of "
        f"models whose IE is above its by more than {SEPARATION_SE:g}·√(se_i² + se_j²), its "
        "worst n − the number whose IE is below its by more than that: models closer than that "
        "share ranks (1–2; 3 where both agree). The same table is in leaderboard.csv.",
    ]
    optional = ("emergence_vs_random", "acc", "logprob_correct")
    for (task, settings), rows in board.groupby(["task", "settings"], sort=False):
        shown = [m for m in optional if rows[m].notna().any()]
        titles = {"emergence_vs_random": "IE − random"}
        md += ["", f"### {task}" + (f" ({settings})" if settings else ""), ""]
        header = ["rank", "model", "parameters", "IE", *(titles.get(m, m) for m in shown)]
        md += table(
            [*header, "runs", "N"],
            [
                [
                    r["rank"],
                    r["model"],
                    params_text(_int(r["parameters"])),
                    plus_minus(r["emergence"], _float(r["emergence_stderr"])),
                    *(plus_minus(_float(r[m]), _float(r[f"{m}_stderr"])) for m in shown),
                    str(r["runs"]),
                    fmt(_int(r["n"])),
                ]
                for _, r in rows.iterrows()
            ],
        )
    return md


def _needs(
    reps: pd.DataFrame, pairs: list[Pair], x: str, *, done: tuple[bool, bool, bool]
) -> list[str]:
    """One sentence naming what more runs the analyses across models that were not computed
    (leaderboard, correlations, series: `done`) would need, and what the runs hold."""
    what = "parameter counts" if x == "params" else "training steps"
    ie = reps[reps["key"] == "emergence"]
    most = int(ie.groupby("board")["model"].nunique().max()) if not ie.empty else 0
    paired = max((len(p.points) for p in pairs), default=0)
    points = series_points(reps, x)
    sizes = int(points.groupby(["board", "metric"])["x"].nunique().max()) if len(points) else 0
    flag = " or checkpoints (`--x step`)" if x == "params" else ""
    missing = [
        ("a leaderboard", "2 distinct models of a task measured alike",
         f"{most} model(s) measured alike on a task"),
        ("a correlation", f"{MIN_MODELS} distinct models with an ability metric",
         f"{paired} with an ability metric"),
        ("a series", f"{MIN_SIZES} distinct {what}{flag}", f"{sizes} distinct {what} in a series"),
    ]  # fmt: skip
    missing = [m for m, ok in zip(missing, done, strict=True) if not ok]
    if not missing:
        return []
    needs = [
        f"{what} {'needs ' if i == 0 else ''}{need}" for i, (what, need, _) in enumerate(missing)
    ]
    return [
        "",
        "## Across models",
        "",
        f"Not computed: {_listed(needs)}; the runs hold {_listed([m[2] for m in missing])}.",
    ]


def _listed(items: list[str]) -> str:
    """ "a, b and c"."""
    return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1]
