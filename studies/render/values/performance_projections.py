"""The values of docs/performance.md's section on projections per block: what each number R of
independent projections costs and buys (studies/benchmarks/results/projections_smollm2.json,
`python -m studies.benchmarks.projections`), and the moments the README command holds at once
(its sidecar, studies/readme/results/main)."""

from __future__ import annotations

from types import SimpleNamespace as NS

from lm_eval_emergence.records import Sidecar, TaskRecord
from lm_eval_emergence.report.evidence import moments_held
from lm_eval_emergence.settings import DEFAULT_PROJECTIONS
from studies.render.values.common import BENCHMARKS, ROOT, json_file

README_RUN = ROOT / "studies" / "readme" / "results" / "main"
#: The moments the README command may hold at once (issue 34, item 6).
MOMENTS_LIMIT_MB = 200


def _readme_tasks() -> dict[str, TaskRecord]:
    """The README command's task records, from its sidecar."""
    (sidecar,) = sorted(README_RUN.glob("**/emergence_*.json"))
    return Sidecar.from_dict(json_file(sidecar)).tasks


def values() -> dict:
    data = json_file(BENCHMARKS / "projections_smollm2.json")
    rows = [NS(**r, moments_mb=r["moments_bytes"] / 2**20) for r in data["rows"]]
    by_r = {r.projections: r for r in rows}
    one, default = by_r[1], by_r[DEFAULT_PROJECTIONS]
    tasks = _readme_tasks()
    moments = moments_held(tasks) / 2**20  # the line the command's evidence prints
    return {
        "projections": NS(
            rows=rows,
            n=data["settings"]["n"],
            default=DEFAULT_PROJECTIONS,
            one=one,
            chosen=default,
            extra_estimation=(
                default.seconds_estimation_ie
                + default.seconds_estimation_spectral
                - one.seconds_estimation_ie
                - one.seconds_estimation_spectral
            ),
            readme_moments_mb=moments,
            within_limit=moments <= MOMENTS_LIMIT_MB,
            streamed_task_mb=max(int(r.capture.get("moments_bytes") or 0) for r in tasks.values())
            / 2**20,
            moments_limit_mb=MOMENTS_LIMIT_MB,
        )
    }
