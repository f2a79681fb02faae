"""The sidecar JSON: everything behind the emergence numbers of a results file.

lm-eval's results JSON holds one scalar per metric. The sidecar, written next to it as
`emergence_<date>.json` (same timestamp as `results_<date>.json`), is a `records.Sidecar`: per
task the per-block E(l) with macro and micro terms and standard errors, the per-position and shot
curves, N, the estimator's ceiling and log2 N, the plug-in entropies, divergence and
implausibility flags, the estimation and capture settings and seed, the payload size, the
timings, the model's parameter count and the versions of lm-eval, this plugin, torch and
transformers. The report reads it back with `Sidecar.from_dict`.
"""

from __future__ import annotations

import json
import time
from importlib import metadata
from pathlib import Path

from ..records import Sidecar, TaskRecord, sidecar_path_for
from .aggregate import ESTIMATES

__all__ = ["sidecar_for", "write_sidecars"]


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def sidecar_for(records: dict[str, TaskRecord], results_file: str | None = None) -> Sidecar:
    """The sidecar of these task estimates (by default: those made in this process)."""
    first = next(iter(records.values()), None)
    model = None
    if first is not None:
        model = {
            "name": first.result.model_name,
            "n_parameters": first.result.n_parameters,
            "hidden_dim": first.capture["hidden_dim"],
            "dtype": first.capture["model_dtype"],
        }
    return Sidecar(
        results_file=results_file,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        versions={
            "lm_eval": _version("lm_eval") or _version("lm-eval"),
            "lm_eval_emergence": _version("lm-eval-emergence"),
            "torch": _version("torch"),
            "transformers": _version("transformers"),
        },
        model=model,
        tasks=dict(records),
    )


def _results_files(output_path: Path, since: float) -> list[Path]:
    if output_path.suffix == ".json":
        candidates = output_path.parent.glob(f"{output_path.stem}*.json")
    else:
        candidates = output_path.glob("**/results_*.json")
    return sorted(p for p in candidates if p.stat().st_mtime >= since and "emergence" not in p.name)


def write_sidecars(output_path: str | Path, since: float) -> list[Path]:
    """Write a sidecar next to each results file written since `since` (a time.time())."""
    records = ESTIMATES.records()
    if not records:
        return []
    written = []
    for results in _results_files(Path(output_path), since):
        path = sidecar_path_for(results)
        sidecar = sidecar_for(records, results.name)
        path.write_text(json.dumps(sidecar.to_dict(), indent=2) + "\n")
        written.append(path)
    return written
