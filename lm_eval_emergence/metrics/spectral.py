"""Spectral baselines of the states IE is computed from: effective rank and matrix entropy.

The cheaper intrinsic metrics a reader compares IE with, read from the second moments of the
same captured states (no forward pass of their own; streamed or kept alike):

- **erank** (Roy & Vetterli 2007, as in Diff-eRank, Wei et al., NeurIPS 2024): exp of the
  Shannon entropy of the eigenvalues of a block's output covariance scaled to sum 1, the
  effective number of directions the states spread over (1 ... k). **Diff-eRank** is
  erank(random-weights copy) - erank(model), the paper's sign (its code computes
  `erank2 - erank1`, untrained minus trained): positive when training reduced the rank.
- **matrix entropy** (Skean et al., "Layer by Layer", ICML 2025: the order-alpha matrix-based
  entropy of the Gram matrix of the rows, K = Z Z^T, whose nonzero eigenvalues are those of
  Z^T Z), in bits, of the raw rows: not centred, so it also sees the common direction that
  residual streams share (anisotropy), which erank removes. alpha = 1 is von Neumann's.

Both come from the moments of each block's output y at the last token over the N documents
(with `ie_target=update` the moments hold (x, y - x) and y's are rebuilt from them exactly). The
departures from the papers, forced by reading moments instead of rows: the matrix is the
dataset-level one (one row per document, as Skean et al.'s dataset entropy), not the tokens of
one text (Wei et al.); its rows are not scaled to unit length each (Wei et al. normalise every
centred row); and the states are those captured, so under the default seeded projection to k
channels both metrics describe the projected states (docs/validity.md measures how far that
moves them; `ie_projection_dim=none` keeps the full width).

Each block's value is the mean over its independent projections, and a model's the mean over
blocks. Standard errors, as for IE (`uncertainty.py`): the delete-a-fold jackknife over the same
seeded folds as the IE estimate, applied to the mean over blocks (the blocks share the
documents, so no independence is assumed), plus the spread over the projections; paired fold by
fold and projection by projection for Diff-eRank.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from .. import heap
from ..capture import Capture, MomentCapture
from ..capture.blocks import by_replicate
from ..estimators.moments import DEFAULT_FOLDS, PairMoments, moments_of_samples
from ..records import StateStatistic
from ..uncertainty import Spread, standard_error
from .statistic import state_statistic

__all__ = [
    "effective_rank",
    "erank",
    "matrix_entropy",
    "matrix_entropy_bits",
    "paired_difference",
]


def _spectrum(matrix: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of symmetric PSD matrices [..., D, D] scaled to sum 1 (float64)."""
    values = torch.linalg.eigvalsh(matrix.double()).clamp_min(0.0)
    total = values.sum(-1, keepdim=True)
    if bool((total <= 0).any()):
        raise ValueError("a matrix of states with no variance has no spectrum (all rows equal?)")
    return values / total


def effective_rank(covariance: torch.Tensor) -> torch.Tensor:
    """exp(-sum p ln p) of the eigenvalues p of covariances [..., D, D] scaled to sum 1."""
    p = _spectrum(covariance)
    return torch.exp(-(torch.special.xlogy(p, p)).sum(-1))


def matrix_entropy_bits(matrix: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Order-`alpha` Renyi entropy in bits of the eigenvalues of [..., D, D] scaled to sum 1:
    -sum p log2 p at alpha = 1, log2(sum p^alpha) / (1 - alpha) otherwise."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    p = _spectrum(matrix)
    if alpha == 1:
        return -(torch.special.xlogy(p, p)).sum(-1) / math.log(2)
    return torch.log2((p**alpha).sum(-1)) / (1.0 - alpha)


def _output_moments(moments: PairMoments, target: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Covariance [1 + F, P, D, D] and mean [1 + F, P, D] of each pair's block output y, from
    moments of (x, y) or, for target "update", of (x, y - x) (y = x + u: exact)."""
    covs, means = moments.covariances(), moments.means()
    dx = moments.dx
    if target == "output":
        return covs[..., dx:, dx:], means[..., dx:]
    if target != "update" or moments.dy != dx:
        raise ValueError(f"cannot rebuild the block output from target {target!r}")
    c = covs[..., :dx, :dx] + covs[..., :dx, dx:] + covs[..., dx:, :dx] + covs[..., dx:, dx:]
    return c, means[..., :dx] + means[..., dx:]


def _last_position_moments(
    capture: Capture | MomentCapture, slot: int, folds: int, seed: int
) -> PairMoments:
    """Block slot `slot`'s moments at the last token, one pair per projection: streamed, those
    of (input, target); kept, those of the output alone (an empty x side: only y's moments are
    read)."""
    last = capture.positions.index(capture.token_ids.shape[1] - 1)
    r_count = capture.projections
    if isinstance(capture, MomentCapture):
        return capture.macro[slot].select([last * r_count + r for r in range(r_count)])
    y = by_replicate(capture.macro_outputs[slot, :, last].float(), r_count)  # [N, R, k]
    y = y.transpose(0, 1)  # [R, N, k]
    return moments_of_samples(y[..., :0], y, folds, seed)


def _per_block(
    capture: Capture | MomentCapture, folds: int, seed: int, statistic: Callable
) -> torch.Tensor:
    """`statistic(cov, raw)` of every block's output at the last token under each projection,
    [1 + F, L, R]: from each block's covariance [1 + F, R, D, D] and raw second moment (the
    same shape), one block at a time (issue 35: all blocks' at once were the estimation step's
    transient peak)."""
    target = capture.target if isinstance(capture, MomentCapture) else "output"
    values = []
    for slot in range(len(capture.layers)):
        moments = _last_position_moments(capture, slot, folds, seed)
        cov, mean = _output_moments(moments, target)
        # the raw rows' second moment: (n-1)/n of the covariance plus the mean's outer product
        counts = moments.row_counts()
        scale = ((counts - 1) / counts)[:, None, None, None]
        raw = cov * scale + mean[..., :, None] * mean[..., None, :]
        values.append(statistic(cov, raw))
        heap.release()  # the block's freed tensors, before the next block's (heap.py)
    return torch.stack(values, dim=1)


def erank(
    capture: Capture | MomentCapture, *, folds: int = DEFAULT_FOLDS, seed: int = 0
) -> StateStatistic:
    """The effective rank of every captured block's output covariance at the last token.

    States kept in memory are split into `folds` jackknife folds by `seed` (the rule of the IE
    estimate, `jackknife_fold_ids`); streamed moments carry their own folds. Raises ValueError
    for a block whose states do not vary.
    """
    t0 = time.perf_counter()
    values = _per_block(capture, folds, seed, lambda cov, raw: effective_rank(cov))
    return state_statistic("erank", values, capture, seed=seed, seconds=time.perf_counter() - t0)


def matrix_entropy(
    capture: Capture | MomentCapture,
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    alpha: float = 1.0,
) -> StateStatistic:
    """The order-`alpha` matrix entropy (bits) of every captured block's raw outputs at the
    last token (folds as `erank`)."""
    t0 = time.perf_counter()
    values = _per_block(capture, folds, seed, lambda cov, raw: matrix_entropy_bits(raw, alpha))
    return state_statistic(
        "matrix_entropy",
        values,
        capture,
        seed=seed,
        seconds=time.perf_counter() - t0,
        options={"alpha": float(alpha)},
    )


def paired_difference(model: StateStatistic, control: StateStatistic) -> tuple[float, float]:
    """control - model for one statistic and its paired stderr (the two were measured on the
    same documents, folds and projections): Diff-eRank for the effective rank."""
    if (model.n, model.n_folds, model.layers, model.projections) != (
        control.n,
        control.n_folds,
        control.layers,
        control.projections,
    ):
        raise ValueError(
            f"a difference of {model.name} against the control needs both measured on the same "
            f"documents, folds, blocks and projections; got n={model.n}/{control.n}, "
            f"folds={model.n_folds}/{control.n_folds}"
        )
    difference = Spread.from_dict(control.spread).minus(Spread.from_dict(model.spread))
    return difference.value, standard_error(difference).total
