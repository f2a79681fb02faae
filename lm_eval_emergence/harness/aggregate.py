"""From the per-document payloads of one task (all ranks) to one IE estimate and its metrics.

lm-eval calls one aggregation per metric key with that key's per-document values
(`task.aggregation()[key](items)`). Every key of an emergence task carries the same payloads, so
each task owns a `TaskEstimate` that computes the estimate once, with the task's estimation
settings, and hands every key its number, read off the estimate by the key's `MetricDef` (one
table, `metric_definitions`, defines every key, its stderr companion and its arrow). Finished
estimates are also written to `ESTIMATES`, the one record of this process that the sidecar JSON
(`sidecar.py`) is written from: lm-eval returns no task objects to the command line that writes
it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..capture import Capture, MomentCapture
from ..emergence import emergence_from_moments, emergence_from_states
from ..estimators import MIN_SAMPLES
from ..records import (
    EmergenceResult,
    OutcomeGroup,
    ShotPoint,
    SpectralResult,
    TaskRecord,
    shot_curve,
)
from ..settings import CaptureSettings, EmergenceConfigError, EstimationSettings
from ..spectral import diff_erank, spectrum
from ..uncertainty import Spread, standard_error
from .documents import MAX_SHOTS
from .features import OUTCOMES, EmergenceFeatures, gather_capture, gather_moments

__all__ = [
    "BASE_KEYS",
    "CONTROL_KEYS",
    "SPECTRAL_CONTROL_KEYS",
    "SPECTRAL_KEYS",
    "EMERGENCE_DEFINITIONS",
    "ESTIMATES",
    "EstimateLog",
    "MetricDef",
    "OUTCOME_KEYS",
    "TaskEstimate",
    "metric_definitions",
    "metric_keys",
    "metric_value",
    "value_keys",
    "with_stderr_keys",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricDef:
    """One number an emergence task reports: its key, how it and its standard error are read off
    the task's record (no stderr reader: the key has no `<key>_stderr` companion), and the
    direction of lm-eval's table arrow. A reader raises KeyError naming the task and what its
    record lacks (no control, no such shot, no outcome groups)."""

    key: str
    value: Callable[[TaskRecord], float]
    stderr: Callable[[TaskRecord], float] | None = None
    higher_is_better: bool = True

    def stderr_companion(self) -> MetricDef | None:
        """The `<key>_stderr` metric, which lm-eval's table prints as the ± of the value (a
        standard error, so no direction is better)."""
        if self.stderr is None:
            return None
        return MetricDef(f"{self.key}_stderr", self.stderr, higher_is_better=False)


def _lacks(record: TaskRecord, what: str) -> KeyError:
    return KeyError(f"task {record.task} {what}")


def _control_of(record: TaskRecord) -> EmergenceResult:
    if record.control is None:
        raise _lacks(record, "has no random-weights control (ie_control)")
    return record.control


def _vs_random(record: TaskRecord) -> Spread:
    """The model's IE minus its control's, paired: the same documents, folds and projections."""
    control = _control_of(record)
    return _ie_spread(record.result).minus(_ie_spread(control))


def _ie_spread(result: EmergenceResult) -> Spread:
    if result.ie_spread is None:
        raise KeyError(f"an IE result of {result.model_name} records no spread")
    return Spread.from_dict(result.ie_spread)


def _model_spectrum(record: TaskRecord) -> SpectralResult:
    if record.spectrum is None:
        raise _lacks(record, "has no spectral baselines")
    return record.spectrum


def _control_spectrum(record: TaskRecord) -> SpectralResult:
    _model_spectrum(record)  # a record without spectral baselines says that first
    if record.control_spectrum is None:
        raise _lacks(record, "has no random-weights control (ie_control)")
    return record.control_spectrum


def _shot_point(record: TaskRecord, shot: int) -> ShotPoint:
    curve = record.shot_curve or []
    if not 1 <= shot <= len(curve):
        raise _lacks(record, f"has {len(curve)} shots, no shot {shot}")
    return curve[shot - 1]


def _outcome_groups(record: TaskRecord) -> list[OutcomeGroup]:
    if record.outcomes is None:
        raise _lacks(record, "reports no IE by outcome (only the shots task does)")
    return record.outcomes


def _outcome_group(record: TaskRecord, outcome: str) -> OutcomeGroup:
    for group in _outcome_groups(record):
        if group.outcome == outcome:
            return group
    raise _lacks(record, f"has no outcome group {outcome!r}")


def _nan_if_unestimated(bits: float | None) -> float:
    """NaN for a group too small to estimate (its `_docs` key and the sidecar say why; a
    warning was logged)."""
    return math.nan if bits is None else bits


#: Every emergence task reports these; `emergence_flagged_blocks` counts the blocks whose
#: estimates diverged or are impossible (0 when the number can be trusted as an estimate).
_BASE = (
    MetricDef("emergence", lambda r: r.result.ie_bits, lambda r: r.result.ie_stderr_bits),
    MetricDef(
        "emergence_macro", lambda r: r.result.macro_bits, lambda r: r.result.macro_stderr_bits
    ),
    MetricDef(
        "emergence_micro", lambda r: r.result.micro_bits, lambda r: r.result.micro_stderr_bits
    ),
    MetricDef(
        "emergence_sum", lambda r: r.result.ie_sum_bits, lambda r: r.result.ie_sum_stderr_bits
    ),
    MetricDef(
        "emergence_flagged_blocks",
        lambda r: float(len(r.result.flagged_layers)),
        higher_is_better=False,
    ),
)
#: With ie_control=random: the control's IE, and the model's IE minus the control's.
_CONTROL = (
    MetricDef(
        "emergence_random",
        lambda r: _control_of(r).ie_bits,
        lambda r: _control_of(r).ie_stderr_bits,
    ),
    MetricDef(
        "emergence_vs_random",
        lambda r: _vs_random(r).value,
        lambda r: standard_error(_vs_random(r)).total,
    ),
)
#: The spectral baselines of the same states (`spectral.py`): effective rank and matrix entropy
#: (bits) of the block outputs at the last token, means over blocks. Their arrows point down:
#: their papers read a lower value (a trained model's) as the better one.
_SPECTRAL = (
    MetricDef(
        "erank",
        lambda r: _model_spectrum(r).erank,
        lambda r: _model_spectrum(r).erank_stderr,
        higher_is_better=False,
    ),
    MetricDef(
        "matrix_entropy",
        lambda r: _model_spectrum(r).matrix_entropy_bits,
        lambda r: _model_spectrum(r).matrix_entropy_stderr_bits,
        higher_is_better=False,
    ),
)
#: With ie_control=random: the control's, and Diff-eRank = erank(control) - erank(model) with
#: its paired stderr.
_SPECTRAL_CONTROL = (
    MetricDef(
        "erank_random",
        lambda r: _control_spectrum(r).erank,
        lambda r: _control_spectrum(r).erank_stderr,
        higher_is_better=False,
    ),
    MetricDef(
        "matrix_entropy_random",
        lambda r: _control_spectrum(r).matrix_entropy_bits,
        lambda r: _control_spectrum(r).matrix_entropy_stderr_bits,
        higher_is_better=False,
    ),
    MetricDef(
        "diff_erank",
        lambda r: diff_erank(_model_spectrum(r), _control_spectrum(r))[0],
        lambda r: diff_erank(_model_spectrum(r), _control_spectrum(r))[1],
    ),
)


def _shot_metrics(shot: int) -> tuple[MetricDef, MetricDef]:
    """E at the end of shot `shot` (1-based), and its spread over blocks."""
    key = f"emergence_shot{shot:02d}"
    return (
        MetricDef(
            key,
            lambda r: _shot_point(r, shot).emergence_bits,
            lambda r: _shot_point(r, shot).stderr_bits,
        ),
        MetricDef(
            f"{key}_layer_std",
            lambda r: _shot_point(r, shot).layer_std_bits,
            higher_is_better=False,
        ),
    )


def _outcome_ie(outcome: str) -> MetricDef:
    return MetricDef(
        f"emergence_outcome_{outcome}",
        lambda r: _nan_if_unestimated(_outcome_group(r, outcome).ie_bits),
        lambda r: _nan_if_unestimated(_outcome_group(r, outcome).ie_stderr_bits),
    )


def _outcome_docs(outcome: str) -> MetricDef:
    return MetricDef(
        f"emergence_outcome_{outcome}_docs",
        lambda r: float(_outcome_group(r, outcome).n_docs),
        higher_is_better=False,
    )


#: The shots task's IE by outcome: per group its IE and group size, and the documents each
#: group's estimate used (the same in every group).
_OUTCOME = (
    *(_outcome_ie(o) for o in OUTCOMES),
    *(_outcome_docs(o) for o in OUTCOMES),
    MetricDef(
        "emergence_outcome_used_docs",
        lambda r: float(max(g.n_used for g in _outcome_groups(r))),
        higher_is_better=False,
    ),
)


def _keys(definitions: Iterable[MetricDef]) -> tuple[str, ...]:
    return tuple(d.key for d in definitions)


BASE_KEYS = _keys(_BASE)
CONTROL_KEYS = _keys(_CONTROL)
SPECTRAL_KEYS = _keys(_SPECTRAL)
SPECTRAL_CONTROL_KEYS = _keys(_SPECTRAL_CONTROL)
OUTCOME_KEYS = _keys(_OUTCOME)


def _value_metrics(n_shots: int, control: bool, outcomes: bool) -> list[MetricDef]:
    metrics = [*_BASE, *(_CONTROL if control else ()), *_SPECTRAL]
    metrics += _SPECTRAL_CONTROL if control else ()
    metrics += [m for shot in range(1, n_shots + 1) for m in _shot_metrics(shot)]
    metrics += _OUTCOME if outcomes else ()
    return metrics


def _with_companions(values: list[MetricDef]) -> list[MetricDef]:
    """`values` followed by the stderr companion of each that has one, in the same order (value
    keys first: lm-eval writes "N/A" for a custom stderr, which the plugin's own then replaces)."""
    companions = (v.stderr_companion() for v in values)
    return values + [c for c in companions if c is not None]


def metric_definitions(
    n_shots: int = 0, control: bool = False, outcomes: bool = False
) -> list[MetricDef]:
    """The metrics of a task with `n_shots` shot-curve points, with or without a random-weights
    control and IE by outcome: value metrics first, then their stderr companions."""
    return _with_companions(_value_metrics(n_shots, control, outcomes))


#: Every metric an emergence task can report, in `metric_definitions` order (what is registered).
EMERGENCE_DEFINITIONS: tuple[MetricDef, ...] = tuple(
    metric_definitions(MAX_SHOTS, control=True, outcomes=True)
)
_BY_KEY = {d.key: d for d in EMERGENCE_DEFINITIONS}


def _definition(key: str) -> MetricDef:
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown emergence metric {key!r}") from None


def with_stderr_keys(values: list[str]) -> list[str]:
    """`values` followed by the `<key>_stderr` companion of each key that has one."""
    return list(_keys(_with_companions([_definition(k) for k in values])))


def value_keys(n_shots: int = 0, control: bool = False, outcomes: bool = False) -> list[str]:
    """The value keys of a task with `n_shots` shot-curve points (no stderr companions)."""
    return list(_keys(_value_metrics(n_shots, control, outcomes)))


def metric_keys(n_shots: int = 0, control: bool = False, outcomes: bool = False) -> list[str]:
    """Every metric key of a task with `n_shots` shot-curve points, value keys first."""
    return list(_keys(metric_definitions(n_shots, control, outcomes)))


def metric_value(record: TaskRecord, key: str) -> float:
    """The number reported under metric `key` (see `metric_definitions`)."""
    return _definition(key).value(record)


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
        metadata: dict | None = None,
    ) -> None:
        self.estimation = estimation
        self.shot_positions = shot_positions
        self.log = log
        self.capture = capture  # what the payloads must have been captured with, if known
        #: the task config's metadata, where each estimate's evidence is written (lm-eval dumps
        #: the config into the results JSON after the aggregations)
        self.metadata = metadata
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
        if self.metadata is not None:
            self.metadata["emergence_evidence"] = record.evidence()
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
                "projections": info.projections,
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
        reported = metric_definitions(
            len(shots or []), control=control is not None, outcomes=record.outcomes is not None
        )
        record.metrics = {m.key: m.value(record) for m in reported}
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
        try:
            return spectrum(capture, folds=self.estimation.folds, seed=self.estimation.seed)
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
