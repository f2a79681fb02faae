"""From the per-document payloads of one task (all ranks) to one IE estimate and its metrics.

lm-eval calls one aggregation per metric key, each with the list of that key's per-document
values; every key of an emergence task carries the same payload objects, so the estimate is
computed once per task and cached here, and each key reads its number from it. Results are also
kept per task for the sidecar JSON (`sidecar.py`).
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ..emergence import EmergenceResult, emergence_from_states
from ..estimators import MIN_SAMPLES
from .features import EmergenceFeatures, merge_tables
from .settings import EmergenceConfigError

__all__ = [
    "BASE_KEYS",
    "TaskEmergence",
    "completed_tasks",
    "estimate_task",
    "metric_value",
    "with_stderr_keys",
]

#: Every emergence task reports these; `emergence_flagged_blocks` counts the blocks whose
#: estimates diverged or are impossible (0 when the number can be trusted as an estimate).
BASE_KEYS = (
    "emergence",
    "emergence_macro",
    "emergence_micro",
    "emergence_sum",
    "emergence_flagged_blocks",
)
_NO_STDERR = ("_layer_std", "_flagged_blocks")


def with_stderr_keys(values: list[str]) -> list[str]:
    """`values` followed by the `<key>_stderr` companion of each key that has one."""
    return list(values) + [f"{k}_stderr" for k in values if not k.endswith(_NO_STDERR)]


logger = logging.getLogger(__name__)


@dataclass
class TaskEmergence:
    """One task's IE estimate with the task-level context the sidecar needs."""

    task: str
    result: EmergenceResult
    n_docs: int
    shot_positions: list[int] | None  # token index of the end of each shot (shots task)
    capture: dict[str, Any]
    seconds_forward: float
    seconds_estimation: float
    extra: dict[str, Any] = field(default_factory=dict)

    def shot_curve(self) -> list[dict[str, Any]]:
        """E at the end of each shot, with its stderr and its spread (std) across layers."""
        if not self.shot_positions or not self.result.per_position:
            return []
        rows = {row["position"]: row for row in self.result.per_position}
        curve = []
        for shot, position in enumerate(self.shot_positions, start=1):
            row = rows[position]
            per_layer = [r["emergence_bits"] for r in row["per_layer"]]
            curve.append(
                {
                    "shot": shot,
                    "position": position,
                    "emergence_bits": row["emergence_bits"],
                    "stderr_bits": row["stderr_bits"],
                    "layer_std_bits": statistics.pstdev(per_layer) if len(per_layer) > 1 else 0.0,
                }
            )
        return curve

    def to_dict(self) -> dict[str, Any]:
        out = {
            "task": self.task,
            "n_docs": self.n_docs,
            "capture": self.capture,
            "seconds_forward": self.seconds_forward,
            "seconds_estimation": self.seconds_estimation,
            "metrics": {key: metric_value(self, key) for key in self.metric_keys()},
            "shot_curve": self.shot_curve() or None,
            "result": self.result.to_dict(),
        }
        out.update(self.extra)
        return out

    def metric_keys(self) -> list[str]:
        keys = list(BASE_KEYS)
        for shot in range(1, len(self.shot_positions or []) + 1):
            keys += [f"emergence_shot{shot:02d}", f"emergence_shot{shot:02d}_layer_std"]
        return with_stderr_keys(keys)


# per-task cache: (ids of the payload list) -> estimate; the first payload is kept alive with it
_CACHE: dict[tuple[int, int, int], tuple[EmergenceFeatures, TaskEmergence]] = {}
_COMPLETED: dict[str, TaskEmergence] = {}


def completed_tasks() -> dict[str, TaskEmergence]:
    """Estimates made in this process, by task name (what the sidecar writes)."""
    return dict(_COMPLETED)


def _check_same(items: list[EmergenceFeatures], what: str, get: Any) -> Any:
    values = {repr(get(f)) for f in items}
    if len(values) > 1:
        raise RuntimeError(
            f"the documents of task {items[0].task_name} differ in {what} ({sorted(values)[:3]}); "
            "one estimate needs one setting"
        )
    return get(items[0])


def estimate_task(items: list[EmergenceFeatures]) -> TaskEmergence:
    """The IE estimate of one task's payloads (cached: every metric key asks for it)."""
    if not items:
        raise EmergenceConfigError("an emergence task produced no documents")
    bad = [type(f).__name__ for f in items if not isinstance(f, EmergenceFeatures)]
    if bad:
        raise TypeError(
            f"emergence metrics received {bad[0]} values instead of EmergenceFeatures; they only "
            "work on the plugin's emergence tasks"
        )
    key = (id(items[0]), id(items[-1]), len(items))
    hit = _CACHE.get(key)
    if hit is not None:
        return hit[1]
    task = items[0].task_name
    n = len(items)
    if n < MIN_SAMPLES:
        raise EmergenceConfigError(
            f"task {task} has {n} documents, below the {MIN_SAMPLES} an MI estimate needs (it "
            f"holds out a test split); raise or drop --limit (at least {MIN_SAMPLES})"
        )
    settings = _check_same(items, "estimator settings", lambda f: f.settings)
    positions = list(_check_same(items, "captured positions", lambda f: f.positions))
    _check_same(items, "layers", lambda f: f.info.layers)
    lengths = {len(f.token_ids) for f in items}
    if len(lengths) > 1:
        raise RuntimeError(f"the documents of task {task} differ in token length: {lengths}")
    items = sorted(items, key=lambda f: f.doc_id)  # the same order whatever the rank split
    info = items[0].info
    ids = torch.tensor([f.token_ids for f in items], dtype=torch.long)
    micro_in, micro_out = merge_tables([f.micro for f in items]).lookup(ids)
    macro_in = torch.stack([f.macro_inputs for f in items], dim=1).float()
    macro_out = torch.stack([f.macro_outputs for f in items], dim=1).float()
    shot_positions = items[0].extra.get("shot_positions")
    per_position = shot_positions if shot_positions else len(positions) > 1
    logger.info(
        "estimating IE of %s: %d documents, %d blocks, estimator %s",
        task,
        n,
        len(info.layers),
        settings.estimator,
    )
    t0 = time.perf_counter()
    try:
        result = emergence_from_states(
            layers=list(info.layers),
            macro_inputs=macro_in,
            macro_outputs=macro_out,
            macro_positions=positions,
            micro_inputs=micro_in,
            micro_outputs=micro_out,
            token_ids=ids,
            estimator=settings.estimator,
            seed=settings.seed,
            estimator_options=settings.estimator_options(),
            per_position=per_position,
            bos_token_id=info.bos_token_id,
            projection_dim=settings.projection_dim,
            model_name=info.model_name,
            n_parameters=info.n_parameters,
            seconds_capture_macro=sum(f.seconds for f in items),  # this task's share
            seconds_capture_micro=0.0,  # included above (shared by the tasks of a call)
            progress=True,
        )
    except ValueError as exc:
        raise EmergenceConfigError(f"task {task}: {exc}") from None
    if result.any_diverged or result.implausible_layers:
        logger.warning(
            "IE of %s: estimates diverged in blocks %s, implausible in blocks %s; the number is "
            "unreliable (details in the sidecar JSON)",
            task,
            result.diverged_layers,
            result.implausible_layers,
        )
    done = TaskEmergence(
        task=task,
        result=result,
        n_docs=n,
        shot_positions=list(shot_positions) if shot_positions else None,
        capture={
            "layers": list(info.layers),
            "projection_dim": info.projection_dim,
            "hidden_dim": info.hidden_dim,
            "state_dim": info.state_dim,
            "state_dtype": info.state_dtype,
            "model_dtype": info.model_dtype,
            "bos_token_id": info.bos_token_id,
            "payload_bytes_per_doc": _payload_bytes(items[0]),
            "settings": settings.to_dict(),
        },
        seconds_forward=sum(f.seconds for f in items),
        seconds_estimation=time.perf_counter() - t0,
    )
    _CACHE.clear()  # one task at a time: earlier payloads can be freed
    _CACHE[key] = (items[0], done)
    _COMPLETED[task] = done
    return done


def _payload_bytes(feature: EmergenceFeatures) -> int:
    macro = feature.macro_inputs.numel() + feature.macro_outputs.numel()
    return int(macro * feature.macro_inputs.element_size() + 8 * len(feature.token_ids))


def _mean_and_se(rows: list[dict[str, Any]], value: str, se: str) -> tuple[float, float]:
    mean = sum(r[value] for r in rows) / len(rows)
    return mean, math.sqrt(sum(r[se] ** 2 for r in rows)) / len(rows)


def metric_value(done: TaskEmergence, key: str) -> float:
    """The number reported under metric `key` (see `TaskEmergence.metric_keys`)."""
    result = done.result
    stderr = key.endswith("_stderr")
    base = key[: -len("_stderr")] if stderr else key
    if base == "emergence":
        return result.ie_stderr_bits if stderr else result.ie_bits
    if base == "emergence_flagged_blocks":
        return float(len(set(result.diverged_layers) | set(result.implausible_layers)))
    if base == "emergence_sum":
        return result.ie_sum_stderr_bits if stderr else result.ie_sum_bits
    if base in ("emergence_macro", "emergence_micro"):
        level = base.split("_")[1]
        mean, se = _mean_and_se(result.per_layer, f"{level}_bits", f"{level}_stderr_bits")
        return se if stderr else mean
    if base.startswith("emergence_shot"):
        layer_std = base.endswith("_layer_std")
        shot = int(base[len("emergence_shot") :].removesuffix("_layer_std"))
        curve = done.shot_curve()
        if not 1 <= shot <= len(curve):
            raise KeyError(f"task {done.task} has {len(curve)} shots, no shot {shot}")
        row = curve[shot - 1]
        if layer_std:
            return row["layer_std_bits"]
        return row["stderr_bits"] if stderr else row["emergence_bits"]
    raise KeyError(f"unknown emergence metric {key!r}")
