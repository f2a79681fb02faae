"""The runs as one tidy table, read once: a row per run, task and metric (pandas).

Every section of the report is a query of it or of `replicates` (its rows averaged over runs
that differ only in a seed), and it is written as `runs.csv`, so a cut the report does not draw
is one line of pandas away. Columns:

- run (the run's index), label, model (its name, with a checkpoint's step), parameters, step,
  task, subtask (of a group, in that run), sidecar (the run has one), issues (the reliability
  problems of the run's estimate of the task: flagged, ceiling, warnings);
- key (the metric's name, `acc`), filter (lm-eval's, `none`), metric (the key, with a filter
  other than `none` in brackets), value, stderr (the ± the run reports; empty without one);
- every setting (`runs.SETTINGS`) as text, and n (documents) as a number; seq_len;
- replicate: the model, the task and every setting but the seeds and the control (which is
  measured beside IE and leaves it unchanged): runs that share it are replicates;
- board: the replicate key without the model: models that share it were measured alike, so
  their numbers are compared (one leaderboard, one correlation, one series).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .checks import reliability_issues
from .runs import SEEDS, SETTINGS, Run, differing_labels
from .text import fmt, merge, setting_text

__all__ = ["KEYED", "board_names", "replicates", "tidy"]

#: The settings that make two measurements different ones (the seeds and the control do not).
KEYED = tuple(k for k in SETTINGS if k not in (*SEEDS, "control"))


def _model(run: Run) -> str:
    """A run's model: its name, with the step when it is a checkpoint."""
    return run.model if run.step is None else f"{run.model} step {run.step}"


def _result_field(run: Run, task: str, name: str) -> Any:
    """`name` of the sidecar's result of `task`; of a group, merged over its subtasks."""
    subs = [task] if task in (run.sidecar or {}) else run.groups.get(task, [])
    return merge({s: getattr(res, name) for s in subs if (res := run.result(s))})


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _task_rows(index: int, run: Run, task: str, subtasks: set[str]) -> list[dict[str, Any]]:
    settings = run.settings.get(task, {})
    texts = {k: setting_text(settings.get(k)) for k in SETTINGS}
    n = settings.get("n", run.sample_len.get(task))
    base = {
        "run": index,
        "label": run.label,
        "model": _model(run),
        "parameters": _count(run.n_parameters),
        "step": _count(run.step),
        "task": task,
        "subtask": task in subtasks,
        "sidecar": run.sidecar is not None,
        "issues": ", ".join(sorted({kind for kind, _ in reliability_issues(run, task)})),
        **texts,
        "n": _count(n),
        "seq_len": fmt(_result_field(run, task, "seq_len")),
        "replicate": " | ".join([_model(run), task, *(texts[k] for k in KEYED)]),
        "board": " | ".join([task, *(texts[k] for k in KEYED)]),
    }
    metrics = run.metrics[task]
    rows = []
    for full, value in metrics.items():
        key, _, filt = full.partition(",")
        if key.endswith("_stderr") or value is None:
            continue
        stderr = metrics.get(f"{key}_stderr,{filt}")
        rows.append(
            base
            | {
                "key": key,
                "filter": filt,
                "metric": key if filt in ("", "none") else f"{key} ({filt})",
                "value": value,
                "stderr": math.nan if stderr is None else stderr,
            }
        )
    return rows


def tidy(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run, task and metric (module docstring), runs in their given order."""
    rows = []
    for index, run in enumerate(runs):
        subtasks = {s for subs in run.groups.values() for s in subs}
        for task in run.metrics:
            rows += _task_rows(index, run, task, subtasks)
    columns = ["run", "label", "model", "parameters", "step", "task", "subtask", "key"]
    columns += ["filter", "metric", "value", "stderr", *SETTINGS, "seq_len", "sidecar"]
    columns += ["issues", "replicate", "board"]
    table = pd.DataFrame(rows, columns=pd.Index(columns))
    return table.astype({"parameters": "Int64", "step": "Int64", "n": "Int64"})


def _joined(values: pd.Series) -> str:
    return ", ".join(dict.fromkeys(v for text in values for v in text.split(", ") if v))


def _seeds(group: pd.DataFrame) -> str:
    """The seeds a replicate group's runs drew: "ie_seed 0, 1, 2" (those that vary)."""
    parts = []
    for seed in SEEDS:
        values = list(dict.fromkeys(group[seed]))
        if len(values) > 1:
            parts.append(f"{seed} {', '.join(values)}")
    return "; ".join(parts)


def replicates(table: pd.DataFrame) -> pd.DataFrame:
    """One row per replicate group and metric: the runs that differ only in a seed, averaged.

    value: the mean; stderr: the mean of the ± the runs report; sd: the standard deviation over
    the runs (ddof 1; empty for one run); each seed: the values its runs drew; seeds: those
    that vary ("ie_seed 0, 1, 2"); ratio: sd / stderr; se: the ± the mean is compared
    with, the reported ± of a single run and, for replicates, the larger of the mean ± and sd
    (conservative: averaging runs that share their documents does not shrink the documents'
    share of the error). group: the model, followed where it has several groups on a task by
    the settings that tell them apart.
    """
    keys = ["replicate", "metric"]
    grouped = table.groupby(keys, sort=False)
    out = grouped.first().drop(columns=["run", "label", "value", "stderr"])
    out["value"] = grouped["value"].mean()
    out["stderr"] = grouped["stderr"].mean()
    out["sd"] = grouped["value"].std()
    out["runs"] = grouped["run"].nunique()
    out["labels"] = grouped["label"].agg("; ".join)
    out["issues"] = grouped["issues"].agg(_joined)
    out["seeds"] = grouped[list(SEEDS)].apply(_seeds)
    for seed in SEEDS:
        out[seed] = grouped[seed].agg(lambda values: ", ".join(dict.fromkeys(values)))
    out = out.reset_index()
    out["ratio"] = out["sd"] / out["stderr"]
    out["se"] = out["stderr"].where(out["runs"] < 2, out[["stderr", "sd"]].max(axis=1))
    out["group"] = out["model"]
    for _, rows in out.groupby("task", sort=False):
        first = rows.drop_duplicates("replicate")
        names = list(first["model"])
        labels = differing_labels(
            names, [{k: row[k] for k in KEYED} for _, row in first.iterrows()]
        )
        out.loc[rows.index, "group"] = rows["replicate"].map(
            dict(zip(first["replicate"], labels, strict=True))
        )
    return out


def board_names(reps: pd.DataFrame) -> dict[str, str]:
    """Each board's name among its task's boards: the settings that set it apart ("N=256"),
    "" where the task has one board."""
    names: dict[str, str] = {}
    for task, rows in reps.drop_duplicates("board").groupby("task", sort=False):
        settings = [{k: row[k] for k in KEYED} for _, row in rows.iterrows()]
        labels = differing_labels([str(task)] * len(rows), settings)
        for board, label in zip(rows["board"], labels, strict=True):
            names[board] = label[len(str(task)) :].strip()
    return names
