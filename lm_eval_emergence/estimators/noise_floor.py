"""Gaussian MI with a noise floor: finite and model-dependent by construction, in closed form.

A block is a deterministic map, so I(x; y) of its input and output is the entropy of the data,
whatever the block computes. Adding independent noise of a set scale to both sides makes the
target finite and dependent on how the block maps x to y:

    I_k = 1/2 log det(Cxx + k^2 I) + 1/2 log det(Cyy + k^2 I) - 1/2 log det(C + k^2 I),  k = kappa

is the exact MI of (x + kappa z1, y + kappa z2), z ~ N(0, I), when (x, y) is Gaussian with joint
covariance C; for other data it is the MI of the Gaussian with the same covariance (the
linear-Gaussian usable information with a noise floor). Each coordinate is standardised by its
own rows first (the pipeline's `reduce_pairs`), so kappa is in units of each coordinate's spread
and means the same at every block and model. No training, deterministic, O(n k^2 + k^3).
"""

from __future__ import annotations

from typing import Any

import torch

from .registry import (
    UNSPLIT_OPTIONS,
    Outcome,
    Rows,
    all_rows,
    register_estimator,
    require_positive,
)

__all__: list[str] = []  # reached through the registry: estimate_mi(estimator="gaussian-floor")


def _mi_from_covariance(cov: torch.Tensor, dx: int, kappa: float) -> torch.Tensor:
    """I_kappa in nats from joint covariances [..., D, D] whose first dx coordinates are x."""
    cov = cov + kappa**2 * torch.eye(cov.shape[-1], dtype=cov.dtype)
    logdet = lambda m: torch.linalg.slogdet(m)[1]  # noqa: E731 (positive definite: sign 1)
    return 0.5 * (logdet(cov[..., :dx, :dx]) + logdet(cov[..., dx:, dx:]) - logdet(cov))


def _jackknife_covariances(z: torch.Tensor, folds: list[torch.Tensor]) -> torch.Tensor:
    """Sample covariances of [P, n, D] with all rows and without each fold's, [1 + F, P, D, D]
    (float64), from the total and per-fold sums: one pass over the rows, not one per fold."""
    z = z.double()
    z = z - z.mean(dim=1, keepdim=True)  # centred first: the sums stay well conditioned
    n = z.shape[1]
    total_sum, total_cross = z.sum(1), z.transpose(1, 2) @ z
    out = [(total_cross - total_sum[:, :, None] * total_sum[:, None, :] / n) / (n - 1)]
    for fold in folds:
        part = z[:, fold]
        m = n - len(fold)
        s = total_sum - part.sum(1)
        cross = total_cross - part.transpose(1, 2) @ part
        out.append((cross - s[:, :, None] * s[:, None, :] / m) / (m - 1))
    return torch.stack(out)


def _check(options: dict[str, Any]) -> None:
    require_positive(
        options, "kappa", "the noise floor, in units of each coordinate's standard deviation"
    )


@register_estimator(
    "gaussian-floor",
    options={**UNSPLIT_OPTIONS, "kappa": 0.25, "folds": 10},  # 0.25: docs/validity.md
    rows=all_rows,  # a closed form, nothing trained: every row is used
    check=_check,
)
def gaussian_floor(
    x: torch.Tensor, y: torch.Tensor, rows: Rows, options: dict[str, Any], seed: int
) -> Outcome:
    """Gaussian MI of the standardised states with noise of scale kappa on both sides."""
    kappa = float(options["kappa"])
    n_pairs, n = x.shape[0], x.shape[1]
    # delete-a-fold jackknife over seeded folds of the rows: the standard error of the value
    folds = min(int(options["folds"]), n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 4))
    covs = _jackknife_covariances(torch.cat([x, y], dim=-1), list(order.chunk(folds)))
    values = _mi_from_covariance(covs, x.shape[-1], kappa)  # [1 + folds, P]
    nats, left_out = values[0], values[1:]
    g = left_out.shape[0]
    stderr = ((g - 1) / g * ((left_out - left_out.mean(0)) ** 2).sum(0)).sqrt()
    finite = torch.isfinite(nats)
    return Outcome(
        nats=nats.float(),
        stderr_nats=stderr.float(),
        diverged=~finite,
        steps=torch.zeros(n_pairs),
        ceiling_bits=None,  # no sample ceiling; the floor bounds it: dy/2 * log2(1 + 1/kappa^2)
    )
