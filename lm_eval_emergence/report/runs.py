"""Reading lm-eval results files and the plugin's sidecars into `Run`s."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..metrics.table import ABILITY_KEYS, ACCURACY_KEYS, INTRINSIC_KEYS
from ..records import SIDECAR_FORMAT, EmergenceResult, Sidecar, TaskRecord, sidecar_path_for
from .text import merge, num

#: lm-eval metric names read as accuracy (any filter), as ability, and as intrinsic: the metric
#: table's (`metrics/table.py`).
ACCURACY_METRICS = ACCURACY_KEYS
ABILITY_METRICS = ABILITY_KEYS
INTRINSIC_METRICS = INTRINSIC_KEYS
#: The protocol of a sidecar written before protocols were recorded.
UNRECORDED = "unrecorded"
#: The settings that must agree for IE numbers of one task to be put on one ranking: the seed
#: is not among them (the standard error covers the projections and folds it draws).
RANKING_SETTINGS = (
    "protocol",
    "estimator",
    "estimator_options",
    "target",
    "form",
    "projection_dim",
    "layers",
    "n",
)
#: The estimator settings listed when they differ between runs of one task.
COMPARED_SETTINGS = (*RANKING_SETTINGS, "seed")


class ReportInputError(ValueError):
    """An input path is not an lm-eval results file (or a directory holding some)."""


# ----------------------------------------------------------------------------------- loading


@dataclass
class Run:
    """One lm-eval results file with its sidecar (if any)."""

    path: Path
    model: str
    n_parameters: int | None
    lm_eval_version: str | None
    #: task -> {lm-eval metric key ("acc,none"): value, None for "N/A"}
    metrics: dict[str, dict[str, float | None]]
    #: task -> the sidecar's task record; None without a sidecar
    sidecar: dict[str, TaskRecord] | None
    #: task -> estimator settings (COMPARED_SETTINGS; only "n" without a sidecar)
    settings: dict[str, dict[str, Any]]
    sidecar_path: Path | None = None
    groups: dict[str, list[str]] = field(default_factory=dict)
    sample_len: dict[str, int] = field(default_factory=dict)
    label: str = ""
    notes: list[str] = field(default_factory=list)
    #: the training step of the checkpoint, when the model arguments or path name one
    step: int | None = None

    def value(self, task: str, key: str) -> float | None:
        """Metric `key` ("emergence,none") of `task`, or None."""
        return self.metrics.get(task, {}).get(key)

    def emergence_tasks(self) -> list[str]:
        """Tasks (and groups) with an IE number."""
        return sorted(t for t, m in self.metrics.items() if m.get("emergence,none") is not None)

    def result(self, task: str) -> EmergenceResult | None:
        """The sidecar's result of `task`, or None."""
        entry = (self.sidecar or {}).get(task)
        return entry.result if entry else None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInputError(f"{path}: cannot be read as JSON ({exc}); expected {what}") from exc


_RESULTS_WHAT = "an lm-eval results file (results_<date>.json with a 'results' object)"


def _results_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("results_*.json") if not p.name.endswith("_emergence.json")
            )
            if not found:
                raise ReportInputError(
                    f"{path}: no results_*.json file in this directory; expected an lm-eval "
                    "--output_path directory or a results file"
                )
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise ReportInputError(f"{path}: no such file or directory; expected {_RESULTS_WHAT}")
    if not files:
        raise ReportInputError(f"no input given; expected {_RESULTS_WHAT}")
    unique: dict[Path, Path] = {}
    for path in files:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _model_name(data: dict[str, Any], sidecar: dict[str, Any] | None) -> str:
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    args = config.get("model_args")
    pretrained = None
    if isinstance(args, dict):
        pretrained = args.get("pretrained")
    elif isinstance(args, str):
        match = re.search(r"(?:^|,)\s*pretrained=([^,]+)", args)
        pretrained = match.group(1) if match else None
    model = (sidecar or {}).get("model") or {}
    for name in (data.get("model_name"), pretrained, model.get("name"), config.get("model")):
        if isinstance(name, str) and name:
            return name
    return "unknown model"


_STEP_PATTERNS = (
    re.compile(r"(?:^|[,\s])revision=step(\d+)"),  # Pythia's checkpoints: revision=step143000
    re.compile(r"(?:checkpoint|step)[-_]?(\d+)(?:/|$)"),  # .../checkpoint-800, .../step_3000
)


def training_step(data: dict[str, Any], model: str) -> int | None:
    """The training step a run's model is a checkpoint of: `revision=stepN` in the model
    arguments (Pythia's convention), else `checkpoint-N` / `stepN` ending a path component of
    the model's name; None when neither names one."""
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    args = config.get("model_args")
    if isinstance(args, dict):
        args = ",".join(f"{k}={v}" for k, v in args.items())
    for pattern, text in ((_STEP_PATTERNS[0], str(args or "")), (_STEP_PATTERNS[1], model)):
        match = pattern.search(text)
        if match:
            return int(match.group(1))
    return None


def _leaf_settings(entry: TaskRecord) -> dict[str, Any]:
    result = entry.result
    requested = entry.capture.get("settings") or {}
    if "layers" in requested:
        layers = "all" if requested["layers"] is None else requested["layers"]
    else:
        layers = result.layers
    return {
        "protocol": result.protocol or UNRECORDED,
        "estimator": result.estimator,
        "estimator_options": result.estimator_options,
        "target": result.target,
        "form": result.form,
        "projection_dim": result.projection_dim,
        "seed": result.seed,
        "layers": layers,
        "n": result.n,
    }


def _load_sidecar(
    path: Path, notes: list[str]
) -> tuple[Path | None, dict[str, Any] | None, dict[str, TaskRecord] | None]:
    """The sidecar next to results file `path`: (its path, its JSON, its task records)."""
    sidecar_path = sidecar_path_for(path)
    if not sidecar_path.is_file():
        return None, None, None
    what = f"an lm-eval-emergence sidecar ('{SIDECAR_FORMAT}')"
    sidecar_data = _read_json(sidecar_path, what)
    if not isinstance(sidecar_data, dict) or sidecar_data.get("format") != SIDECAR_FORMAT:
        found = sidecar_data.get("format") if isinstance(sidecar_data, dict) else None
        raise ReportInputError(f"{sidecar_path}: format {found!r}; expected {what}")
    try:
        sidecar = Sidecar.from_dict(sidecar_data).tasks
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise ReportInputError(
            f"{sidecar_path}: not a complete lm-eval-emergence sidecar ({exc}); rewrite it "
            "with lm-eval-emergence --output_path, or move it away to report the run "
            "without its per-block data"
        ) from exc
    named = sidecar_data.get("results_file")
    if named and named != path.name:
        notes.append(f"its sidecar names another results file ({named})")
    return sidecar_path, sidecar_data, sidecar


def _load_run(path: Path) -> Run:
    data = _read_json(path, _RESULTS_WHAT)
    if isinstance(data, dict) and str(data.get("format", "")).startswith("lm-eval-emergence"):
        raise ReportInputError(
            f"{path}: this is an lm-eval-emergence sidecar; pass the results_<date>.json "
            "file next to it (or its directory)"
        )
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ReportInputError(f"{path}: no 'results' object; expected {_RESULTS_WHAT}")

    metrics: dict[str, dict[str, float | None]] = {}
    sample_len: dict[str, int] = {}
    for task, entry in data["results"].items():
        if not isinstance(entry, dict):
            continue
        metrics[task] = {k: num(v) for k, v in entry.items() if "," in k}
        if isinstance(entry.get("sample_len"), int):
            sample_len[task] = entry["sample_len"]
    groups = {
        g: list(subs)
        for g, subs in (data.get("group_subtasks") or {}).items()
        if isinstance(subs, list) and subs
    }

    notes: list[str] = []
    sidecar_path, sidecar_data, sidecar = _load_sidecar(path, notes)

    settings: dict[str, dict[str, Any]] = {}
    for task in metrics:
        if sidecar and task in sidecar:
            settings[task] = _leaf_settings(sidecar[task])
        elif task in sample_len and task not in groups:
            settings[task] = {"n": sample_len[task]}
    for group, subs in groups.items():
        subs = [s for s in subs if s in settings]
        if subs:
            keys = COMPARED_SETTINGS if all("estimator" in settings[s] for s in subs) else ("n",)
            settings[group] = {k: merge({s: settings[s].get(k) for s in subs}) for k in keys}

    model = (sidecar_data or {}).get("model") or {}
    n_params = model.get("n_parameters")
    if not isinstance(n_params, int):
        n_params = (data.get("config") or {}).get("model_num_parameters")
        if isinstance(n_params, int) and n_params > 0:
            notes.append("parameter count from lm-eval's config.model_num_parameters")
        else:
            n_params = None
    version = data.get("lm_eval_version") or ((sidecar_data or {}).get("versions") or {}).get(
        "lm_eval"
    )
    model_name = _model_name(data, sidecar_data)
    return Run(
        path=path,
        model=model_name,
        n_parameters=n_params,
        lm_eval_version=version,
        metrics=metrics,
        sidecar=sidecar,
        settings=settings,
        sidecar_path=sidecar_path,
        groups=groups,
        sample_len=sample_len,
        notes=notes,
        step=training_step(data, model_name),
    )


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Read results files (directories are searched for `results_*.json`) with their sidecars.

    Raises ReportInputError, naming the file, for anything that is not an lm-eval results file.
    Each run gets a label: the model's short name, numbered when several runs share it.
    """
    runs = [_load_run(p) for p in _results_files(paths)]
    short = [Path(r.model.rstrip("/")).name or r.model for r in runs]
    seen: dict[str, int] = {}
    for run, name in zip(runs, short, strict=True):
        seen[name] = seen.get(name, 0) + 1
        run.label = name if short.count(name) == 1 else f"{name} #{seen[name]}"
    return runs
