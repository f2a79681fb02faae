"""The evidence behind each task's IE, as the table the command prints after lm-eval's.

One row per task: IE with its standard error (documents and projections) and the degrees of
freedom of that error, the documents and blocks it was read on, the projections per block, the
change from N/2 to N against what it may move (flagged beyond it), and, with the random-weights
control, the separation from it in standard errors. The numbers are `TaskRecord.evidence()`,
the same the results JSON (task metadata) and the sidecar carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..records import TaskRecord
from .text import NA, table

__all__ = ["evidence_lines"]

HEADER = (
    "task",
    "IE (bits)",
    "±",
    "dof",
    "N",
    "blocks",
    "projections",
    "N/2 → N",
    "vs random",
)


def _float(value: Any, digits: int) -> str:
    return NA if value is None else f"{value:.{digits}f}"


def _check(evidence: dict[str, Any]) -> str:
    check = evidence.get("n_check")
    if not check:
        return f"not computed ({evidence.get('n_check_reason') or 'no folds'})"
    verdict = "MOVES: beyond" if check["flagged"] else "within"
    bound = check["allowance"] + 2 * check["change_stderr"]
    return f"{check['change']:+.3f} ± {check['change_stderr']:.3f} ({verdict} ±{bound:.3f})"


def _control(evidence: dict[str, Any]) -> str:
    if "vs_random_bits" not in evidence:
        return NA
    separation = evidence.get("separation_se")
    se_text = "" if separation is None else f", {separation:.1f} se"
    return f"{evidence['vs_random_bits']:+.3f} ± {evidence['vs_random_stderr_bits']:.3f}{se_text}"


def evidence_lines(records: Mapping[str, TaskRecord]) -> list[str]:
    """The table of every task's evidence, with one line of how to read it."""
    rows = []
    for name, record in sorted(records.items()):
        evidence = record.evidence()
        dof = evidence.get("stderr_dof")
        rows.append(
            [
                name,
                _float(evidence["ie_bits"], 3),
                _float(evidence["ie_stderr_bits"], 3),
                NA if dof is None else ("inf" if dof == float("inf") else f"{dof:.0f}"),
                str(evidence["n_docs"]),
                str(evidence["n_blocks"]),
                str(evidence["projections"]),
                _check(evidence),
                _control(evidence),
            ]
        )
    note = (
        "Each ± is the standard error over documents and projections (dof: its degrees of "
        "freedom); N/2 → N is IE's change from the mean over the two halves of the documents' "
        "folds to all of them, allowed max(0.05 bit, 2%) plus two of its standard errors "
        "(docs/method-notes.md)."
    )
    lines = ["emergence evidence", *table(HEADER, rows), note]
    held = moments_held(records)
    if held is not None:
        lines.append(f"Second moments held at once: at most {held / 2**20:.0f} MB.")
    return lines


def moments_held(records: Mapping[str, TaskRecord]) -> int | None:
    """Bytes of second moments held at once over a run's tasks (estimated one at a time): the
    largest task's peak while it estimates, plus the streamed moments the other tasks hold."""
    peaks = {name: r.result.moments_bytes for name, r in records.items()}
    if all(v is None for v in peaks.values()):
        return None
    streamed = {name: int(r.capture.get("moments_bytes") or 0) for name, r in records.items()}
    total = sum(streamed.values())
    return max((v or 0) + total - streamed[name] for name, v in peaks.items())
