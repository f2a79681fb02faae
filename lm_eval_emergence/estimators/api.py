"""One entry point per use: ``estimate_mi`` for a pair, ``estimate_mi_many`` for a grid.

Both run the shared pipeline around a registered estimator (`registry.py`): noise, the shuffled
null, the estimator's row split, the copula and the reduction, then the estimator itself.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from .inputs import ArrayLike, as_pairs, require_samples
from .moments import PairMoments
from .reduce import REDUCTIONS, normal_scores, reduce_pairs
from .registry import Outcome, get_estimator
from .result import LOG2E, MIEstimate

__all__ = [
    "DEFAULT_MI_ESTIMATOR",
    "estimate_mi",
    "estimate_mi_from_moments",
    "estimate_mi_many",
    "estimator_options",
    "moments_unsupported",
    "outcome_from_moments",
]

#: The estimator of a bare `estimate_mi` call (docs/performance.md gives the evidence); IE's
#: default is another, `settings.DEFAULT_IE_ESTIMATOR`, the default protocol's.
DEFAULT_MI_ESTIMATOR = "gaussian"

#: Options that must be integers of at least this value, wherever an estimator takes them.
_INTEGER_OPTIONS = {"reduce_dim": 1, "steps": 1, "batch_size": 2, "eval_every": 1, "folds": 2}


def estimator_options(estimator: str) -> dict[str, Any]:
    """The options ``estimator`` accepts, with their defaults."""
    return dict(get_estimator(estimator).options)


def resolve_options(estimator: str, options: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with ``options``; an unknown or bad option is an error naming the fix."""
    spec = get_estimator(estimator)
    known = dict(spec.options)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for MI estimator {estimator!r}; "
            f"it accepts: {', '.join(sorted(known))}."
        )
    resolved = {**known, **options}
    if resolved["reduce"] not in REDUCTIONS:
        raise ValueError(
            f"unknown reduction {resolved['reduce']!r}; choose one of {', '.join(REDUCTIONS)}."
        )
    for name, low in _INTEGER_OPTIONS.items():
        if name in resolved and (not isinstance(resolved[name], int) or resolved[name] < low):
            raise ValueError(f"{name} must be an integer >= {low}, got {resolved[name]!r}.")
    for name in ("noise_std", "noise_rel"):
        value = resolved.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name} must be a number >= 0, got {resolved[name]!r}.")
    if "test_fraction" in resolved:
        tf, vf = resolved["test_fraction"], resolved["val_fraction"]
        if not (0 < tf < 1 and 0 < vf < 1 and tf + vf < 0.9):
            raise ValueError(
                f"test_fraction={tf} and val_fraction={vf} must be in (0, 1) and leave at least "
                "10% of the samples for training."
            )
    if spec.check is not None:
        spec.check(resolved)
    return resolved


def estimate_mi(
    x: ArrayLike,
    y: ArrayLike,
    *,
    estimator: str = DEFAULT_MI_ESTIMATOR,
    seed: int = 0,
    **options: Any,
) -> MIEstimate:
    """Estimate I(x; y) in bits from paired samples x [n, dx] and y [n, dy] (torch or numpy)."""
    return estimate_mi_many([x], [y], estimator=estimator, seed=seed, **options)[0]


def estimate_mi_many(
    xs: ArrayLike | Sequence[ArrayLike],
    ys: ArrayLike | Sequence[ArrayLike],
    *,
    estimator: str = DEFAULT_MI_ESTIMATOR,
    seed: int = 0,
    **options: Any,
) -> list[MIEstimate]:
    """Estimate I(xs[p]; ys[p]) for many pairs as one batched computation.

    Pairs of the same shape train together, one critic each, with stacked weights. Every pair
    sees the same seed-derived split, noise, initialisation and minibatches, so pair p gets the
    same number here as from ``estimate_mi(xs[p], ys[p], seed=seed)``.
    """
    opts = resolve_options(estimator, options)  # also rejects an unknown estimator
    x_list, y_list = as_pairs(xs, ys)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (x, y) in enumerate(zip(x_list, y_list, strict=True)):
        groups.setdefault((x.shape[0], x.shape[1], y.shape[1]), []).append(i)
    results: list[MIEstimate | None] = [None] * len(x_list)
    for members in groups.values():
        x = torch.stack([x_list[i] for i in members])
        y = torch.stack([y_list[i] for i in members])
        for i, estimate in zip(members, _estimate_stack(x, y, estimator, seed, opts), strict=True):
            results[i] = estimate
    return [r for r in results if r is not None]


def _estimate_stack(
    x: torch.Tensor, y: torch.Tensor, name: str, seed: int, opts: dict[str, Any]
) -> list[MIEstimate]:
    start = time.perf_counter()
    estimator = get_estimator(name)
    n_pairs, n = x.shape[0], x.shape[1]
    if opts["noise_std"] > 0:
        noise_gen = torch.Generator().manual_seed(seed + 2)
        y = y + opts["noise_std"] * torch.randn(y.shape[1:], generator=noise_gen)
    if opts.get("noise_rel", 0) > 0:
        # noise on both sides in units of each coordinate's own spread, so one value means the
        # same at every block and model (the noise-regularised MI of docs/validity.md)
        rel_gen = torch.Generator().manual_seed(seed + 4)
        x = x + opts["noise_rel"] * x.std(dim=1, keepdim=True) * torch.randn(
            x.shape[1:], generator=rel_gen
        )
        y = y + opts["noise_rel"] * y.std(dim=1, keepdim=True) * torch.randn(
            y.shape[1:], generator=rel_gen
        )
    if opts["null"]:
        shuffle = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 3))
        x = torch.cat([x, x])
        y = torch.cat([y, y[:, shuffle]])
    rows = estimator.rows(n, opts, seed)
    if opts.get("copula"):
        x, y = normal_scores(x, rows.fit), normal_scores(y, rows.fit)
    x, y = reduce_pairs(
        x,
        y,
        rows.fit,
        reduction=opts["reduce"],
        k=opts["reduce_dim"],
        seed=seed,
        ridge=opts["ridge"],
    )
    out = estimator.estimate(x, y, rows, opts, seed)
    seconds = (time.perf_counter() - start) / n_pairs
    return _records(out, name, n, rows.n_train, rows.n_test, seed, seconds, opts)


def _records(
    out: Outcome,
    name: str,
    n: int,
    n_train: int,
    n_test: int,
    seed: int,
    seconds: float,
    opts: dict[str, Any],
) -> list[MIEstimate]:
    """One `MIEstimate` per pair of an estimator's `Outcome` (its nulls, if any, after them)."""
    n_pairs = len(out.nats) // 2 if opts["null"] else len(out.nats)
    diverged = out.diverged
    if diverged.any():
        warnings.warn(
            f"{int(diverged.sum())} of {len(diverged)} {name} estimates diverged; they are "
            "flagged diverged=True. Try a smaller lr, more samples or a noise_std.",
            RuntimeWarning,
            stacklevel=4,
        )
    records = []
    left_out = None if out.fold_nats is None else (out.fold_nats[1:] * LOG2E).tolist()
    for p in range(n_pairs):
        null_bits = float(out.nats[p + n_pairs] * LOG2E) if opts["null"] else None
        # a diverged null makes the pair's record untrustworthy too: flag it, never a silent 0
        pair_diverged = bool(diverged[p]) or (opts["null"] and bool(diverged[p + n_pairs]))
        records.append(
            MIEstimate(
                bits=float(out.nats[p] * LOG2E),
                stderr_bits=float(out.stderr_nats[p] * LOG2E),
                ceiling_bits=out.ceiling_bits,
                estimator=name,
                n=n,
                seed=seed,
                seconds=seconds,
                diverged=pair_diverged,
                n_train=n_train,
                n_test=n_test,
                steps=int(out.steps[p]),
                null_bits=null_bits,
                options=dict(opts),
                left_out_bits=None if left_out is None else tuple(row[p] for row in left_out),
            )
        )
    return records


#: Pipeline options the moments path cannot apply (each needs the samples), with their off value.
_SAMPLE_ONLY = {"noise_std": 0.0, "noise_rel": 0.0, "null": False, "reduce": "none"}


def moments_unsupported(estimator: str, options: dict[str, Any]) -> str | None:
    """Why `estimator` with `options` cannot run on streamed moments; None if it can."""
    spec = get_estimator(estimator)
    if spec.moments is None:
        return f"estimator {estimator!r} needs the samples (only closed forms stream)"
    opts = resolve_options(estimator, options)
    for key, off in _SAMPLE_ONLY.items():
        if opts.get(key, off) != off:
            return f"option {key}={opts[key]!r} needs the samples"
    return None


def outcome_from_moments(moments: PairMoments, estimator: str, options: dict[str, Any]) -> Outcome:
    """The estimator's `Outcome` (nats, tensors over the pairs) from second moments: what
    `estimate_mi_from_moments` turns into records, for callers that combine many pairs."""
    opts = resolve_options(estimator, options)
    why = moments_unsupported(estimator, opts)
    if why is not None:
        raise ValueError(f"{why}; estimate from the samples instead.")
    require_samples(moments.n)
    return get_estimator(estimator).moments(moments, opts)  # type: ignore[misc]


def estimate_mi_from_moments(
    moments: PairMoments, *, estimator: str, seed: int = 0, **options: Any
) -> list[MIEstimate]:
    """I(x; y) in bits of every pair whose second moments `moments` holds: the estimate that
    `estimate_mi_many` gives on the samples (to float rounding), from O(D^2) numbers a pair."""
    opts = resolve_options(estimator, options)
    start = time.perf_counter()
    out = outcome_from_moments(moments, estimator, opts)
    seconds = (time.perf_counter() - start) / moments.n_pairs
    return _records(out, estimator, moments.n, moments.n, moments.n, seed, seconds, opts)
