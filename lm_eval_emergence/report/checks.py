"""Reliability checks of one run's estimate: flagged blocks, the ceiling, estimator warnings."""

from __future__ import annotations

from ..records import EmergenceResult
from .runs import Run
from .text import layers_text, num

#: A block's macro term this close to the estimator's ceiling is saturated.
CEILING_MARGIN_BITS = 0.5


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
