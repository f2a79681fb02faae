"""The values of docs/performance.md's section on projections per block: what each number R of
independent projections costs and buys (studies/benchmarks/results/projections_smollm2.json,
`python -m studies.benchmarks.projections`), and the moments the README command holds at once
(its sidecar, studies/readme/results/main)."""

from __future__ import annotations

from types import SimpleNamespace as NS

from lm_eval_emergence.settings import DEFAULT_PROJECTIONS
from studies.render.values.common import BENCHMARKS, ROOT, json_file

README_RUN = ROOT / "studies" / "readme" / "results" / "main"
#: The moments the README command may hold at once (issue 34, item 6).
MOMENTS_LIMIT_MB = 200


def _readme_moments_mb() -> float:
    """The second moments the README command held at once, in MB, as its evidence prints it
    (`report.evidence.moments_held`: the largest task's peak while it estimates, plus the
    streamed moments the other tasks hold meanwhile)."""
    (sidecar,) = sorted(README_RUN.glob("**/emergence_*.json"))
    tasks = list(json_file(sidecar)["tasks"].values())
    streamed = [int(t["capture"].get("moments_bytes") or 0) for t in tasks]
    peaks = [t["result"]["moments_bytes"] or 0 for t in tasks]
    return max(p + sum(streamed) - s for p, s in zip(peaks, streamed, strict=True)) / 2**20


def _readme_streamed_mb() -> float:
    """The streamed moments one task of the README command holds until lm-eval aggregates."""
    (sidecar,) = sorted(README_RUN.glob("**/emergence_*.json"))
    tasks = json_file(sidecar)["tasks"].values()
    return max(int(t["capture"].get("moments_bytes") or 0) for t in tasks) / 2**20


def values() -> dict:
    data = json_file(BENCHMARKS / "projections_smollm2.json")
    rows = [NS(**r, moments_mb=r["moments_bytes"] / 2**20) for r in data["rows"]]
    by_r = {r.projections: r for r in rows}
    one, default = by_r[1], by_r[DEFAULT_PROJECTIONS]
    moments = _readme_moments_mb()
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
            streamed_task_mb=_readme_streamed_mb(),
            moments_limit_mb=MOMENTS_LIMIT_MB,
        )
    }
