"""Closed-form MI of a Gaussian fit: a fast, deterministic baseline.

For jointly Gaussian (x, y), I = -1/2 * sum_i log(1 - rho_i^2) nats over the canonical
correlations rho_i. The joint covariance is shrunk towards a scaled identity (Ledoit-Wolf), which
keeps the fit finite when the dimension is not small against the sample count. For non-Gaussian
data the value is the MI of the best Gaussian approximation: exact under a Gaussian copula only.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from .registry import COMMON_OPTIONS, Outcome, Rows, held_out_rows, register_estimator


def ledoit_wolf(z: torch.Tensor) -> torch.Tensor:
    """Ledoit-Wolf shrunk covariance of each [m, D] sample in a [P, m, D] stack (float64)."""
    z = z.double()
    z = z - z.mean(dim=1, keepdim=True)
    m, dim = z.shape[1], z.shape[2]
    cov = z.transpose(1, 2) @ z / m
    trace = cov.diagonal(dim1=1, dim2=2)
    mu = trace.sum(-1) / dim
    z2 = z * z
    beta_raw = (z2.transpose(1, 2) @ z2).sum((1, 2))
    delta_raw = (cov * cov).sum((1, 2))
    beta = (beta_raw / m - delta_raw) / (dim * m)
    delta = (delta_raw - 2 * mu * trace.sum(-1) + dim * mu * mu) / dim
    beta = torch.minimum(beta, delta)
    shrink = torch.where(delta > 0, beta / delta.clamp_min(1e-300), torch.zeros_like(delta))
    eye = torch.eye(dim, dtype=cov.dtype)
    return (1 - shrink)[:, None, None] * cov + (shrink * mu)[:, None, None] * eye


def sample_covariance(z: torch.Tensor) -> torch.Tensor:
    """Sample covariance of each [m, D] sample in a [P, m, D] stack (float64)."""
    z = z.double()
    z = z - z.mean(dim=1, keepdim=True)
    return z.transpose(1, 2) @ z / (z.shape[1] - 1)


#: Canonical correlations this close to 1 mean a deterministic linear relation: infinite MI.
RHO_MAX = 1.0 - 1e-6


def _orthonormal_basis(z: torch.Tensor, rtol: float = 1e-7) -> torch.Tensor:
    """Orthonormal basis of the centred columns' span, [P, m, d]; null directions are zeroed."""
    u, s, _ = torch.linalg.svd(z - z.mean(dim=1, keepdim=True), full_matrices=False)
    keep = s > rtol * s.amax(dim=-1, keepdim=True).clamp_min(1e-300)
    return u * keep[:, None, :]


def canonical_correlations(
    x: torch.Tensor, y: torch.Tensor, shrinkage: str | float = 0.0
) -> torch.Tensor:
    """Canonical correlations of each pair of [P, m, dx], [P, m, dy] stacks, within [0, RHO_MAX].

    Without shrinkage they are the singular values of Q_x^T Q_y for orthonormal bases of the
    centred samples, which stays defined when a side is rank-deficient (a constant coordinate,
    a few distinct points). ``shrinkage`` is ``"ledoit-wolf"`` or a ridge s in [0, 1): the joint
    covariance becomes (1 - s) C + s mu I, which shrinks every canonical correlation too, so it
    trades bias for stability when the dimension is not small against m.
    """
    if not shrinkage:
        qx = _orthonormal_basis(x.double())
        qy = _orthonormal_basis(y.double())
        return torch.linalg.svdvals(qx.transpose(1, 2) @ qy).clamp(0.0, RHO_MAX)
    dx = x.shape[-1]
    z = torch.cat([x, y], dim=-1)
    if shrinkage == "ledoit-wolf":
        cov = ledoit_wolf(z)
    else:
        cov = sample_covariance(z)
        mu = cov.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None]
        cov = (1 - shrinkage) * cov + shrinkage * mu * torch.eye(cov.shape[-1], dtype=cov.dtype)
    cxx, cyy, cxy = cov[:, :dx, :dx], cov[:, dx:, dx:], cov[:, :dx, dx:]
    lx = torch.linalg.cholesky(cxx)
    ly = torch.linalg.cholesky(cyy)
    # whitened cross-covariance L_x^{-1} C_xy L_y^{-T}; its singular values are the rho_i
    left = torch.linalg.solve_triangular(lx, cxy, upper=False)
    whitened = torch.linalg.solve_triangular(ly, left.transpose(1, 2), upper=False).transpose(1, 2)
    return torch.linalg.svdvals(whitened).clamp(0.0, RHO_MAX)


def gaussian_mi_nats(
    x: torch.Tensor, y: torch.Tensor, shrinkage: str | float = 0.0, bias_correction: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian MI and its asymptotic standard error, both in nats, for each pair of a stack.

    ``bias_correction`` subtracts the first-order upward bias of the plug-in value, so an
    independent pair reads 0 on average (and may read slightly below). The standard error uses
    var(I) ~ sum_i rho_i^2 / m, the delta-method variance of the
    canonical-correlation form with independent canonical pairs. The third tensor flags pairs
    with a canonical correlation of 1 (to 1e-6): their Gaussian MI is infinite, and the finite
    value returned is only what the clipping leaves.
    """
    rho = canonical_correlations(x, y, shrinkage)
    mi = -0.5 * torch.log1p(-(rho * rho)).sum(-1)
    if bias_correction:
        # Wilks: 2 m I is chi-square with dx * dy degrees of freedom for an independent pair, so
        # the plug-in value is biased upward by dx * dy / (2 m) nats to first order
        mi = mi - x.shape[-1] * y.shape[-1] / (2.0 * x.shape[1])
    stderr = ((rho * rho).sum(-1) / x.shape[1]).sqrt()
    return mi.float(), stderr.float(), (rho >= RHO_MAX).any(-1)


def _gaussian_rows(n: int, options: dict[str, Any], seed: int) -> Rows:
    """No critic to validate, so the validation rows help fit the reduction (docs/performance.md:
    768-dimensional cases lose half their MI with a 50/50 split)."""
    rows = held_out_rows(n, options, seed)
    return replace(rows, fit=torch.cat([rows.train, rows.val]))


def _check_shrinkage(options: dict[str, Any]) -> None:
    shrinkage = options["shrinkage"]
    if shrinkage != "ledoit-wolf" and not (
        isinstance(shrinkage, int | float) and 0 <= shrinkage < 1
    ):
        raise ValueError(
            f"shrinkage must be 'ledoit-wolf' or a number in [0, 1), got {shrinkage!r}."
        )


@register_estimator(
    "gaussian",
    # copula: normal scores per coordinate first, which makes the fit exact through coordinate-wise
    # monotone maps (cubic-64 in docs/performance.md: 3.90 of 4 bits instead of 2.91)
    options={
        **COMMON_OPTIONS,
        "shrinkage": 0.0,
        "bias_correction": True,
        "test_fraction": 0.25,
        "copula": True,
    },
    rows=_gaussian_rows,
    check=_check_shrinkage,
)
def gaussian(
    x: torch.Tensor, y: torch.Tensor, rows: Rows, options: dict[str, Any], seed: int
) -> Outcome:
    """Closed-form MI of a Gaussian (copula) fit, read on the held-out rows; no ceiling."""
    width = x.shape[-1] + y.shape[-1]
    if rows.n_test <= width:
        raise ValueError(
            f"{rows.n_test} held-out rows cannot fit a Gaussian in {width} dimensions "
            f"(n={x.shape[1]}, test_fraction={options['test_fraction']}, reduce_dim="
            f"{options['reduce_dim']}): use more samples or a smaller reduce_dim."
        )
    nats, stderr, infinite = gaussian_mi_nats(
        x[:, rows.test], y[:, rows.test], options["shrinkage"], options["bias_correction"]
    )
    diverged = infinite | ~torch.isfinite(nats)
    return Outcome(nats, stderr, diverged, torch.zeros(len(nats)), ceiling_bits=None)
