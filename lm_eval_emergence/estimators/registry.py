"""The estimator registry: every MI estimator is one function registered under its name.

As in lm-eval (`@register_model`, `@register_metric`), an estimator adds itself with a decorator,
so a new estimator is one new module in this package (the package imports each of its modules):

    @register_estimator("my-bound", options={"steps": 100}, rows=held_out_rows)
    def my_bound(x, y, rows, options, seed) -> Outcome: ...

The shared pipeline (`api.py`) adds noise, the shuffled null, the split, the copula and the
reduction around it, and turns the `Outcome` into `MIEstimate` records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "COMMON_OPTIONS",
    "Estimator",
    "Outcome",
    "Rows",
    "UNSPLIT_OPTIONS",
    "all_rows",
    "estimator_names",
    "get_estimator",
    "held_out_rows",
    "register_estimator",
    "require_choice",
    "require_positive",
    "split_rows",
]

#: Options of the shared pipeline, with their defaults, which every held-out estimator takes.
COMMON_OPTIONS: dict[str, Any] = {
    "noise_std": 0.0,
    "noise_rel": 0.0,
    "null": False,
    "reduce": "cca",
    "reduce_dim": 16,
    "test_fraction": 0.5,
    "val_fraction": 0.1,
    "ridge": 0.1,
}


#: The pipeline's options for an estimator that holds nothing out (`all_rows`): no split
#: fractions, and no reduction unless asked for.
UNSPLIT_OPTIONS: dict[str, Any] = {
    "noise_std": 0.0,
    "noise_rel": 0.0,
    "null": False,
    "reduce": "none",
    "reduce_dim": 16,
    "ridge": 0.1,
}


@dataclass(frozen=True)
class Rows:
    """Which sample rows fit the reduction, train and validate the estimator, and score it."""

    fit: torch.Tensor
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    n_train: int  # every row used to fit anything
    n_test: int  # the rows the value is read on


@dataclass
class Outcome:
    """What an estimator returns for a [P, n, d] stack of pairs: one entry per pair."""

    nats: torch.Tensor
    stderr_nats: torch.Tensor
    diverged: torch.Tensor
    steps: torch.Tensor
    ceiling_bits: float | None  # what bounds the estimator (None: no ceiling)
    #: [1 + G, P]: each pair's plug-in value on all rows, then with each jackknife fold left out
    #: (estimators with folds only; `stderr_nats` is the jackknife of the left-out rows): a
    #: statistic of many pairs (IE) takes its own jackknife from these (`uncertainty.py`)
    fold_nats: torch.Tensor | None = None


RowsRule = Callable[[int, dict[str, Any], int], Rows]
EstimateFn = Callable[[torch.Tensor, torch.Tensor, Rows, dict[str, Any], int], Outcome]
CheckFn = Callable[[dict[str, Any]], None]
#: A closed form that reads only second moments: (moments, options) -> Outcome (`moments.py`).
MomentsFn = Callable[[Any, dict[str, Any]], Outcome]


@dataclass(frozen=True)
class Estimator:
    """A registered estimator: its function, its options with defaults and its split rule."""

    name: str
    estimate: EstimateFn
    options: Mapping[str, Any]
    rows: RowsRule
    description: str
    check: CheckFn | None = None  # raises ValueError, naming the fix, on a bad option value
    moments: MomentsFn | None = None  # the same estimate from streamed moments, if it has one


_REGISTRY: dict[str, Estimator] = {}


def require_choice(
    options: dict[str, Any], name: str, choices: tuple[str, ...], meaning: str
) -> None:
    """Raise a ValueError naming `meaning` unless option `name` is one of `choices`."""
    if options[name] not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(choices)} ({meaning}), got {options[name]!r}."
        )


def require_positive(options: dict[str, Any], name: str, meaning: str) -> None:
    """Raise a ValueError naming `meaning` unless option `name` is a number > 0."""
    value = options[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number > 0 ({meaning}), got {value!r}.")


def split_rows(n: int, options: dict[str, Any], seed: int) -> tuple[torch.Tensor, ...]:
    """Seeded (train, val, test) row indices from `test_fraction` and `val_fraction`."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = round(options["test_fraction"] * n)
    n_val = max(round(options["val_fraction"] * n), 2)
    return perm[n_test + n_val :], perm[n_test : n_test + n_val], perm[:n_test]


def held_out_rows(n: int, options: dict[str, Any], seed: int) -> Rows:
    """The reduction is fitted on the training rows; the value is read on held-out rows."""
    train, val, test = split_rows(n, options, seed)
    return Rows(fit=train, train=train, val=val, test=test, n_train=n - len(test), n_test=len(test))


def all_rows(n: int, options: dict[str, Any], seed: int) -> Rows:
    """Nothing is held out: every row fits, trains and scores (the paper's protocol)."""
    every = torch.arange(n)
    return Rows(fit=every, train=every, val=every, test=every, n_train=n, n_test=n)


def register_estimator(
    name: str,
    *,
    options: Mapping[str, Any],
    rows: RowsRule = held_out_rows,
    description: str = "",
    check: CheckFn | None = None,
    moments: MomentsFn | None = None,
) -> Callable[[EstimateFn], EstimateFn]:
    """Register the decorated function as estimator `name` with these options and defaults.

    `check(options)` validates the resolved options of this estimator (its own ones; the
    shared ones are checked by the pipeline) and raises ValueError with the fix. `moments`, for
    an estimator that reads only covariances, computes the same estimate from `PairMoments`
    (streamed states: memory independent of the number of samples).
    """

    def decorate(fn: EstimateFn) -> EstimateFn:
        known = _REGISTRY.get(name)
        same = known is not None and (known.estimate.__module__, known.estimate.__qualname__) == (
            fn.__module__,
            fn.__qualname__,
        )  # the same definition again: its module was reloaded
        if known is not None and not same:
            raise ValueError(f"an MI estimator named {name!r} is already registered")
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = Estimator(
            name=name,
            estimate=fn,
            options=dict(options),
            rows=rows,
            description=description or (doc[0] if doc else ""),
            check=check,
            moments=moments,
        )
        return fn

    return decorate


def get_estimator(name: str) -> Estimator:
    """The registered estimator `name`; an unknown name is an error listing the known ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown MI estimator {name!r}; choose one of: {', '.join(estimator_names())}."
        ) from None


def estimator_names() -> tuple[str, ...]:
    """Names of every registered estimator, in registration order."""
    return tuple(_REGISTRY)
