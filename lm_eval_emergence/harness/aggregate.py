"""From the per-document payloads of one task (all ranks) to one IE estimate and its metrics.

lm-eval calls one aggregation per metric key with that key's per-document values
(`task.aggregation()[key](items)`). Every key of an emergence task carries the same payloads, so
each task owns a `TaskEstimate` that computes the estimate once, with the task's estimation
settings, and hands every key its number, read off the estimate by the key's row of the metric
table (`metrics/table.py`). Finished estimates are also written to `ESTIMATES`, the one record
of this process that the sidecar JSON (`sidecar.py`) is written from: lm-eval returns no task
objects to the command line that writes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from .. import heap
from ..capture import Capture, MomentCapture
from ..estimators import MIN_SAMPLES
from ..metrics.emergence import emergence_from_moments, emergence_from_states
from ..metrics.table import OUTCOMES, STATE_STATISTICS, metric_definitions, metric_value
from ..records import EmergenceResult, OutcomeGroup, StateStatistic, TaskRecord, shot_curve
from ..settings import CaptureSettings, EmergenceConfigError, EstimationSettings
from .features import EmergenceFeatures, gather_capture, gather_moments

__all__ = ["ESTIMATES", "EstimateLog", "TaskEstimate", "gather"]

logger = logging.getLogger(__name__)


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
        heap.release()  # the estimate's freed tensors, before the next task's (heap.py)
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
        statistics = self._statistics(task, capture)
        control, control_statistics = None, {}
        seconds_forward = capture.seconds_macro
        if items[0].control is not None:
            control_capture = gather([f.control for f in items])  # type: ignore[misc]
            name = f"{task} (random-weights control)"
            control = self._result(name, control_capture, shots)
            control_statistics = self._statistics(name, control_capture)
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
            statistics=statistics,
            control_statistics=control_statistics,
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

    def _statistics(self, task: str, capture: Capture | MomentCapture) -> dict[str, StateStatistic]:
        """Every state statistic of the metric table on the same states, on the IE estimate's
        folds."""
        folds, seed = self.estimation.folds, self.estimation.seed
        try:
            return {
                name: compute(capture, folds=folds, seed=seed)
                for name, compute in STATE_STATISTICS.items()
            }
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
