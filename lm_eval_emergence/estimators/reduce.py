"""Dimension reduction and standardisation, fitted on the training rows only.

Hidden states have hundreds to thousands of coordinates while an estimate sees a few thousand
samples; every estimator is badly biased in that regime. The reductions here map each side to
``k`` coordinates using statistics of the training rows alone, so the held-out rows that the
estimate is read on stay unseen:

- ``pca``: the top-k principal directions of each side separately (unsupervised);
- ``cca``: the top-k canonical directions of the pair (ridge-regularised CCA), which keeps the
  coordinates that carry the linear dependence even when they carry little variance;
- ``random``: a seeded Gaussian projection, the same for every pair of the same width.
"""

from __future__ import annotations

import torch

REDUCTIONS = ("none", "pca", "cca", "random")


def normal_scores(x: torch.Tensor, fit_idx: torch.Tensor) -> torch.Tensor:
    """Each coordinate mapped through the fit rows' empirical CDF to standard-normal quantiles.

    A monotone map of each coordinate leaves MI unchanged, and makes every marginal Gaussian:
    a Gaussian fit is then exact for any Gaussian copula, e.g. a Gaussian seen through
    coordinate-wise monotone nonlinearities. Ties (discrete coordinates) share a score.
    """
    fit = x[:, fit_idx].transpose(1, 2).contiguous()  # [P, d, n_fit]
    ref, _ = fit.sort(dim=-1)
    rows = x.transpose(1, 2).contiguous()  # [P, d, n]
    below = torch.searchsorted(ref, rows, side="left")
    above = torch.searchsorted(ref, rows, side="right")
    u = ((below + above).double() / 2 + 0.5) / (ref.shape[-1] + 1)
    z = torch.special.ndtri(u).float()
    return z.transpose(1, 2)


def standardize(x: torch.Tensor, train_idx: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Centre and scale each coordinate of a [P, n, d] stack by its training-row moments."""
    train = x[:, train_idx]
    mean = train.mean(dim=1, keepdim=True)
    std = train.std(dim=1, keepdim=True)
    return (x - mean) / (std + eps)


def _covariance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.transpose(1, 2) @ b / (a.shape[1] - 1)


def _inverse_sqrt(cov: torch.Tensor, ridge: float) -> torch.Tensor:
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype)
    scale = cov.diagonal(dim1=-2, dim2=-1).mean(-1, keepdim=True).unsqueeze(-1)
    evals, evecs = torch.linalg.eigh(cov + ridge * scale * eye)
    return evecs @ torch.diag_embed(evals.clamp_min(1e-12).rsqrt()) @ evecs.transpose(-1, -2)


def pca_directions(x: torch.Tensor, train_idx: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k principal directions of each pair's training rows: [P, d, k]."""
    train = x[:, train_idx].double()
    train = train - train.mean(dim=1, keepdim=True)
    _, evecs = torch.linalg.eigh(_covariance(train, train))
    return evecs[..., -k:].flip(-1).float()


def cca_directions(
    x: torch.Tensor, y: torch.Tensor, train_idx: torch.Tensor, k: int, ridge: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k canonical directions of each pair's training rows: ([P, dx, k], [P, dy, k])."""
    xt = x[:, train_idx].double()
    yt = y[:, train_idx].double()
    xt = xt - xt.mean(dim=1, keepdim=True)
    yt = yt - yt.mean(dim=1, keepdim=True)
    wx = _inverse_sqrt(_covariance(xt, xt), ridge)
    wy = _inverse_sqrt(_covariance(yt, yt), ridge)
    u, _, vh = torch.linalg.svd(wx @ _covariance(xt, yt) @ wy, full_matrices=False)
    return (wx @ u[..., :k]).float(), (wy @ vh.transpose(-1, -2)[..., :k]).float()


def random_directions(d: int, k: int, seed: int) -> torch.Tensor:
    """A seeded Gaussian projection [d, k]: the same matrix for the same (d, k, seed)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(d, k, generator=generator) / k**0.5


def reduce_pairs(
    x: torch.Tensor,
    y: torch.Tensor,
    train_idx: torch.Tensor,
    *,
    reduction: str,
    k: int,
    seed: int,
    ridge: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reduce each side of a [P, n, d] stack to at most k coordinates, then standardise.

    A side already no wider than k is only standardised.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}.")
    if reduction != "none" and k < 1:
        raise ValueError(f"reduce_dim must be a positive integer, got {k}.")
    x = standardize(x, train_idx)
    y = standardize(y, train_idx)
    if reduction == "none" or (x.shape[-1] <= k and y.shape[-1] <= k):
        return x, y
    if reduction == "cca":
        kk = min(k, x.shape[-1], y.shape[-1])
        ax, ay = cca_directions(x, y, train_idx, kk, ridge)
        return standardize(x @ ax, train_idx), standardize(y @ ay, train_idx)
    out = []
    for side in (x, y):
        if side.shape[-1] <= k:
            out.append(side)
            continue
        if reduction == "pca":
            side = side @ pca_directions(side, train_idx, k)
        else:
            side = side @ random_directions(side.shape[-1], k, seed)
        out.append(standardize(side, train_idx))
    return out[0], out[1]
