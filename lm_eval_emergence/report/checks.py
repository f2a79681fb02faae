"""Honesty checks: settings that differ between runs, flagged blocks, estimates at the ceiling."""

from __future__ import annotations

from collections.abc import Sequence

from ..records import EmergenceResult
from .runs import COMPARED_SETTINGS, Run
from .text import canon, layers_text, num, setting_text

#: A block's macro term this close to the estimator's ceiling is saturated.
CEILING_MARGIN_BITS = 0.5


def subtasks_of(runs: Sequence[Run]) -> set[str]:
    """Tasks that are a subtask of a group in some run."""
    return {s for r in runs for subs in r.groups.values() for s in subs}


def grouped_by_value(shown: dict[str, str]) -> str:
    """Run labels grouped by their value's text: "a (r1, r2); b (r3)"."""
    by_value: dict[str, list[str]] = {}
    for label, text in shown.items():
        by_value.setdefault(text, []).append(label)
    return "; ".join(f"{text} ({', '.join(labels)})" for text, labels in by_value.items())


def setting_differences(
    runs: Sequence[Run], task: str, keys: Sequence[str] = COMPARED_SETTINGS
) -> list[str]:
    """Differences in the settings `keys` (estimator settings, N) between the runs that have
    `task`, one line each.

    Runs without a sidecar have only N; they are named as "settings unknown". For dict-valued
    settings (estimator_options) only the options that differ are shown.
    """
    having = [r for r in runs if task in r.emergence_tasks()]
    if len(having) < 2:
        return []
    lines = []
    unknown = [r.label for r in having if "estimator" not in r.settings.get(task, {})]
    known = [r for r in having if r.label not in unknown]
    for key in keys:
        pool = having if key == "n" else known
        values = {
            r.label: r.settings.get(task, {}).get(key)
            for r in pool
            if key in r.settings.get(task, {})
        }
        if len({canon(v) for v in values.values()}) < 2:
            continue
        dicts = [v for v in values.values() if isinstance(v, dict) and "mixed" not in v]
        if key == "estimator_options" and len(dicts) == len(values):
            keys = sorted(set().union(*dicts))
            keys = [k for k in keys if len({canon(d.get(k, "unset")) for d in dicts}) > 1]
            shown = {
                lab: ", ".join(f"{k}={v.get(k, 'unset')}" for k in keys)
                for lab, v in values.items()
            }
        else:
            shown = {lab: setting_text(v) for lab, v in values.items()}
        lines.append(f"`{key}` differs: " + grouped_by_value(shown))
    if unknown:
        lines.append(f"settings unknown (no sidecar): {', '.join(unknown)}")
    return lines


def _ceiling(result: EmergenceResult | None) -> tuple[int, int, float] | None:
    if result is None:
        return None
    ceiling = num(result.ceiling_bits)
    rows = result.per_layer
    if ceiling is None or not rows:
        return None
    near = sum(
        1
        for row in rows
        if (m := num(row.macro_bits)) is not None and m >= ceiling - CEILING_MARGIN_BITS
    )
    return near, len(rows), ceiling


def reliability_issues(run: Run, task: str) -> list[tuple[str, str]]:
    """(kind, text) of each reliability problem of one run's estimate for `task`.

    Kinds: "flagged" (diverged or implausible blocks), "ceiling" (the macro term saturates the
    estimator in most blocks), "warnings" (the estimator's own warnings). A group without its own
    sidecar entry reports the problems of its subtasks.
    """
    if task in run.groups and task not in (run.sidecar or {}):
        return [
            (kind, f"{sub}: {text}")
            for sub in run.groups[task]
            for kind, text in reliability_issues(run, sub)
        ]
    issues = []
    flagged = run.value(task, "emergence_flagged_blocks,none")
    result = run.result(task)
    if flagged:
        where = []
        if result is not None and result.diverged_layers:
            where.append(f"diverged: {layers_text(result.diverged_layers)}")
        if result is not None and result.implausible_layers:
            where.append(f"implausible: {layers_text(result.implausible_layers)}")
        detail = f" ({'; '.join(where)})" if where else ""
        issues.append(("flagged", f"{int(flagged)} flagged block(s){detail}: estimates unreliable"))
    ceiling = _ceiling(result)
    if ceiling and ceiling[0] * 2 > ceiling[1]:
        near, total, bits = ceiling
        issues.append(
            (
                "ceiling",
                f"at the ceiling: macro term within {CEILING_MARGIN_BITS} bit of the estimator's "
                f"{bits:.2f}-bit ceiling in {near} of {total} blocks",
            )
        )
    warnings = [str(w) for w in (result.warnings if result is not None else [])]
    if warnings:
        more = f" (+{len(warnings) - 2} more in the sidecar)" if len(warnings) > 2 else ""
        text = f"{len(warnings)} estimator warning(s): " + " / ".join(warnings[:2]) + more
        issues.append(("warnings", text))
    return issues


def table_tags(run: Run, task: str, differs: dict[str, list[str]]) -> str:
    """Short tags for the results table: no sidecar, settings differ, flagged, ceiling."""
    kinds = {kind for kind, _ in reliability_issues(run, task)}
    tags = ["no sidecar"] if run.sidecar is None else []
    if differs.get(task):
        tags.append("settings differ")
    tags += [kind for kind in ("flagged", "ceiling") if kind in kinds]
    return ", ".join(tags)
