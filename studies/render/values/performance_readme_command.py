"""The values of docs/performance.md's section on the README command's wall time and peak,
before and after the honest ± and the one streamed path: whole-process figures of paired runs
(studies/benchmarks/results/readme_command_paired.txt; each row min, median, max)."""

from __future__ import annotations

from types import SimpleNamespace as NS

from studies.render.values.common import BENCHMARKS

#: The wall time the README command may take against its time before the honest ± (issue 34).
WALL_LIMIT = 1.15


def _rows() -> dict[str, NS]:
    """Each figure's row by its name ("A wall s", "A/B wall" ...): min, median, max."""
    rows = {}
    for line in (BENCHMARKS / "readme_command_paired.txt").read_text().splitlines():
        if line.startswith("#") or "median" in line:
            continue
        *name, low, median, high = line.split()
        rows[" ".join(name)] = NS(min=float(low), median=float(median), max=float(high))
    return rows


def values() -> dict:
    rows = _rows()
    ratio = rows["A/B wall"]
    return {
        "readme_command": NS(
            after_wall=rows["A wall s"],
            before_wall=rows["B wall s"],
            after_peak_gb=rows["A peak MiB"].median * 2**20 / 1e9,
            before_peak_gb=rows["B peak MiB"].median * 2**20 / 1e9,
            wall_ratio=ratio,
            cpu_ratio=rows["A/B cpu"],
            limit=WALL_LIMIT,
            within=ratio.median <= WALL_LIMIT,
        )
    }
