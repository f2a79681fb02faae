"""The sidecar JSON: everything behind the emergence numbers of a results file.

lm-eval's results JSON holds one scalar per metric. The sidecar, written next to it as
`emergence_<date>.json` (same timestamp as `results_<date>.json`), holds per task: the per-block
E(l) with macro and micro terms and standard errors, the per-position and shot curves, N, the
estimator's ceiling and log2 N, the plug-in entropies, divergence and implausibility flags, the
resolved estimator settings and seed, the capture settings and payload size, the timings, the
model's parameter count and the versions of lm-eval, this plugin, torch and transformers.
"""

from __future__ import annotations

import json
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from .aggregate import completed_tasks

__all__ = ["SIDECAR_FORMAT", "sidecar_dict", "sidecar_path_for", "write_sidecars"]

SIDECAR_FORMAT = "lm-eval-emergence sidecar 1"


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def sidecar_dict(results_file: str | None = None) -> dict[str, Any]:
    """The sidecar content for the emergence estimates made in this process."""
    tasks = completed_tasks()
    first = next(iter(tasks.values()), None)
    model = None
    if first is not None:
        result = first.result
        model = {
            "name": result.model_name,
            "n_parameters": result.n_parameters,
            "hidden_dim": first.capture["hidden_dim"],
            "dtype": first.capture["model_dtype"],
        }
    return {
        "format": SIDECAR_FORMAT,
        "results_file": results_file,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {
            "lm_eval": _version("lm_eval") or _version("lm-eval"),
            "lm_eval_emergence": _version("lm-eval-emergence"),
            "torch": _version("torch"),
            "transformers": _version("transformers"),
        },
        "model": model,
        "tasks": {name: done.to_dict() for name, done in sorted(tasks.items())},
    }


def sidecar_path_for(results_file: Path) -> Path:
    """`results_<date>.json` -> `emergence_<date>.json`; otherwise `<stem>_emergence.json`."""
    name = results_file.name
    if name.startswith("results_"):
        return results_file.with_name("emergence_" + name[len("results_") :])
    return results_file.with_name(f"{results_file.stem}_emergence.json")


def _results_files(output_path: Path, since: float) -> list[Path]:
    if output_path.suffix == ".json":
        candidates = output_path.parent.glob(f"{output_path.stem}*.json")
    else:
        candidates = output_path.glob("**/results_*.json")
    return sorted(p for p in candidates if p.stat().st_mtime >= since and "emergence" not in p.name)


def write_sidecars(output_path: str | Path, since: float) -> list[Path]:
    """Write a sidecar next to each results file written since `since` (a time.time())."""
    if not completed_tasks():
        return []
    written = []
    for results in _results_files(Path(output_path), since):
        path = sidecar_path_for(results)
        path.write_text(json.dumps(sidecar_dict(results.name), indent=2) + "\n")
        written.append(path)
    return written
