"""From the per-document payloads of one task (all ranks) to one IE estimate and its metrics.

lm-eval calls one aggregation per metric key with that key's per-document values
(`task.aggregation()[key](items)`). Every key of an emergence task carries the same payloads, so
each task owns a `TaskEstimate` that computes the estimate once, with the task's estimation
settings, and hands every key its number. Finished estimates are also written to `ESTIMATES`,
the one record of this process that the sidecar JSON (`sidecar.py`) is written from: lm-eval
returns no task objects to the command line that writes it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np

from ..capture import Capture, MomentCapture
from ..emergence import emergence_from_moments, emergence_from_states
from ..estimators import MIN_SAMPLES
from ..records import EmergenceResult, OutcomeGroup, SpectralResult, TaskRecord, shot_curve
from ..settings import CaptureSettings, EmergenceConfigError, EstimationSettings
from ..spectral import DEFAULT_FOLDS, diff_erank, spectrum
from .features import OUTCOMES, EmergenceFeatures, gather_capture, gather_moments

__all__ = [
    "BASE_KEYS",
    "CONTROL_KEYS",
    "SPECTRAL_CONTROL_KEYS",
    "SPECTRAL_KEYS",
    "ESTIMATES",
    "EstimateLog",
    "OUTCOME_KEYS",
    "TaskEstimate",
    "metric_keys",
    "metric_value",
    "value_keys",
    "with_stderr_keys",
]

logger = logging.getLogger(__name__)

#: Every emergence task reports these; `emergence_flagged_blocks` counts the blocks whose
#: estimates diverged or are impossible (0 when the number can be trusted as an estimate).
BASE_KEYS = (
    "emergence",
    "emergence_macro",
    "emergence_micro",
    "emergence_sum",
    "emergence_flagged_blocks",
)
#: With ie_control=random: the control's IE, and the model's IE minus the control's.
CONTROL_KEYS = ("emergence_random", "emergence_vs_random")
#: The spectral baselines of the same states (`spectral.py`): effective rank and matrix entropy
#: (bits) of the block outputs at the last token, means over blocks.
SPECTRAL_KEYS = ("erank", "matrix_entropy")
#: With ie_control=random: the control's, and Diff-eRank = erank(control) - erank(model).
SPECTRAL_CONTROL_KEYS = ("erank_random", "matrix_entropy_random", "diff_erank")
#: The shots task's IE by outcome: per group its IE and group size, and the documents each
#: group's estimate used (the same in every group).
OUTCOME_KEYS = (
    *(f"emergence_outcome_{o}" for o in OUTCOMES),
    *(f"emergence_outcome_{o}_docs" for o in OUTCOMES),
    "emergence_outcome_used_docs",
)
_NO_STDERR = ("_layer_std", "_flagged_blocks", "_docs")


def with_stderr_keys(values: list[str]) -> list[str]:
    """`values` followed by the `<key>_stderr` companion of each key that has one."""
    return list(values) + [f"{k}_stderr" for k in values if not k.endswith(_NO_STDERR)]


def value_keys(n_shots: int = 0, control: bool = False, outcomes: bool = False) -> list[str]:
    """The value keys of a task with `n_shots` shot-curve points (no stderr companions)."""
    keys = list(BASE_KEYS) + (list(CONTROL_KEYS) if control else []) + list(SPECTRAL_KEYS)
    keys += list(SPECTRAL_CONTROL_KEYS) if control else []
    for shot in range(1, n_shots + 1):
        keys += [f"emergence_shot{shot:02d}", f"emergence_shot{shot:02d}_layer_std"]
    return keys + (list(OUTCOME_KEYS) if outcomes else [])


def metric_keys(n_shots: int = 0, control: bool = False, outcomes: bool = False) -> list[str]:
    """Every metric key of a task with `n_shots` shot-curve points, value keys first."""
    return with_stderr_keys(value_keys(n_shots, control, outcomes))


class EstimateLog:
    """The estimates finished in this process, by task name (what the sidecar writes)."""

    def __init__(self) -> None:
        self._records: dict[str, TaskRecord] = {}

    def add(self, record: TaskRecord) -> None:
        self._records[record.task] = record

    def records(self) -> dict[str, TaskRecord]:
        return dict(self._records)

    def clear(self) -> None:
        self._records.clear()


ESTIMATES = EstimateLog()


class TaskEstimate:
    """One task's IE estimate, computed once from its payloads with the task's settings."""

    def __init__(
        self,
        estimation: EstimationSettings,
        shot_positions: Callable[[int], list[int] | None] = lambda seq_len: None,
        log: EstimateLog = ESTIMATES,
        capture: CaptureSettings | None = None,
    ) -> None:
        self.estimation = estimation
        self.shot_positions = shot_positions
        self.log = log
        self.capture = capture  # what the payloads must have been captured with, if known
        self._items: list[EmergenceFeatures] | None = None
        self._record: TaskRecord | None = None

    def aggregation(self, key: str) -> Callable[[list], float]:
        """The aggregation lm-eval calls for metric `key` of this task."""

        def aggregate(items: list) -> float:
            return metric_value(self.record(items), key)

        aggregate.__name__ = f"aggregate_{key}"
        return aggregate

    def record(self, items: list[EmergenceFeatures]) -> TaskRecord:
        """The estimate of these payloads (cached: every metric key asks for it)."""
        cached = self._items  # held, so no id is reused while the estimate is cached
        if (
            cached is not None
            and len(cached) == len(items)
            and all(a is b for a, b in zip(cached, items, strict=True))
        ):
            return self._record  # type: ignore[return-value]
        self._items, self._record = None, None  # earlier payloads can be freed
        record = self._estimate(_checked(items))
        self._items, self._record = list(items), record
        self.log.add(record)
        return record

    def _estimate(self, items: list[EmergenceFeatures]) -> TaskRecord:
        task = items[0].task_name
        capture = gather(items)
        if self.capture is not None and capture.info.settings != self.capture:
            raise EmergenceConfigError(
                f"task {task}: its documents were captured with {capture.info.settings}, but "
                f"the task's settings are {self.capture} (requests cached by an earlier run?); "
                "rerun with --cache_requests refresh"
            )
        shots = self.shot_positions(capture.token_ids.shape[1])
        t0 = time.perf_counter()
        result = self._result(task, capture, shots)
        spectral = self._spectrum(task, capture)
        control = control_spectral = None
        seconds_forward = capture.seconds_macro
        if items[0].control is not None:
            control_capture = gather([f.control for f in items])  # type: ignore[misc]
            name = f"{task} (random-weights control)"
            control = self._result(name, control_capture, shots)
            control_spectral = self._spectrum(name, control_capture)
            seconds_forward += control_capture.seconds_macro
        info = capture.info
        record = TaskRecord(
            task=task,
            n_docs=len(items),
            capture={
                "layers": list(info.layers),
                "projection_dim": info.settings.projection_dim,
                "hidden_dim": info.hidden_dim,
                "state_dim": info.state_dim,
                "state_dtype": info.state_dtype,
                "model_dtype": info.model_dtype,
                "bos_token_id": info.bos_token_id,
                "payload_bytes_per_doc": items[0].payload_bytes,
                "streamed": isinstance(capture, MomentCapture),
                "moments_bytes": sum(
                    {id(f.moments): f.moments.nbytes for f in items if f.moments}.values()
                ),
                "settings": info.settings.to_dict(),
            },
            estimation=self.estimation.to_dict(),
            seconds_forward=seconds_forward,
            seconds_estimation=time.perf_counter() - t0,
            metrics={},
            shot_curve=shot_curve(result, shots) or None,
            result=result,
            control=control,
            spectrum=spectral,
            control_spectrum=control_spectral,
        )
        if items[0].outcome is not None:
            record.outcomes = self._outcomes(task, items, shots)
            record.seconds_estimation = time.perf_counter() - t0
        keys = metric_keys(
            len(shots or []), control=control is not None, outcomes=record.outcomes is not None
        )
        record.metrics = {k: metric_value(record, k) for k in keys}
        return record

    def _outcomes(
        self, task: str, items: list[EmergenceFeatures], shots: list[int] | None
    ) -> list[OutcomeGroup]:
        """IE of each outcome's documents, every group on the same number of documents (the
        smallest group that an estimate can use), drawn with the estimation seed."""
        groups = {o: sorted((f for f in items if f.outcome == o), key=lambda f: f.doc_id)
                  for o in OUTCOMES}  # fmt: skip
        unknown = {f.outcome for f in items} - set(OUTCOMES)
        if unknown:
            raise ValueError(f"task {task}: unknown outcomes {sorted(unknown)} (not {OUTCOMES})")
        usable = [len(g) for g in groups.values() if len(g) >= MIN_SAMPLES]
        n_used = min(usable) if usable else 0
        rng = np.random.default_rng(self.estimation.seed)
        out = []
        for outcome, group in groups.items():
            if len(group) < MIN_SAMPLES:
                reason = (
                    f"{len(group)} documents, below the {MIN_SAMPLES} an estimate needs; raise "
                    "n_docs for this group to be measured"
                )
                logger.warning("IE of %s, outcome %s: not estimated (%s)", task, outcome, reason)
                out.append(OutcomeGroup(outcome, len(group), 0, None, None, reason))
                continue
            pick = sorted(rng.permutation(len(group))[:n_used].tolist())
            capture = gather_capture([group[i] for i in pick])
            result = self._result(f"{task} ({outcome})", capture, shots)
            out.append(
                OutcomeGroup(outcome, len(group), n_used, result.ie_bits, result.ie_stderr_bits)
            )
        return out

    def _spectrum(self, task: str, capture: Capture | MomentCapture) -> SpectralResult:
        """erank and matrix entropy of the same states, on the IE estimate's folds."""
        folds = int(self.estimation.resolved_options().get("folds", DEFAULT_FOLDS))
        try:
            return spectrum(capture, folds=folds, seed=self.estimation.seed)
        except ValueError as exc:
            raise EmergenceConfigError(f"task {task}: {exc}") from None

    def _result(
        self, task: str, capture: Capture | MomentCapture, shots: list[int] | None
    ) -> EmergenceResult:
        logger.info(
            "estimating IE of %s: %d documents, %d blocks, estimator %s",
            task,
            capture.token_ids.shape[0],
            len(capture.layers),
            self.estimation.estimator,
        )
        per_position = shots if shots else len(capture.positions) > 1
        try:
            if isinstance(capture, MomentCapture):
                result = emergence_from_moments(capture, self.estimation, per_position=per_position)
            else:
                result = emergence_from_states(
                    capture, self.estimation, per_position=per_position, progress=True
                )
        except ValueError as exc:
            raise EmergenceConfigError(f"task {task}: {exc}") from None
        if result.flagged_layers:
            logger.warning(
                "IE of %s: estimates diverged in blocks %s, implausible in blocks %s; the number "
                "is unreliable (details in the sidecar JSON)",
                task,
                result.diverged_layers,
                result.implausible_layers,
            )
        return result


def gather(items: list[EmergenceFeatures]) -> Capture | MomentCapture:
    """The states of a task's payloads, or their moments when they were streamed."""
    return gather_moments(items) if items[0].moments is not None else gather_capture(items)


def _checked(items: list) -> list[EmergenceFeatures]:
    if not items:
        raise EmergenceConfigError("an emergence task produced no documents")
    bad = [type(f).__name__ for f in items if not isinstance(f, EmergenceFeatures)]
    if bad:
        raise TypeError(
            f"emergence metrics received {bad[0]} values instead of EmergenceFeatures; they only "
            "work on the plugin's emergence tasks"
        )
    if len(items) < MIN_SAMPLES:
        raise EmergenceConfigError(
            f"task {items[0].task_name} has {len(items)} documents, below the {MIN_SAMPLES} an "
            f"MI estimate needs (it holds out a test split); raise or drop --limit (at least "
            f"{MIN_SAMPLES})"
        )
    return items


def metric_value(record: TaskRecord, key: str) -> float:
    """The number reported under metric `key` (see `metric_keys`)."""
    result = record.result
    stderr = key.endswith("_stderr")
    base = key[: -len("_stderr")] if stderr else key
    if base == "emergence":
        return result.ie_stderr_bits if stderr else result.ie_bits
    if base in CONTROL_KEYS:
        control = record.control
        if control is None:
            raise KeyError(f"task {record.task} has no random-weights control (ie_control)")
        if base == "emergence_random":
            return control.ie_stderr_bits if stderr else control.ie_bits
        if stderr:
            return math.sqrt(result.ie_stderr_bits**2 + control.ie_stderr_bits**2)
        return result.ie_bits - control.ie_bits
    if base in SPECTRAL_KEYS or base in SPECTRAL_CONTROL_KEYS:
        return _spectral_value(record, base, stderr)
    if base == "emergence_flagged_blocks":
        return float(len(result.flagged_layers))
    if base == "emergence_sum":
        return result.ie_sum_stderr_bits if stderr else result.ie_sum_bits
    if base in ("emergence_macro", "emergence_micro"):
        level = base.split("_")[1]
        rows = result.per_layer
        mean = sum(getattr(r, f"{level}_bits") for r in rows) / len(rows)
        se = math.sqrt(sum(getattr(r, f"{level}_stderr_bits") ** 2 for r in rows)) / len(rows)
        return se if stderr else mean
    if base.startswith("emergence_outcome_"):
        return _outcome_value(record, base, stderr)
    if base.startswith("emergence_shot"):
        layer_std = base.endswith("_layer_std")
        shot = int(base[len("emergence_shot") :].removesuffix("_layer_std"))
        curve = record.shot_curve or []
        if not 1 <= shot <= len(curve):
            raise KeyError(f"task {record.task} has {len(curve)} shots, no shot {shot}")
        point = curve[shot - 1]
        if layer_std:
            return point.layer_std_bits
        return point.stderr_bits if stderr else point.emergence_bits
    raise KeyError(f"unknown emergence metric {key!r}")


def _spectral_value(record: TaskRecord, base: str, stderr: bool) -> float:
    """A spectral key's number (`spectral.py`): erank, matrix entropy, their control's, or
    Diff-eRank with its paired stderr."""
    model, control = record.spectrum, record.control_spectrum
    if model is None:
        raise KeyError(f"task {record.task} has no spectral baselines")
    spec = model
    if base not in SPECTRAL_KEYS:
        if control is None:
            raise KeyError(f"task {record.task} has no random-weights control (ie_control)")
        if base == "diff_erank":
            value, se = diff_erank(model, control)
            return se if stderr else value
        spec = control
    if base.startswith("erank"):
        return spec.erank_stderr if stderr else spec.erank
    return spec.matrix_entropy_stderr_bits if stderr else spec.matrix_entropy_bits


def _outcome_value(record: TaskRecord, base: str, stderr: bool) -> float:
    """An outcome key's number; NaN for a group too small to estimate (its `_docs` key and the
    sidecar say why; a warning was logged)."""
    if record.outcomes is None:
        raise KeyError(f"task {record.task} reports no IE by outcome (only the shots task does)")
    groups = {g.outcome: g for g in record.outcomes}
    if base == "emergence_outcome_used_docs":
        return float(max(g.n_used for g in record.outcomes))
    name = base[len("emergence_outcome_") :]
    if name.endswith("_docs"):
        return float(groups[name.removesuffix("_docs")].n_docs)
    group = groups[name]
    value = group.ie_stderr_bits if stderr else group.ie_bits
    return math.nan if value is None else value
