"""Every number an emergence task reports, defined once: the one table of metrics.

A row says what its key measures, how it and its standard error are read off a task's record,
which way lm-eval's arrow points (None: no arrow), whether it needs the random-weights control
(`ie_control=random`), how a group row aggregates it, and which module computes it. Everything
else follows from this table: the keys a task returns and registers (`harness/metrics.py`), the
entry points in pyproject.toml and the group YAMLs' metric lists (written by
`scripts/generate_metrics.py`, held equal by a test), the report's intrinsic and ability lists,
the studies' directions and the docs' metric table.

A new metric is one module under `metrics/` and one row here (docs/architecture.md): a state
statistic (a number per block from the captured states, like erank) names its function in
`compute`, and the task computes it for the model and, with the control, for the control.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..records import EmergenceResult, OutcomeGroup, ShotPoint, StateStatistic, TaskRecord
from ..uncertainty import Spread, standard_error
from .dispersion import dispersion
from .spectral import erank, matrix_entropy, paired_difference

__all__ = [
    "ABILITY_KEYS",
    "ACCURACY_KEYS",
    "INTRINSIC_KEYS",
    "MAX_SHOTS",
    "METRICS",
    "MetricDef",
    "OUTCOMES",
    "STATE_STATISTICS",
    "definition",
    "direction",
    "group_metrics",
    "metric_definitions",
    "metric_keys",
    "metric_value",
    "registered",
    "value_keys",
    "with_stderr_keys",
]

#: The shot curve reports E at the end of each of at most this many shots (registered keys).
MAX_SHOTS = 10
#: What a model does after a list: names an unlisted entity of the category (the ICL `acc`),
#: repeats a listed one (the hallucination-like error), or anything else.
OUTCOMES = ("correct", "repeat", "other")


@dataclass(frozen=True)
class MetricDef:
    """One number an emergence task (or lm-eval, for `kind` "ability") reports.

    `value` and `stderr` read it and its standard error off a task's record (no `value`: a
    per-document number lm-eval averages itself; no `stderr`: no `<key>_stderr` companion); a
    reader raises KeyError naming the task and what its record lacks. `group`: how a group row
    aggregates it over subtasks ("mean", unweighted, or "weighted" by size; None: not at all).
    `compute`: a state statistic's function (capture -> `StateStatistic`). `authors_sign`:
    +1 where the metric's authors read a higher value as more ability, -1 lower, 0 no reading:
    the sign the studies test it with (docs/validity.md), which the arrow (`higher_is_better`)
    need not share.
    """

    key: str
    meaning: str
    value: Callable[[TaskRecord], float] | None = None
    stderr: Callable[[TaskRecord], float] | None = None
    higher_is_better: bool | None = True
    control: bool = False
    kind: str = "intrinsic"  # "intrinsic", "ability", "count" or "spread"
    computed_in: str = "metrics/emergence.py"
    group: str | None = None
    compute: Callable[..., StateStatistic] | None = None
    authors_sign: int = 0

    def stderr_companion(self) -> MetricDef | None:
        """The `<key>_stderr` metric, which lm-eval's table prints as the ± of the value (a
        standard error: no direction is better)."""
        if self.stderr is None:
            return None
        return MetricDef(
            f"{self.key}_stderr",
            f"the standard error of {self.key}",
            self.stderr,
            higher_is_better=None,
            control=self.control,
            kind="spread",
            computed_in=self.computed_in,
        )


# ------------------------------------------------------------------------------ the readers


def _lacks(record: TaskRecord, what: str) -> KeyError:
    return KeyError(f"task {record.task} {what}")


def _control_of(record: TaskRecord) -> EmergenceResult:
    if record.control is None:
        raise _lacks(record, "has no random-weights control (ie_control)")
    return record.control


def _ie_spread(result: EmergenceResult) -> Spread:
    if result.ie_spread is None:
        raise KeyError(f"an IE result of {result.model_name} records no spread")
    return Spread.from_dict(result.ie_spread)


def _vs_random(record: TaskRecord) -> Spread:
    """The model's IE minus its control's, paired: the same documents, folds and projections."""
    return _ie_spread(record.result).minus(_ie_spread(_control_of(record)))


def _statistic(record: TaskRecord, name: str) -> StateStatistic:
    if name not in record.statistics:
        raise _lacks(record, f"has no {name} (no state statistics)")
    return record.statistics[name]


def _control_statistic(record: TaskRecord, name: str) -> StateStatistic:
    _statistic(record, name)  # a record without the statistic says that first
    if name not in record.control_statistics:
        raise _lacks(record, "has no random-weights control (ie_control)")
    return record.control_statistics[name]


def _shot_point(record: TaskRecord, shot: int) -> ShotPoint:
    curve = record.shot_curve or []
    if not 1 <= shot <= len(curve):
        raise _lacks(record, f"has {len(curve)} shots, no shot {shot}")
    return curve[shot - 1]


def _outcome_group(record: TaskRecord, outcome: str) -> OutcomeGroup:
    if record.outcomes is None:
        raise _lacks(record, "reports no IE by outcome (only the shots task does)")
    for group in record.outcomes:
        if group.outcome == outcome:
            return group
    raise _lacks(record, f"has no outcome group {outcome!r}")


def _used_docs(record: TaskRecord) -> float:
    _outcome_group(record, OUTCOMES[0])  # a record without outcome groups says so
    return float(max(g.n_used for g in record.outcomes or []))


def _nan_if_unestimated(bits: float | None) -> float:
    """NaN for a group too small to estimate (its `_docs` key and the sidecar say why; a
    warning was logged)."""
    return float("nan") if bits is None else bits


# ------------------------------------------------------------------------------- the rows


def _state_statistic_rows(
    name: str,
    meaning: str,
    compute: Callable[..., StateStatistic],
    module: str,
    authors_sign: int,
) -> tuple[MetricDef, MetricDef]:
    """A state statistic of the model's states, and the same of its control's."""
    return (
        MetricDef(
            name,
            meaning,
            lambda r: _statistic(r, name).value,
            lambda r: _statistic(r, name).stderr,
            higher_is_better=None,  # the studies show no direction that holds across series
            computed_in=module,
            group="mean",
            compute=compute,
            authors_sign=authors_sign,
        ),
        MetricDef(
            f"{name}_random",
            f"{name} of the random-weights control",
            lambda r: _control_statistic(r, name).value,
            lambda r: _control_statistic(r, name).stderr,
            higher_is_better=None,
            control=True,
            computed_in=module,
            group="mean",
        ),
    )


_ERANK = _state_statistic_rows(
    "erank",
    "effective rank of each block's output covariance at the last token, mean over blocks",
    erank,
    "metrics/spectral.py",
    -1,  # its paper reads a trained model's lower rank as compression
)
_MATRIX_ENTROPY = _state_statistic_rows(
    "matrix_entropy",
    "matrix entropy (bits) of each block's raw outputs at the last token, mean over blocks",
    matrix_entropy,
    "metrics/spectral.py",
    -1,  # as its paper reads it
)
_DISPERSION = _state_statistic_rows(
    "dispersion",
    "representation dispersion: mean pairwise cosine distance of each block's outputs at the "
    "last token (Li et al. 2025), mean over blocks",
    dispersion,
    "metrics/dispersion.py",
    +1,  # its paper: perplexity falls as dispersion grows
)

#: Every row an emergence task can report, value rows only (their stderr companions follow
#: from them), in the order a task returns them; shot and outcome rows are made per task.
_BASE: tuple[MetricDef, ...] = (
    MetricDef(
        "emergence",
        "Information Emergence: the mean over blocks of E(l), the macro MI minus the mean micro "
        "MI (bits)",
        lambda r: r.result.ie_bits,
        lambda r: r.result.ie_stderr_bits,
        group="mean",
        authors_sign=+1,  # the IE paper reads more emergence with more ability
    ),
    MetricDef(
        "emergence_macro",
        "the macro term: MI of each block's input and output at the last token in context, "
        "mean over blocks (bits)",
        lambda r: r.result.macro_bits,
        lambda r: r.result.macro_stderr_bits,
        higher_is_better=None,  # a part of IE, not a reading of ability
        group="mean",
    ),
    MetricDef(
        "emergence_micro",
        "the micro term: MI of each block's input and output with each token alone, mean over "
        "positions and blocks (bits)",
        lambda r: r.result.micro_bits,
        lambda r: r.result.micro_stderr_bits,
        higher_is_better=None,
        group="mean",
    ),
    MetricDef(
        "emergence_sum",
        "the sum of E(l) over blocks (bits)",
        lambda r: r.result.ie_sum_bits,
        lambda r: r.result.ie_sum_stderr_bits,
        group="mean",
    ),
    MetricDef(
        "emergence_flagged_blocks",
        "blocks whose estimates diverged or are impossible (0 when IE can be read as an estimate)",
        lambda r: float(len(r.result.flagged_layers)),
        higher_is_better=None,
        kind="count",
    ),
)
_CONTROL: tuple[MetricDef, ...] = (
    MetricDef(
        "emergence_random",
        "IE of the random-weights control (the same documents, folds and projections)",
        lambda r: _control_of(r).ie_bits,
        lambda r: _control_of(r).ie_stderr_bits,
        higher_is_better=None,  # the control's number, not the model's
        control=True,
        group="mean",
    ),
    MetricDef(
        "emergence_vs_random",
        "the model's IE minus its control's, with the paired standard error",
        lambda r: _vs_random(r).value,
        lambda r: standard_error(_vs_random(r)).total,
        control=True,
        group="mean",
    ),
)
_STATISTICS: tuple[MetricDef, ...] = (_ERANK[0], _MATRIX_ENTROPY[0], _DISPERSION[0])
_STATISTICS_CONTROL: tuple[MetricDef, ...] = (
    _ERANK[1],
    _MATRIX_ENTROPY[1],
    _DISPERSION[1],
    MetricDef(
        "diff_erank",
        "Diff-eRank (Wei et al. 2024): the control's erank minus the model's, paired; positive "
        "when training compressed the states' rank (its authors' reading), negative when the "
        "trained model's rank is the higher",
        lambda r: paired_difference(_statistic(r, "erank"), _control_statistic(r, "erank"))[0],
        lambda r: paired_difference(_statistic(r, "erank"), _control_statistic(r, "erank"))[1],
        higher_is_better=None,
        control=True,
        computed_in="metrics/spectral.py",
        group="mean",
        authors_sign=+1,  # positive when training compresses the rank
    ),
)
#: The ability numbers lm-eval averages per document (acc and acc_norm are its own).
_ABILITY: tuple[MetricDef, ...] = (
    MetricDef("acc", "accuracy (ICL: the greedy next token names an unlisted entity)",
              kind="ability", computed_in="lm-eval", group="weighted"),
    MetricDef("acc_norm", "length-normalised accuracy (multiple choice)", kind="ability",
              computed_in="lm-eval"),
    MetricDef("logprob_correct", "ln of the next-token probability mass on the correct "
              "entities (ICL)", kind="ability", computed_in="harness/task.py", group="weighted"),
)  # fmt: skip


def _shot_rows(shot: int) -> tuple[MetricDef, MetricDef]:
    """E at the end of shot `shot` (1-based), and its spread over blocks."""
    key = f"emergence_shot{shot:02d}"
    return (
        MetricDef(
            key,
            f"E at the end of shot {shot}, mean over blocks (bits)",
            lambda r: _shot_point(r, shot).emergence_bits,
            lambda r: _shot_point(r, shot).stderr_bits,
        ),
        MetricDef(
            f"{key}_layer_std",
            f"the spread (std) over blocks of E at the end of shot {shot} (bits)",
            lambda r: _shot_point(r, shot).layer_std_bits,
            higher_is_better=None,
            kind="spread",
        ),
    )


def _outcome_rows() -> tuple[MetricDef, ...]:
    """The shots task's IE by outcome: per group its IE and size, and the documents each
    group's estimate used (the same in every group)."""
    ie = tuple(
        MetricDef(
            f"emergence_outcome_{o}",
            f"IE of the documents after which the model's next token is '{o}' (bits)",
            lambda r, o=o: _nan_if_unestimated(_outcome_group(r, o).ie_bits),
            lambda r, o=o: _nan_if_unestimated(_outcome_group(r, o).ie_stderr_bits),
        )
        for o in OUTCOMES
    )
    docs = tuple(
        MetricDef(
            f"emergence_outcome_{o}_docs",
            f"documents whose outcome is '{o}'",
            lambda r, o=o: float(_outcome_group(r, o).n_docs),
            higher_is_better=None,
            kind="count",
        )
        for o in OUTCOMES
    )
    used = MetricDef(
        "emergence_outcome_used_docs",
        "documents each outcome group's estimate used (the same in every group)",
        _used_docs,
        higher_is_better=None,
        kind="count",
    )
    return (*ie, *docs, used)


def _value_rows(n_shots: int, control: bool, outcomes: bool) -> list[MetricDef]:
    rows = [*_BASE, *(_CONTROL if control else ()), *_STATISTICS]
    rows += _STATISTICS_CONTROL if control else ()
    rows += [row for shot in range(1, n_shots + 1) for row in _shot_rows(shot)]
    rows += _outcome_rows() if outcomes else ()
    return rows


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
    return _with_companions(_value_rows(n_shots, control, outcomes))


#: Every row an emergence task can report, then the ability rows: the whole table.
METRICS: tuple[MetricDef, ...] = (
    *metric_definitions(MAX_SHOTS, control=True, outcomes=True),
    *_ABILITY,
)
_BY_KEY = {d.key: d for d in METRICS}
#: The state statistics a task computes for the model (and for the control), by key.
STATE_STATISTICS: dict[str, Callable[..., StateStatistic]] = {
    row.key: row.compute for row in _STATISTICS if row.compute is not None
}
#: The intrinsic metrics a report correlates with ability (value rows, not spreads or counts).
INTRINSIC_KEYS: tuple[str, ...] = (
    "emergence",
    "emergence_vs_random",
    "diff_erank",
    *(row.key for row in _STATISTICS),
)
#: The ability metrics (lm-eval's own accuracies and the plugin's continuous one).
ABILITY_KEYS: tuple[str, ...] = tuple(row.key for row in _ABILITY)
#: The discontinuous ability metrics (accuracies), read as such by the report.
ACCURACY_KEYS: tuple[str, ...] = ("acc", "acc_norm")


def definition(key: str) -> MetricDef:
    """The row of `key`; an unknown key is a KeyError naming it."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown emergence metric {key!r}") from None


def direction(key: str) -> int:
    """The sign the studies read `key` as ability with (its authors': `authors_sign`)."""
    return definition(key).authors_sign


def registered() -> list[MetricDef]:
    """The rows the plugin registers with lm-eval (its own keys: not lm-eval's accuracies)."""
    return [row for row in METRICS if row.computed_in != "lm-eval"]


def group_metrics() -> list[MetricDef]:
    """The rows a group row aggregates over its subtasks."""
    return [row for row in METRICS if row.group is not None]


def _keys(rows: Iterable[MetricDef]) -> list[str]:
    return [row.key for row in rows]


def with_stderr_keys(values: list[str]) -> list[str]:
    """`values` followed by the `<key>_stderr` companion of each key that has one."""
    return _keys(_with_companions([definition(k) for k in values]))


def value_keys(n_shots: int = 0, control: bool = False, outcomes: bool = False) -> list[str]:
    """The value keys of a task with `n_shots` shot-curve points (no stderr companions)."""
    return _keys(_value_rows(n_shots, control, outcomes))


def metric_keys(n_shots: int = 0, control: bool = False, outcomes: bool = False) -> list[str]:
    """Every metric key of a task with `n_shots` shot-curve points, value keys first."""
    return _keys(metric_definitions(n_shots, control, outcomes))


def metric_value(record: TaskRecord, key: str) -> float:
    """The number reported under metric `key`."""
    row = definition(key)
    if row.value is None:
        raise KeyError(f"{key} is averaged per document by lm-eval, not read off a record")
    return row.value(record)
