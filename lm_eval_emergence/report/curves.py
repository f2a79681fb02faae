"""The sections drawn from the sidecars' curves: E(l) per block (with the control's), the shot
and position curves, and IE by what the model does next. One line per run, labelled by what
tells it from the others."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..records import TaskRecord
from .figures import curve_figure, layers_figure, outcome_figure
from .runs import Run
from .text import NA, num, plus_minus, table


def _entries(
    runs: Sequence[Run], task: str, has: Callable[[TaskRecord], object]
) -> list[tuple[Run, TaskRecord]]:
    """(run, its sidecar record of `task`) of the runs whose record `has` something."""
    return [(r, e) for r in runs if (e := (r.sidecar or {}).get(task)) is not None and has(e)]


def _skipped(runs: Sequence[Run], task: str, shown: Sequence[Run]) -> list[str]:
    missing = [r.label for r in runs if task in r.emergence_tasks() and r not in shown]
    if not missing:
        return []
    return [f"Not shown (no sidecar data for {task}): {', '.join(missing)}.", ""]


def layers_section(runs: Sequence[Run], tasks: Sequence[str], out: Path) -> list[str]:
    """E(l) per block of every run of each task, its control's beside it."""
    md = ["", "## Per-block emergence", ""]
    drawn = 0
    for task in tasks:
        having = _entries(runs, task, lambda e: e.result.per_layer)
        if not having:
            continue
        drawn += 1
        series = [
            (r.label, e.result.per_layer, num(e.result.ceiling_bits),
             e.control.per_layer if e.control is not None else None)
            for r, e in having
        ]  # fmt: skip
        md += [f"### {task}", ""]
        md += [f"![{task} per block]({layers_figure(task, series, out)})", ""]
        md += _skipped(runs, task, [r for r, _ in having])
    if any(any(e.control for e in (r.sidecar or {}).values()) for r in runs):
        md.append(
            "Dashed on the left: the run's random-weights control (`ie_control=random`), the "
            "same documents, folds and projections on a copy of the model with fresh weights."
        )
    groups = sorted({g for r in runs for g in r.groups if g in tasks})
    if groups:
        md.append(
            f"Groups ({', '.join(groups)}) have no per-block data of their own; see their subtasks."
        )
    elif not drawn:
        md.append("No run has per-block data (no sidecar).")
    return md


def curves_section(runs: Sequence[Run], tasks: Sequence[str], out: Path) -> list[str]:
    """The shot curve (shots task) and the per-position curve (natural and custom text)."""
    md = ["", "## Shot and position curves", ""]
    drawn = 0
    for task in tasks:
        with_shots = _entries(runs, task, lambda e: e.shot_curve)
        with_positions = _entries(runs, task, lambda e: not e.shot_curve and e.result.per_position)
        if with_shots:
            series = [(r.label, e.shot_curve or []) for r, e in with_shots]
            figure = curve_figure(task, "shots", series, out)
            md += [f"### {task}: E at the end of each shot", "", f"![{task} shots]({figure})", ""]
            drawn += 1
        if with_positions:
            series = [(r.label, e.result.per_position or []) for r, e in with_positions]
            figure = curve_figure(task, "positions", series, out)
            md += [f"### {task}: E per token position", "", f"![{task} positions]({figure})", ""]
            drawn += 1
    if not drawn:
        md.append("No run has a shot curve or a per-position curve.")
    return md


def outcomes_section(runs: Sequence[Run], tasks: Sequence[str], out: Path) -> list[str]:
    """IE split by what the model did next (the shots task's `emergence_outcome_*`)."""
    md = []
    for task in tasks:
        having = _entries(runs, task, lambda e: e.outcomes)
        if not having:
            continue
        md += ["", f"## {task}: IE by what the model does next", ""]
        md += [
            "correct: names an unlisted entity; repeat: a listed one; other: anything else. "
            "Within a run every group is estimated on the same number of documents (IE depends "
            "on N); a group below the estimator's minimum has no number.",
            "",
        ]
        rows = []
        for r, e in having:
            groups = e.outcomes or []
            cells = [
                f"{plus_minus(g.ie_bits, g.ie_stderr_bits)} ({g.n_docs})"
                if g.ie_bits is not None
                else f"{NA} ({g.n_docs})"
                for g in groups
            ]
            rows.append([r.label, *cells, str(max(g.n_used for g in groups))])
        names = [g.outcome for g in having[0][1].outcomes or []]
        md += table(["run", *[f"{n} (docs)" for n in names], "docs per estimate"], rows)
        series = [(r.label, e.outcomes or []) for r, e in having]
        md += ["", f"![{task} outcomes]({outcome_figure(task, series, out)})", ""]
    return md
