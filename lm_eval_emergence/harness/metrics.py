"""The emergence metrics, registered with lm-eval so that no key is ever looked up on the hub.

Keys (bits): `emergence` (IE, mean of E(l) over blocks), `emergence_macro`, `emergence_micro`
(means over blocks of the two MI terms), `emergence_sum` (sum of E(l)),
`emergence_flagged_blocks` (blocks whose estimates diverged or are impossible); with
`ie_control=random`, `emergence_random` (IE of a random-weights copy) and `emergence_vs_random`
(the model's IE minus the copy's, with the combined stderr); for the shots
task `emergence_shotNN` (E at the end of shot NN = 01..10) and `emergence_shotNN_layer_std` (its
spread over blocks), and `emergence_outcome_{correct,repeat,other}` (IE of the documents after
which the model names an unlisted entity, repeats a listed one, or does anything else; each
group on `emergence_outcome_used_docs` documents, `_docs` the group's size, NaN when a group is
below the estimator's 64); `erank`, `matrix_entropy` (the spectral baselines of the same states,
`spectral.py`) and, with the control, `erank_random`, `matrix_entropy_random` and `diff_erank`
(Diff-eRank, erank(control) - erank(model)). Each value has a `<key>_stderr` companion: lm-eval
computes no stderr for a custom aggregation (it writes "N/A"), so the plugin reports its own
propagated standard error under the key lm-eval's table reads for the ± column. The task returns
value keys before stderr keys, so the number overwrites the "N/A".

`logprob_correct` (ICL tasks) is a per-document number averaged by lm-eval's own `mean`, with
lm-eval's stderr: the natural log of the next-token probability mass on the correct entities.
"""

from __future__ import annotations

from collections.abc import Callable

import lm_eval.api.metrics  # noqa: F401  (registers the built-in aggregations first)
from lm_eval.api.registry import (
    aggregation_registry,
    higher_is_better_registry,
    metric_agg_registry,
    metric_registry,
)

from .aggregate import EMERGENCE_DEFINITIONS
from .registration import claim

__all__ = [
    "ABILITY_METRICS",
    "AGGREGATIONS",
    "EMERGENCE_METRICS",
    "HIGHER_IS_BETTER",
    "PLUGIN_METRICS",
    "passthrough",
]

#: Every metric key an emergence task can return (the definitions of `aggregate.py`, in order).
EMERGENCE_METRICS: tuple[str, ...] = tuple(m.key for m in EMERGENCE_DEFINITIONS)
#: IE is a description, not a score: "higher" only sets the table's arrow (each definition says
#: which way; erank and matrix entropy point down).
HIGHER_IS_BETTER: dict[str, bool] = {m.key: m.higher_is_better for m in EMERGENCE_DEFINITIONS}
#: The ability an ICL task reports next to its intrinsic metrics, averaged by lm-eval's `mean`:
#: `acc` (built in) and `logprob_correct`, registered here.
ABILITY_METRICS = ("acc", "logprob_correct")
#: Every metric name the plugin registers, each with an `lm_eval.metrics` entry point.
PLUGIN_METRICS: tuple[str, ...] = (*EMERGENCE_METRICS, "logprob_correct")


def passthrough(items: list) -> list:
    """Per-document metric function: the payload itself (the aggregation does the work)."""
    return items


def _aggregation(key: str) -> Callable[[list], float]:
    def aggregate(items: list) -> float:
        raise TypeError(
            f"the metric {key!r} is aggregated by the plugin's task classes, which hold the "
            "estimation settings (lm_eval_emergence.harness.task); run it through the plugin's "
            "emergence tasks, or subclass EmergenceTask"
        )

    aggregate.__name__ = f"aggregate_{key}"
    aggregate.__qualname__ = aggregate.__name__
    aggregate.__doc__ = f"Registered name of `{key}`; each emergence task aggregates it itself."
    return aggregate


#: The aggregation registered under each emergence key; `aggregate_<key>` of this module, the
#: target of the key's `lm_eval.aggregations` entry point.
AGGREGATIONS: dict[str, Callable[[list], float]] = {
    key: _aggregation(key) for key in EMERGENCE_METRICS
}
_KEY_OF_ATTRIBUTE = {f"aggregate_{key}": key for key in EMERGENCE_METRICS}


def __getattr__(name: str) -> Callable[[list], float]:
    """`aggregate_<key>`: the aggregation of `key` (what the entry points name)."""
    if name in _KEY_OF_ATTRIBUTE:
        return AGGREGATIONS[_KEY_OF_ATTRIBUTE[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _register(key: str, higher_is_better: bool, aggregation: Callable[[list], float]) -> None:
    """What lm-eval's `register_metric` records, claimed name by name (registration.py)."""
    claim(metric_registry, key, passthrough)
    claim(higher_is_better_registry, key, higher_is_better)
    claim(metric_agg_registry, key, aggregation)


# Everything the entry points name is defined above, so a lookup that imports this module through
# one of them can resolve the placeholders of the others while the loop below runs.
for _key in EMERGENCE_METRICS:
    AGGREGATIONS[_key] = claim(aggregation_registry, _key, AGGREGATIONS[_key])
    _register(_key, HIGHER_IS_BETTER[_key], AGGREGATIONS[_key])
_register("logprob_correct", True, aggregation_registry.get("mean"))
