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
    """The most second moments any task of the README command held at once, in MB."""
    (sidecar,) = sorted(README_RUN.glob("**/emergence_*.json"))
    tasks = json_file(sidecar)["tasks"].values()
    return max(t["result"]["moments_bytes"] for t in tasks) / 2**20


def values() -> dict:
    data = json_file(BENCHMARKS / "projections_smollm2.json")
    rows = [NS(**r, moments_mb=r["moments_bytes"] / 2**20) for r in data["rows"]]
    by_r = {r.projections: r for r in rows}
    one, default = by_r[1], by_r[DEFAULT_PROJECTIONS]
    moments = _readme_moments_mb()
    if moments > MOMENTS_LIMIT_MB:
        raise ValueError(f"docs/performance.md: the README command holds {moments:.0f} MB")
    return {
        "projections": NS(
            rows=rows,
            n=data["settings"]["n"],
            default=DEFAULT_PROJECTIONS,
            one=one,
            chosen=default,
            extra_estimation=(
                default.seconds_estimation_ie + default.seconds_estimation_spectral
                - one.seconds_estimation_ie - one.seconds_estimation_spectral
            ),
            readme_moments_mb=moments,
            moments_limit_mb=MOMENTS_LIMIT_MB,
        )
    }
