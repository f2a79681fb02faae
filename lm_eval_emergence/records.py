"""The typed records of IE results, shared by whoever writes them and whoever reads them back.

`emergence` builds an `EmergenceResult`; the lm-eval adapter wraps it per task in a `TaskRecord`
and writes a `Sidecar` JSON next to lm-eval's results file; the report reads that JSON back into
the same classes (`Sidecar.from_dict`). Non-finite numbers are written as null, never as a
silent number. No torch or lm-eval import here.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .uncertainty import Spread, standard_error

__all__ = [
    "SIDECAR_FORMAT",
    "EmergenceResult",
    "LayerEmergence",
    "LayerStatistic",
    "OutcomeGroup",
    "PositionEmergence",
    "PositionLayer",
    "ShotPoint",
    "Sidecar",
    "StateStatistic",
    "TaskRecord",
    "json_ready",
    "shot_curve",
    "sidecar_path_for",
]

SIDECAR_FORMAT = "lm-eval-emergence sidecar 1"

T = TypeVar("T")


def _build(cls: type[T], data: dict[str, Any], **nested: Any) -> T:
    """`cls` from a dict, ignoring keys it does not know (records written by other versions)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {k: v for k, v in data.items() if k in names}
    values.update(nested)
    return cls(**values)


@dataclass
class LayerEmergence:
    """E(l) of one block with its two terms, their standard errors and its flags.

    `micro_exact_zero_positions`: positions whose token is the same in every sequence (e.g. a
    list separator): one side is constant, so the MI is exactly 0 and is not estimated. The null
    terms (shuffled pairs) are None unless the estimator option null=True.
    """

    layer: int
    macro_bits: float
    micro_bits: float  # mean over positions
    emergence_bits: float
    stderr_bits: float
    macro_stderr_bits: float
    micro_stderr_bits: float  # of the mean
    micro_bits_per_position: list[float]
    micro_stderr_bits_per_position: list[float]
    micro_exact_zero_positions: list[int]
    macro_null_bits: float | None
    micro_null_bits: float | None
    diverged: bool
    implausible: bool = False
    #: E(l) under each of the block's projections (their mean is `emergence_bits`)
    emergence_bits_per_projection: list[float] = field(default_factory=list)
    #: the parts of `stderr_bits` (`uncertainty.StandardError`): documents, projections
    stderr_documents_bits: float | None = None
    stderr_projections_bits: float | None = None


@dataclass
class PositionLayer:
    """E(l, t) of one block at one position: macro at t minus the micro mean over k <= t."""

    layer: int
    macro_bits: float
    macro_stderr_bits: float
    micro_bits: float
    emergence_bits: float
    stderr_bits: float
    diverged: bool


@dataclass
class PositionEmergence:
    """E at one token position, the mean over blocks, with each block's row."""

    position: int
    emergence_bits: float
    stderr_bits: float
    per_layer: list[PositionLayer]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PositionEmergence:
        rows = [_build(PositionLayer, r) for r in data.get("per_layer") or []]
        return _build(cls, data, per_layer=rows)


@dataclass
class EmergenceResult:
    """IE of one model on one set of sequences, with everything needed to judge the number."""

    ie_bits: float
    ie_sum_bits: float
    ie_stderr_bits: float
    ie_sum_stderr_bits: float
    per_layer: list[LayerEmergence]
    per_position: list[PositionEmergence] | None
    n: int
    seq_len: int
    ceiling_bits: float | None
    log2_n: float
    sequence_entropy_bits: float
    token_entropy_bits: list[float]
    n_distinct_sequences: int
    bos_token_id: int | None
    micro_input: str
    estimator: str
    estimator_options: dict[str, Any]
    seed: int
    layers: list[int]
    projection_dim: int | None
    hidden_dim: int  # width of the states estimated from (the projection's, when projected)
    any_diverged: bool
    diverged_layers: list[int]
    implausible_layers: list[int]
    warnings: list[str]
    n_estimates: int
    n_exact_zero: int
    seconds_capture: float
    seconds_capture_macro: float
    seconds_capture_micro: float
    seconds_estimation: float
    model_name: str
    n_parameters: int
    package_version: str = ""
    target: str = "output"  # what was read of each block: its output y or its update y - x
    form: str = "ie"  # the micro term: tokens alone in and out ("ie") or "psi" (`protocols.py`)
    protocol: str = ""  # the named protocol of the settings (`protocols.py`), or "custom"
    projections: int = 1  # independent projections per block, averaged
    #: the means over blocks of the two terms, with their standard errors
    macro_bits: float | None = None
    macro_stderr_bits: float | None = None
    micro_bits: float | None = None
    micro_stderr_bits: float | None = None
    #: the parts of `ie_stderr_bits` (`uncertainty.StandardError`): the documents' (a jackknife
    #: over folds, or the estimators' own errors in quadrature: `stderr_method`), the
    #: projections' (None: not measured), and the total's effective degrees of freedom
    ie_stderr_documents_bits: float | None = None
    ie_stderr_projections_bits: float | None = None
    ie_stderr_dof: float | None = None
    stderr_method: str = ""
    #: what `ie_stderr_bits` is computed from (`uncertainty.Spread.to_dict`): a paired
    #: difference against another result on the same documents (the control) is built from it
    ie_spread: dict[str, Any] | None = None
    #: IE's change from N/2 to N (`uncertainty.NCheck` as a dict), or None and why not
    n_check: dict[str, Any] | None = None
    n_check_reason: str | None = None
    #: second moments held at once while estimating, streamed ones included (None: samples)
    moments_bytes: int | None = None

    @property
    def flagged_layers(self) -> list[int]:
        """Blocks whose estimates diverged or are impossible."""
        return sorted(set(self.diverged_layers) | set(self.implausible_layers))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: plain Python types, NaN and inf written as None."""
        return json_ready(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmergenceResult:
        """Read back `to_dict()` output (None stays None: a failed estimate stays failed)."""
        per_layer = [_build(LayerEmergence, r) for r in data.get("per_layer") or []]
        positions = data.get("per_position")
        per_position = (
            None if positions is None else [PositionEmergence.from_dict(p) for p in positions]
        )
        return _build(cls, data, per_layer=per_layer, per_position=per_position)


@dataclass
class LayerStatistic:
    """One block's value of a state statistic (the mean over its projections) and its stderr."""

    layer: int
    value: float
    stderr: float


@dataclass
class StateStatistic:
    """One intrinsic metric read from a model's captured states block by block, beside IE (the
    cheaper baselines: erank, matrix entropy, representation dispersion; `metrics/`): the mean
    over blocks of each block's mean over its projections, its standard error over documents
    and projections, and the `Spread` (`uncertainty.py`, as a dict) it is computed from, from
    which a paired difference against the control (Diff-eRank) is built."""

    name: str  # the metric's key (`metrics.table`)
    value: float
    stderr: float
    per_layer: list[LayerStatistic]
    spread: dict[str, Any]
    n: int
    n_folds: int
    seed: int
    state_dim: int  # width of the states (the projection's k when projected)
    projection_dim: int | None
    projections: int = 1
    states: str = "block output at the last token"
    options: dict[str, Any] = field(default_factory=dict)  # e.g. the matrix entropy's alpha
    seconds: float = 0.0

    @property
    def layers(self) -> list[int]:
        return [row.layer for row in self.per_layer]

    def to_dict(self) -> dict[str, Any]:
        return json_ready(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StateStatistic:
        rows = [_build(LayerStatistic, r) for r in data.get("per_layer") or []]
        return _build(cls, data, per_layer=rows)


def _statistics(data: dict[str, Any] | None, old: dict[str, Any] | None) -> dict[str, Any]:
    """A record's state statistics by name: the `statistics` of this version, or the
    `spectrum` of sidecars written before it (erank and matrix entropy, read back as two)."""
    if data:
        return {name: StateStatistic.from_dict(entry) for name, entry in data.items()}
    if not old:
        return {}
    common = {k: old.get(k) for k in ("n", "n_folds", "seed", "state_dim", "projection_dim")}
    out = {}
    for name, value, stderr in (
        ("erank", "erank", "erank_stderr"),
        ("matrix_entropy", "matrix_entropy_bits", "matrix_entropy_stderr_bits"),
    ):
        rows = [
            LayerStatistic(r["layer"], r.get(value), r.get(stderr))
            for r in old.get("per_layer") or []
        ]
        left_out = old.get(f"{name}_folds") or None  # the oldest sidecars kept these
        spread = old.get(f"{name}_spread") or Spread(old.get(value), left_out, None).to_dict()
        out[name] = StateStatistic(
            name, old.get(value), old.get(stderr), rows, spread, **common,
            projections=int(old.get("projections") or 1),
        )  # fmt: skip
    return out


@dataclass
class ShotPoint:
    """E at the end of one shot, its stderr and its spread (std) over blocks."""

    shot: int
    position: int
    emergence_bits: float
    stderr_bits: float
    layer_std_bits: float


@dataclass
class OutcomeGroup:
    """IE of the documents after which the model did one thing next (claim 3 of the paper).

    `n_docs` documents had this outcome; the estimate uses `n_used` of them, the same number in
    every group (IE depends on N). `ie_bits` is None when the group is below the estimator's
    minimum; `reason` then says so.
    """

    outcome: str
    n_docs: int
    n_used: int
    ie_bits: float | None
    ie_stderr_bits: float | None
    reason: str | None = None


def shot_curve(result: EmergenceResult, shot_positions: list[int] | None) -> list[ShotPoint]:
    """E at the end of each shot (token indices `shot_positions`), from the per-position rows."""
    if not shot_positions or not result.per_position:
        return []
    rows = {row.position: row for row in result.per_position}
    curve = []
    for shot, position in enumerate(shot_positions, start=1):
        row = rows[position]
        per_layer = [r.emergence_bits for r in row.per_layer]
        curve.append(
            ShotPoint(
                shot=shot,
                position=position,
                emergence_bits=row.emergence_bits,
                stderr_bits=row.stderr_bits,
                layer_std_bits=statistics.pstdev(per_layer) if len(per_layer) > 1 else 0.0,
            )
        )
    return curve


@dataclass
class TaskRecord:
    """One lm-eval task's IE estimate: the result, its metrics, and how it was made."""

    task: str
    n_docs: int
    capture: dict[str, Any]  # capture settings, dims, dtypes, BOS, payload bytes per document
    estimation: dict[str, Any]  # the task's estimation settings
    seconds_forward: float
    seconds_estimation: float
    metrics: dict[str, float]
    shot_curve: list[ShotPoint] | None
    result: EmergenceResult
    control: EmergenceResult | None = None  # the random-weights copy (ie_control=random)
    outcomes: list[OutcomeGroup] | None = None  # IE by what the model did next (shots task)
    #: the state statistics of the same states (erank, matrix entropy, dispersion), by name
    statistics: dict[str, StateStatistic] = field(default_factory=dict)
    control_statistics: dict[str, StateStatistic] = field(default_factory=dict)  # the control's

    def evidence(self) -> dict[str, Any]:
        """What a reader needs beside IE to trust it, carried in every result (the results
        JSON's task metadata, the sidecar, the printed table): the documents and blocks it was
        read on, its standard error with its parts and degrees of freedom, its change from N/2
        to N (flagged beyond the allowance plus two standard errors), and with the control the
        separation from it in standard errors."""
        r = self.result
        out: dict[str, Any] = {
            "n_docs": self.n_docs,
            "n_blocks": len(r.layers),
            "projections": r.projections,
            "ie_bits": r.ie_bits,
            "ie_stderr_bits": r.ie_stderr_bits,
            "stderr_documents_bits": r.ie_stderr_documents_bits,
            "stderr_projections_bits": r.ie_stderr_projections_bits,
            "stderr_dof": r.ie_stderr_dof,
            "stderr_method": r.stderr_method,
            "n_check": r.n_check,
            "n_check_reason": r.n_check_reason,
            "moments_bytes": r.moments_bytes,
        }
        if self.control is not None and r.ie_spread and self.control.ie_spread:
            difference = Spread.from_dict(r.ie_spread).minus(
                Spread.from_dict(self.control.ie_spread)
            )
            se = standard_error(difference).total
            out["vs_random_bits"] = difference.value
            out["vs_random_stderr_bits"] = se
            out["separation_se"] = difference.value / se if se > 0 else None
        return json_ready(out)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "task": self.task,
            "n_docs": self.n_docs,
            "capture": self.capture,
            "estimation": self.estimation,
            "seconds_forward": self.seconds_forward,
            "seconds_estimation": self.seconds_estimation,
            "metrics": self.metrics,
            "shot_curve": None if not self.shot_curve else [asdict(p) for p in self.shot_curve],
            "result": self.result.to_dict(),
            "control": None if self.control is None else self.control.to_dict(),
            "outcomes": None if self.outcomes is None else [asdict(g) for g in self.outcomes],
            "statistics": {k: v.to_dict() for k, v in self.statistics.items()},
            "control_statistics": {k: v.to_dict() for k, v in self.control_statistics.items()},
        }
        return json_ready(out)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskRecord:
        curve = data.get("shot_curve")
        return cls(
            task=str(data.get("task", "")),
            n_docs=int(data.get("n_docs") or 0),
            capture=dict(data.get("capture") or {}),
            estimation=dict(data.get("estimation") or {}),
            seconds_forward=float(data.get("seconds_forward") or 0.0),
            seconds_estimation=float(data.get("seconds_estimation") or 0.0),
            metrics=dict(data.get("metrics") or {}),
            shot_curve=None if not curve else [_build(ShotPoint, p) for p in curve],
            result=EmergenceResult.from_dict(data.get("result") or {}),
            control=None if not data.get("control") else EmergenceResult.from_dict(data["control"]),
            outcomes=None
            if data.get("outcomes") is None
            else [_build(OutcomeGroup, g) for g in data["outcomes"]],
            statistics=_statistics(data.get("statistics"), data.get("spectrum")),
            control_statistics=_statistics(
                data.get("control_statistics"), data.get("control_spectrum")
            ),
        )


@dataclass
class Sidecar:
    """The sidecar JSON written next to an lm-eval results file."""

    results_file: str | None
    created: str
    versions: dict[str, str | None]
    model: dict[str, Any] | None
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    format: str = SIDECAR_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "results_file": self.results_file,
            "created": self.created,
            "versions": self.versions,
            "model": self.model,
            "tasks": {name: record.to_dict() for name, record in sorted(self.tasks.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sidecar:
        if data.get("format") != SIDECAR_FORMAT:
            raise ValueError(f"format {data.get('format')!r}; expected {SIDECAR_FORMAT!r}")
        tasks = {
            name: TaskRecord.from_dict(entry)
            for name, entry in (data.get("tasks") or {}).items()
            if isinstance(entry, dict)
        }
        return cls(
            results_file=data.get("results_file"),
            created=str(data.get("created", "")),
            versions=dict(data.get("versions") or {}),
            model=data.get("model"),
            tasks=tasks,
        )


def sidecar_path_for(results_file: Path) -> Path:
    """`results_<date>.json` -> `emergence_<date>.json`; otherwise `<stem>_emergence.json`."""
    name = results_file.name
    if name.startswith("results_"):
        return results_file.with_name("emergence_" + name[len("results_") :])
    return results_file.with_name(f"{results_file.stem}_emergence.json")


def json_ready(value: Any) -> Any:
    """Recursively convert to JSON types; non-finite floats become None."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # tensors, arrays
        return json_ready(value.tolist())
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return json_ready(value.item())
    return str(value)
