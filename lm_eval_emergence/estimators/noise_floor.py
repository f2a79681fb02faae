"""Gaussian MI with a noise floor: finite and model-dependent by construction, in closed form.

A block is a deterministic map, so I(x; y) of its input and output is the entropy of the data,
whatever the block computes. Adding independent noise of a set scale to both sides makes the
target finite and dependent on how the block maps x to y:

    I_k = 1/2 log det(Cxx + k^2 I) + 1/2 log det(Cyy + k^2 I) - 1/2 log det(C + k^2 I),  k = kappa

is the exact MI of (x + kappa z1, y + kappa z2), z ~ N(0, I), when (x, y) is Gaussian with joint
covariance C; for other data it is the MI of the Gaussian with the same covariance (the
linear-Gaussian usable information with a noise floor). Each coordinate is standardised by its
own rows first (the pipeline's `reduce_pairs`), so kappa is in units of each coordinate's spread
and means the same at every block and model. No training, deterministic, O(n k^2 + k^3); from
the samples or from their streamed moments (`moments.py`), which give the same number.
"""

from __future__ import annotations

from typing import Any

import torch

from .moments import (
    DEFAULT_FOLDS,
    PairMoments,
    jackknife_bias_corrected,
    jackknife_stderr,
    moments_of_samples,
)
from .registry import (
    UNSPLIT_OPTIONS,
    Outcome,
    Rows,
    all_rows,
    register_estimator,
    require_choice,
    require_positive,
)

__all__ = ["BIAS_CORRECTIONS"]  # the estimator is reached through the registry

#: Finite-sample corrections of the plug-in value (option `bias`): "none"; "jackknife", the
#: delete-a-fold jackknife over the folds the stderr already uses (each fold standardised by its
#: own rows, so the correction sees the whole estimator); "analytic", the first-order bias of a
#: Gaussian sample covariance's log-determinant under the floor (see `_analytic_bias`).
BIAS_CORRECTIONS = ("none", "jackknife", "analytic")


def _mi_from_covariance(cov: torch.Tensor, dx: int, kappa: float) -> torch.Tensor:
    """I_kappa in nats from joint covariances [..., D, D] whose first dx coordinates are x."""
    cov = cov.clone()
    cov.diagonal(dim1=-2, dim2=-1).add_(kappa**2)
    logdet = lambda m: torch.linalg.slogdet(m)[1]  # noqa: E731 (positive definite: sign 1)
    return 0.5 * (logdet(cov[..., :dx, :dx]) + logdet(cov[..., dx:, dx:]) - logdet(cov))


def standardized_each(covs: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Covariances [..., D, D] each scaled by its own rows' std: every left-out entry is then
    what the whole estimator (standardisation included) gives on those rows."""
    scale = 1.0 / (covs.diagonal(dim1=-2, dim2=-1).clamp_min(0).sqrt() + eps)  # [..., D]
    return (covs * scale[..., :, None]).mul_(scale[..., None, :])


def _trace_terms(cov: torch.Tensor, kappa: float) -> torch.Tensor:
    """(tr B)^2 + tr(B^2) with B = (C + kappa^2 I)^-1 C, for [..., d, d] covariances."""
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype)
    b = torch.linalg.solve(cov + kappa**2 * eye, cov)
    return b.diagonal(dim1=-2, dim2=-1).sum(-1) ** 2 + (b @ b).diagonal(dim1=-2, dim2=-1).sum(-1)


def _analytic_bias(cov: torch.Tensor, dx: int, kappa: float, n: torch.Tensor) -> torch.Tensor:
    """First-order bias (nats) of the plug-in I_kappa on n Gaussian rows: E log det(S + l I) is
    log det(C + l I) - [(tr B)^2 + tr B^2] / (2n) + O(n^-2) (a second-order expansion with
    Wishart moments); at kappa = 0 the MI's bias is then the known dx * dy / (2n)."""
    terms = _trace_terms(cov[..., :dx, :dx], kappa) + _trace_terms(cov[..., dx:, dx:], kappa)
    return (_trace_terms(cov, kappa) - terms) / (4 * n)


def _outcome(covs: torch.Tensor, rows: torch.Tensor, dx: int, options: dict[str, Any]) -> Outcome:
    """Value and delete-a-fold jackknife standard error from covariances [1 + F, P, D, D] of all
    rows and of each fold left out, on `rows` [1 + F] rows, corrected as option `bias` says.
    Each covariance is standardised by its own rows, so every left-out value is the whole
    estimator's on those rows (the jackknife's premise)."""
    kappa, bias = float(options["kappa"]), options["bias"]
    covs = standardized_each(covs)
    values = _mi_from_covariance(covs, dx, kappa)  # [1 + F, P]
    nats, stderr = values[0], jackknife_stderr(values[1:])
    if bias == "jackknife":
        nats = jackknife_bias_corrected(values, rows)
    elif bias == "analytic":
        nats = nats - _analytic_bias(covs[0], dx, kappa, rows[0])
    return Outcome(
        nats=nats.float(),
        stderr_nats=stderr.float(),
        diverged=~torch.isfinite(nats),
        steps=torch.zeros(covs.shape[1]),
        ceiling_bits=None,  # no sample ceiling; the floor bounds it: dy/2 * log2(1 + 1/kappa^2)
        fold_nats=values,
    )


def _check(options: dict[str, Any]) -> None:
    require_positive(
        options, "kappa", "the noise floor, in units of each coordinate's standard deviation"
    )
    require_choice(options, "bias", BIAS_CORRECTIONS, "the finite-sample correction")


def gaussian_floor_of_moments(moments: PairMoments, options: dict[str, Any]) -> Outcome:
    """gaussian-floor from streamed moments of the raw states (standardised in `_outcome`)."""
    return _outcome(moments.covariances(), moments.row_counts(), moments.dx, options)


@register_estimator(
    "gaussian-floor",
    # kappa 0.25: docs/validity.md; bias "jackknife": the default protocol's, because a smaller
    # dependence on N is better for a number whose meaning is not validated (docs/method-notes.md)
    options={**UNSPLIT_OPTIONS, "kappa": 0.25, "folds": DEFAULT_FOLDS, "bias": "jackknife"},
    rows=all_rows,  # a closed form, nothing trained: every row is used
    check=_check,
    moments=gaussian_floor_of_moments,
)
def gaussian_floor(
    x: torch.Tensor, y: torch.Tensor, rows: Rows, options: dict[str, Any], seed: int
) -> Outcome:
    """Gaussian MI of the standardised states with noise of scale kappa on both sides."""
    # x and y are standardised by the pipeline; the jackknife folds are seeded (moments.py)
    moments = moments_of_samples(x, y, int(options["folds"]), seed)
    return _outcome(moments.covariances(), moments.row_counts(), x.shape[-1], options)
