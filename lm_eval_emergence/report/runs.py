"""Reading lm-eval results files and the plugin's sidecars into `Run`s: each run's model named
by its own name (`model_name`), its settings per task, and a label saying what tells it from the
other runs of its model (`label_runs`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import SIDECAR_FORMAT, EmergenceResult, Sidecar, TaskRecord, sidecar_path_for
from .text import canon, merge, num, setting_text

#: The protocol of a sidecar written before protocols were recorded.
UNRECORDED = "unrecorded"
#: The settings of one task's numbers, each a column of the report's table (`table.py`): the
#: estimator's (from the sidecar), N, the model's dtype, the control and the seeds. The task's
#: document options are not among them: lm-eval's record of a task holds every `--metadata`
#: key given to the run, read by that task or not (the task's name fixes its options unless a
#: user overrides them).
SETTINGS = (
    "protocol",
    "estimator",
    "estimator_options",
    "target",
    "form",
    "projection_dim",
    "projections",
    "layers",
    "n",
    "dtype",
    "control",
    "ie_seed",
    "data_seed",
)
#: The seeds: runs that differ only in these are replicates of one measurement.
SEEDS = ("ie_seed", "data_seed")
#: What a user passes for each setting, as run labels name it (`ie_seed=2`, `N=512`).
SETTING_NAMES = {
    "protocol": "ie_protocol",
    "estimator": "ie_estimator",
    "estimator_options": "options",
    "target": "ie_target",
    "form": "ie_form",
    "projection_dim": "ie_projection_dim",
    "projections": "ie_projections",
    "layers": "ie_layers",
    "n": "N",
    "control": "ie_control",
}


class ReportInputError(ValueError):
    """An input path is not an lm-eval results file (or a directory holding some)."""


# ------------------------------------------------------------------------------------ a run


@dataclass
class Run:
    """One lm-eval results file with its sidecar (if any)."""

    path: Path
    #: the model's own name (`model_name`), never a path of the machine that ran it
    model: str
    n_parameters: int | None
    lm_eval_version: str | None
    #: task -> {lm-eval metric key ("acc,none"): value, None for "N/A"}
    metrics: dict[str, dict[str, float | None]]
    #: task -> the sidecar's task record; None without a sidecar
    sidecar: dict[str, TaskRecord] | None
    #: task -> its settings (SETTINGS; without a sidecar only N, dtype and data_seed)
    settings: dict[str, dict[str, Any]]
    sidecar_path: Path | None = None
    groups: dict[str, list[str]] = field(default_factory=dict)
    sample_len: dict[str, int] = field(default_factory=dict)
    #: what tells this run from the others (`label_runs`): the model, then what differs
    label: str = ""
    notes: list[str] = field(default_factory=list)
    #: the training step of the checkpoint, when the model arguments or path name one
    step: int | None = None
    #: what the run loaded (`pretrained=`): a hub id or a path of the machine that ran it
    reference: str = ""

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


# ------------------------------------------------------------------------------ the model


def _model_args(data: dict[str, Any]) -> dict[str, Any]:
    """lm-eval's `config.model_args` as a dict (it records a dict or the command's string)."""
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    args = config.get("model_args")
    if isinstance(args, dict):
        return args
    if isinstance(args, str):
        pairs = (item.partition("=") for item in args.split(",") if "=" in item)
        return {k.strip(): v.strip() for k, _, v in pairs}
    return {}


def _reference(data: dict[str, Any], sidecar: dict[str, Any] | None) -> str:
    """What the run loaded: `pretrained=`, else the names lm-eval or the sidecar record."""
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    model = (sidecar or {}).get("model") or {}
    pretrained = _model_args(data).get("pretrained")
    for name in (pretrained, data.get("model_name"), model.get("name"), config.get("model")):
        if isinstance(name, str) and name:
            return name
    return "unknown model"


#: A hub id: "org/name" or "name", neither a path nor a home (`~`) nor a Windows drive.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_STEP_PATTERNS = (
    re.compile(r"(?:^|[,\s])revision=step(\d+)"),  # Pythia's checkpoints: revision=step143000
    re.compile(r"(?:checkpoint|step)[-_]?(\d+)(?:/|$)"),  # .../checkpoint-800, .../step_3000
)


def model_name(reference: str) -> str:
    """The model's own name from what a run loaded (`pretrained=`), never a path of the
    machine that ran it: a hub id as it is (`EleutherAI/pythia-160m`); a directory: the shipped
    model's name when it is one's cache (`SmolLM2-135M-Instruct`), else its last part (the part
    above it when that names a checkpoint, `.../w64/checkpoint-800` -> `w64`).

    Read from the files alone, so that a report names a run the same on every machine: the
    model's `config.json` (`_name_or_path`) is not in them, and reading it from the directory
    would name the run after whatever lies at that path where the report is made.
    """
    from ..default_model import SHIPPED_MODELS

    text = reference.strip().rstrip("/\\")
    if _HUB_ID.match(text):
        return text
    parts = [p for p in re.split(r"[/\\]", text) if p and p not in (".", "..", "~")]
    if not parts:
        return "unknown model"
    last = parts[-1]
    if re.fullmatch(r"(?:checkpoint|step)[-_]?\d+", last) and len(parts) > 1:
        last = parts[-2]
    shipped = {key.lower(): model.title for key, model in SHIPPED_MODELS.items()}
    return shipped.get(last.lower(), last)


def training_step(data: dict[str, Any], reference: str) -> int | None:
    """The training step a run's model is a checkpoint of: `revision=stepN` in the model
    arguments (Pythia's convention), else `checkpoint-N` / `stepN` ending a path component of
    what the run loaded; None when neither names one."""
    args = ",".join(f"{k}={v}" for k, v in _model_args(data).items())
    for pattern, text in ((_STEP_PATTERNS[0], args), (_STEP_PATTERNS[1], reference)):
        match = pattern.search(text)
        if match:
            return int(match.group(1))
    return None


# ------------------------------------------------------------------------------- settings


def _leaf_settings(entry: TaskRecord) -> dict[str, Any]:
    """The estimator's settings of one task, from its sidecar record."""
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
        "projections": result.projections,
        "layers": layers,
        "n": result.n,
        "control": "none" if entry.control is None else "random",
        "ie_seed": result.seed,
    }


def _task_options(data: dict[str, Any], task: str) -> dict[str, Any]:
    """The model's dtype and the task's data seed (`data_seed`, None: the task's default), from
    lm-eval's record of the run and of the task's metadata."""
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    dtype = config.get("model_dtype") or _model_args(data).get("dtype")
    entry = (data.get("configs") or {}).get(task)
    metadata = entry.get("metadata") if isinstance(entry, dict) else None
    data_seed = metadata.get("data_seed") if isinstance(metadata, dict) else None
    return {"dtype": str(dtype).removeprefix("torch.") if dtype else None, "data_seed": data_seed}


def _settings(
    data: dict[str, Any],
    metrics: dict[str, Any],
    sidecar: dict[str, TaskRecord] | None,
    groups: dict[str, list[str]],
    sample_len: dict[str, int],
) -> dict[str, dict[str, Any]]:
    """task -> its settings; a group's are its subtasks', merged (`merge`)."""
    settings: dict[str, dict[str, Any]] = {}
    for task in metrics:
        if task in groups and not (sidecar and task in sidecar):
            continue
        options = _task_options(data, task)
        if sidecar and task in sidecar:
            settings[task] = {**_leaf_settings(sidecar[task]), **options}
        elif task in sample_len:
            settings[task] = {"n": sample_len[task], **options}
    for group, subs in groups.items():
        subs = [s for s in subs if s in settings]
        if subs:
            keys = sorted(set().union(*(settings[s] for s in subs)))
            settings[group] = {k: merge({s: settings[s].get(k) for s in subs}) for k in keys}
    return settings


# -------------------------------------------------------------------------------- loading


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
    reference = _reference(data, sidecar_data)
    return Run(
        path=path,
        model=model_name(reference),
        n_parameters=n_params,
        lm_eval_version=version,
        metrics=metrics,
        sidecar=sidecar,
        settings=_settings(data, metrics, sidecar, groups, sample_len),
        sidecar_path=sidecar_path,
        groups=groups,
        sample_len=sample_len,
        notes=notes,
        step=training_step(data, reference),
        reference=reference,
    )


# --------------------------------------------------------------------------------- labels


def setting_label(key: str, value: Any) -> str:
    """One setting as a label names it: `ie_seed=2`, `N=512`, `step 1000`."""
    if key == "step":
        return f"step {value}"
    if key in ("tasks", "date"):
        return setting_text(value)
    return f"{SETTING_NAMES.get(key, key)}={setting_text(value)}"


def differing_labels(names: Sequence[str], settings: Sequence[dict[str, Any]]) -> list[str]:
    """Each item's name, followed where several share it by the settings that differ between
    those (in the order of their keys): `m`, `m ie_seed=1`, `m ie_seed=2`."""
    labels = list(names)
    for name in set(names):
        same = [i for i, n in enumerate(names) if n == name]
        keys = list(dict.fromkeys(k for i in same for k in settings[i]))
        differ = [k for k in keys if len({canon(settings[i].get(k)) for i in same}) > 1]
        for i in same:
            labels[i] = " ".join([name, *(setting_label(k, settings[i].get(k)) for k in differ)])
    return labels


def _run_settings(run: Run) -> dict[str, Any]:
    """What can tell runs of one model apart: the step, each setting over the run's emergence
    tasks ("mixed" where they differ), then its top-level tasks, then its results file's date."""
    emergence = [t for t in run.emergence_tasks() if t in run.settings] or list(run.settings)
    subtasks = {s for subs in run.groups.values() for s in subs}
    out: dict[str, Any] = {"step": run.step}
    for key in ("n", *SEEDS, *(k for k in SETTINGS if k not in ("n", *SEEDS))):
        merged = merge({t: run.settings[t].get(key) for t in emergence})
        out[key] = "mixed" if isinstance(merged, dict) and "mixed" in merged else merged
    out["tasks"] = ", ".join(sorted(t for t in run.metrics if t not in subtasks))
    out["date"] = run.path.stem.removeprefix("results_")
    return out


def label_runs(runs: Sequence[Run]) -> None:
    """Label each run by its model and, where runs share one, by the settings that differ
    between them (`ie_seed=2`, `N=512`, `step 1000`); runs still alike by their tasks, then by
    their dates, then by a number (one results file copied twice)."""
    full = [_run_settings(r) for r in runs]
    later = ("tasks", "date")
    settings = [{k: v for k, v in s.items() if k not in later} for s in full]
    labels = differing_labels([r.model for r in runs], settings)
    for key in later:
        labels = differing_labels(labels, [{key: s[key]} for s in full])
    seen: dict[str, int] = {}
    for run, label in zip(runs, labels, strict=True):
        seen[label] = seen.get(label, 0) + 1
        run.label = label if labels.count(label) == 1 else f"{label} ({seen[label]})"


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Read results files (directories are searched for `results_*.json`) with their sidecars.

    Raises ReportInputError, naming the file, for anything that is not an lm-eval results file.
    Each run is labelled by its model and what tells it from the other runs of that model.
    """
    runs = [_load_run(p) for p in _results_files(paths)]
    label_runs(runs)
    return runs
