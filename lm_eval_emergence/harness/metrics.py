"""The emergence metrics, registered with lm-eval so that no key is ever looked up on the hub.

Every key and its meaning, direction and stderr companion come from the metric table
(`metrics/table.py`). lm-eval computes no stderr for a custom aggregation (it writes "N/A"), so
each value key has a `<key>_stderr` companion under which the plugin reports its own standard
error, the key lm-eval's table reads for the ± column; a task returns value keys before stderr
keys, so the number overwrites the "N/A". `logprob_correct` (ICL tasks) is a per-document number
averaged by lm-eval's own `mean`, with lm-eval's stderr.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import lm_eval.api.metrics  # noqa: F401  (registers the built-in aggregations first)
from lm_eval.api.registry import (
    aggregation_registry,
    higher_is_better_registry,
    metric_agg_registry,
    metric_registry,
)

from ..metrics.table import METRICS, registered
from .registration import claim

__all__ = ["AGGREGATIONS", "EMERGENCE_METRICS", "PER_DOCUMENT_METRICS", "passthrough"]

_REGISTERED = registered()
#: Every metric key the plugin aggregates itself (an `lm_eval.aggregations` entry point each).
EMERGENCE_METRICS: tuple[str, ...] = tuple(m.key for m in _REGISTERED if m.value is not None)
#: The plugin's per-document keys, averaged by lm-eval's `mean`.
PER_DOCUMENT_METRICS: tuple[str, ...] = tuple(m.key for m in _REGISTERED if m.value is None)
_HIGHER_IS_BETTER = {m.key: m.higher_is_better for m in _REGISTERED}


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


def _register(
    key: str, higher_is_better: bool | None, aggregation: Callable[[list], float]
) -> None:
    """What lm-eval's `register_metric` records, claimed name by name (registration.py)."""
    claim(metric_registry, key, passthrough)
    claim(higher_is_better_registry, key, higher_is_better)
    claim(metric_agg_registry, key, aggregation)


# Everything the entry points name is defined above, so a lookup that imports this module through
# one of them can resolve the placeholders of the others while the loop below runs.
for _key in EMERGENCE_METRICS:
    AGGREGATIONS[_key] = claim(aggregation_registry, _key, AGGREGATIONS[_key])
    _register(_key, _HIGHER_IS_BETTER[_key], AGGREGATIONS[_key])
for _key in PER_DOCUMENT_METRICS:
    _register(_key, _HIGHER_IS_BETTER[_key], aggregation_registry.get("mean"))


class _AbsentControlFilter(logging.Filter):
    """Drops lm-eval's warning that a group found no values of a control key: the group YAML
    lists the control's keys so that a run with `ie_control=random` gets them in its group row,
    and a run without the control has none to find (nothing is wrong)."""

    _CONTROL_KEYS = frozenset(m.key for m in METRICS if m.control)
    _NO_VALUES = re.compile(r"Group '.*': no values found for metric '(?P<key>[^']+)'")

    def filter(self, record: logging.LogRecord) -> bool:
        match = self._NO_VALUES.match(record.getMessage())
        return not (match and match.group("key") in self._CONTROL_KEYS)


_GROUP_LOGGER = logging.getLogger("lm_eval.api.group")
if not any(isinstance(f, _AbsentControlFilter) for f in _GROUP_LOGGER.filters):
    _GROUP_LOGGER.addFilter(_AbsentControlFilter())
