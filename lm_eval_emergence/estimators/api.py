"""One entry point per use: ``estimate_mi`` for a pair, ``estimate_mi_many`` for a grid."""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from .gaussian import gaussian_mi_nats
from .inputs import ArrayLike, as_pairs
from .neural import NeuralConfig, train_and_estimate
from .paper import PaperConfig, train_paper
from .reduce import REDUCTIONS, normal_scores, reduce_pairs
from .result import LOG2E, MIEstimate

#: The estimator used when none is named; docs/performance.md gives the evidence for it.
DEFAULT_METHOD = "gaussian"

_NEURAL_BOUND = {"mine": "dv", "smile": "smile", "infonce": "infonce"}
METHODS = ("gaussian", "infonce", "smile", "mine", "mine-paper")

_COMMON = {
    "noise_std": 0.0,
    "null": False,
    "reduce": "cca",
    "reduce_dim": 16,
    "test_fraction": 0.5,
    "val_fraction": 0.1,
    "ridge": 0.1,
}
# copula: normal scores per coordinate first, which makes the fit exact through coordinate-wise
# monotone maps (cubic-64 in docs/performance.md: 3.90 of 4 bits instead of 2.91).
# no critic to validate, so more rows go to fitting the reduction (the evidence in
# docs/performance.md: 768-dimensional cases lose half their MI with a 50/50 split)
_GAUSSIAN = {
    "shrinkage": 0.0,
    "bias_correction": True,
    "test_fraction": 0.25,
    "copula": True,
}
_NEURAL = {f.name: f.default for f in dataclasses.fields(NeuralConfig) if f.name != "bound"}
_PAPER = {f.name: f.default for f in dataclasses.fields(PaperConfig)}


def method_options(method: str) -> dict[str, Any]:
    """The options ``method`` accepts, with their defaults."""
    _check_method(method)
    if method == "mine-paper":
        return {
            "noise_std": 0.0,
            "null": False,
            "reduce": "none",
            "reduce_dim": 16,
            "ridge": 0.1,
            **_PAPER,
        }
    if method == "gaussian":
        return {**_COMMON, **_GAUSSIAN}
    return {**_COMMON, **_NEURAL}


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown MI method {method!r}; choose one of: {', '.join(METHODS)}.")


def resolve_options(method: str, options: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with ``options``; an unknown option is an error listing the known ones."""
    known = method_options(method)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for MI method {method!r}; "
            f"it accepts: {', '.join(sorted(known))}."
        )
    resolved = {**known, **options}
    if resolved["reduce"] not in REDUCTIONS:
        raise ValueError(
            f"unknown reduction {resolved['reduce']!r}; choose one of {', '.join(REDUCTIONS)}."
        )
    for name, low in (("reduce_dim", 1), ("steps", 1), ("batch_size", 2), ("eval_every", 1)):
        if name in resolved and (not isinstance(resolved[name], int) or resolved[name] < low):
            raise ValueError(f"{name} must be an integer >= {low}, got {resolved[name]!r}.")
    shrinkage = resolved.get("shrinkage", 0.0)
    if shrinkage != "ledoit-wolf" and not (
        isinstance(shrinkage, int | float) and 0 <= shrinkage < 1
    ):
        raise ValueError(
            f"shrinkage must be 'ledoit-wolf' or a number in [0, 1), got {shrinkage!r}."
        )
    if resolved["noise_std"] < 0:
        raise ValueError(f"noise_std must be >= 0, got {resolved['noise_std']}.")
    if "test_fraction" in resolved:
        tf, vf = resolved["test_fraction"], resolved["val_fraction"]
        if not (0 < tf < 1 and 0 < vf < 1 and tf + vf < 0.9):
            raise ValueError(
                f"test_fraction={tf} and val_fraction={vf} must be in (0, 1) and leave at least "
                "10% of the samples for training."
            )
    return resolved


def estimate_mi(
    x: ArrayLike, y: ArrayLike, *, method: str = DEFAULT_METHOD, seed: int = 0, **options: Any
) -> MIEstimate:
    """Estimate I(x; y) in bits from paired samples x [n, dx] and y [n, dy] (torch or numpy)."""
    return estimate_mi_many([x], [y], method=method, seed=seed, **options)[0]


def estimate_mi_many(
    xs: ArrayLike | Sequence[ArrayLike],
    ys: ArrayLike | Sequence[ArrayLike],
    *,
    method: str = DEFAULT_METHOD,
    seed: int = 0,
    **options: Any,
) -> list[MIEstimate]:
    """Estimate I(xs[p]; ys[p]) for many pairs as one batched computation.

    Pairs of the same shape train together, one critic each, with stacked weights. Every pair
    sees the same seed-derived split, noise, initialisation and minibatches, so pair p gets the
    same number here as from ``estimate_mi(xs[p], ys[p], seed=seed)``.
    """
    opts = resolve_options(method, options)  # also rejects an unknown method
    x_list, y_list = as_pairs(xs, ys)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (x, y) in enumerate(zip(x_list, y_list, strict=True)):
        groups.setdefault((x.shape[0], x.shape[1], y.shape[1]), []).append(i)
    results: list[MIEstimate | None] = [None] * len(x_list)
    for members in groups.values():
        x = torch.stack([x_list[i] for i in members])
        y = torch.stack([y_list[i] for i in members])
        for i, estimate in zip(members, _estimate_stack(x, y, method, seed, opts), strict=True):
            results[i] = estimate
    return [r for r in results if r is not None]


def _split(n: int, opts: dict[str, Any], seed: int) -> tuple[torch.Tensor, ...]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = round(opts["test_fraction"] * n)
    n_val = max(round(opts["val_fraction"] * n), 2)
    return perm[n_test + n_val :], perm[n_test : n_test + n_val], perm[:n_test]


def _estimate_stack(
    x: torch.Tensor, y: torch.Tensor, method: str, seed: int, opts: dict[str, Any]
) -> list[MIEstimate]:
    start = time.perf_counter()
    n_pairs, n = x.shape[0], x.shape[1]
    if opts["noise_std"] > 0:
        noise_gen = torch.Generator().manual_seed(seed + 2)
        y = y + opts["noise_std"] * torch.randn(y.shape[1:], generator=noise_gen)
    if opts["null"]:
        shuffle = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 3))
        x = torch.cat([x, x])
        y = torch.cat([y, y[:, shuffle]])
    if method == "mine-paper":
        fit_idx = train_idx = test_idx = torch.arange(n)  # the paper holds nothing out
    else:
        train_idx, val_idx, test_idx = _split(n, opts, seed)
        if method == "gaussian":
            # no critic to validate: the validation rows help fit the reduction
            fit_idx = torch.cat([train_idx, val_idx])
        elif opts["reduce"] == "cca":
            # a supervised reduction inflates the correlations of the rows it was fitted on: the
            # critic trains on other rows, so what it learns holds on held-out data too
            half = len(train_idx) // 2
            fit_idx, train_idx = train_idx[:half], train_idx[half:]
        else:
            fit_idx = train_idx
    if opts.get("copula"):
        x, y = normal_scores(x, fit_idx), normal_scores(y, fit_idx)
    x, y = reduce_pairs(
        x,
        y,
        fit_idx,
        method=opts["reduce"],
        k=opts["reduce_dim"],
        seed=seed,
        ridge=opts["ridge"],
    )
    if method == "mine-paper":
        config = PaperConfig(**{k: opts[k] for k in _PAPER})
        out = train_paper(x, y, config, seed)
        nats, stderr, diverged = out.nats, out.stderr_nats, out.diverged
        ceiling, n_train, n_test, steps = math.log2(n), n, n, torch.full((len(nats),), config.steps)
    else:
        n_train, n_test = n - len(test_idx), len(test_idx)  # every row not held out
        if method == "gaussian":
            width = x.shape[-1] + y.shape[-1]
            if n_test <= width:
                raise ValueError(
                    f"{n_test} held-out rows cannot fit a Gaussian in {width} dimensions "
                    f"(n={n}, test_fraction={opts['test_fraction']}, reduce_dim="
                    f"{opts['reduce_dim']}): use more samples or a smaller reduce_dim."
                )
            nats, stderr, infinite = gaussian_mi_nats(
                x[:, test_idx], y[:, test_idx], opts["shrinkage"], opts["bias_correction"]
            )
            diverged = infinite | ~torch.isfinite(nats)
            steps, ceiling = torch.zeros(len(nats)), None
        else:
            config = NeuralConfig(bound=_NEURAL_BOUND[method], **{k: opts[k] for k in _NEURAL})
            out = train_and_estimate(x, y, train_idx, val_idx, test_idx, config, seed)
            nats, stderr, diverged, steps = out.nats, out.stderr_nats, out.diverged, out.steps
            ceiling = math.log2(n_test)
    seconds = (time.perf_counter() - start) / n_pairs
    if diverged.any():
        warnings.warn(
            f"{int(diverged.sum())} of {len(diverged)} {method} estimates diverged; they are "
            "flagged diverged=True. Try a smaller lr, more samples or a noise_std.",
            RuntimeWarning,
            stacklevel=3,
        )
    records = []
    for p in range(n_pairs):
        null_bits = float(nats[p + n_pairs] * LOG2E) if opts["null"] else None
        # a diverged null makes the pair's record untrustworthy too: flag it, never a silent 0
        pair_diverged = bool(diverged[p]) or (opts["null"] and bool(diverged[p + n_pairs]))
        records.append(
            MIEstimate(
                bits=float(nats[p] * LOG2E),
                stderr_bits=float(stderr[p] * LOG2E),
                ceiling_bits=ceiling,
                method=method,
                n=n,
                seed=seed,
                seconds=seconds,
                diverged=pair_diverged,
                n_train=n_train,
                n_test=n_test,
                steps=int(steps[p]),
                null_bits=null_bits,
                options=dict(opts),
            )
        )
    return records
