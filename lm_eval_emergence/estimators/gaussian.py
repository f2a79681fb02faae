"""Closed-form MI of a Gaussian fit: a fast, deterministic baseline.

For jointly Gaussian (x, y), I = -1/2 * sum_i log(1 - rho_i^2) nats over the canonical
correlations rho_i. The joint covariance is shrunk towards a scaled identity (Ledoit-Wolf), which
keeps the fit finite when the dimension is not small against the sample count. For non-Gaussian
data the value is the MI of the best Gaussian approximation: exact under a Gaussian copula only.
"""

from __future__ import annotations

import torch


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


def canonical_correlations(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Canonical correlations of each pair in [P, m, dx], [P, m, dy] stacks, after shrinkage."""
    dx = x.shape[-1]
    cov = ledoit_wolf(torch.cat([x, y], dim=-1))
    cxx, cyy, cxy = cov[:, :dx, :dx], cov[:, dx:, dx:], cov[:, :dx, dx:]
    lx = torch.linalg.cholesky(cxx)
    ly = torch.linalg.cholesky(cyy)
    # whitened cross-covariance L_x^{-1} C_xy L_y^{-T}; its singular values are the rho_i
    left = torch.linalg.solve_triangular(lx, cxy, upper=False)
    whitened = torch.linalg.solve_triangular(ly, left.transpose(1, 2), upper=False).transpose(1, 2)
    return torch.linalg.svdvals(whitened).clamp(0.0, 1.0 - 1e-12)


def gaussian_mi_nats(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian MI and its asymptotic standard error, both in nats, for each pair of a stack.

    The standard error uses var(I) ~ sum_i rho_i^2 / m, the delta-method variance of the
    canonical-correlation form with independent canonical pairs.
    """
    rho = canonical_correlations(x, y)
    mi = -0.5 * torch.log1p(-(rho * rho)).sum(-1)
    stderr = ((rho * rho).sum(-1) / x.shape[1]).sqrt()
    return mi.float(), stderr.float()
