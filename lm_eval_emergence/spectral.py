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

import torch

from .capture import Capture, MomentCapture
from .capture.blocks import by_replicate
from .estimators.moments import (
    DEFAULT_FOLDS,
    PairMoments,
    moments_of_samples,
    stack_pairs,
)
from .records import LayerSpectrum, SpectralResult
from .uncertainty import Spread, standard_error

__all__ = [
    "diff_erank",
    "effective_rank",
    "matrix_entropy_bits",
    "spectrum",
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


def _last_position_moments(capture: Capture | MomentCapture, folds: int, seed: int) -> PairMoments:
    """Moments at the last token, one pair per block and projection (pair l * R + r): streamed,
    those of (input, target); kept, those of the output alone (an empty x side: only y's
    moments are read)."""
    last = capture.positions.index(capture.token_ids.shape[1] - 1)
    r_count = capture.projections
    if isinstance(capture, MomentCapture):
        picked = [m.select([last * r_count + r for r in range(r_count)]) for m in capture.macro]
        return stack_pairs(picked)
    y = by_replicate(capture.macro_outputs[:, :, last].float(), r_count)  # [L, N, R, k]
    y = y.transpose(1, 2).flatten(0, 1)  # [L * R, N, k]
    return moments_of_samples(y[..., :0], y, folds, seed)


def _spread(values: torch.Tensor) -> Spread:
    """The spread of the mean over blocks of the mean over projections of `values` [1 + G, L, R]
    (all rows, then each fold left out)."""
    blocks = values.shape[1]
    return Spread(
        value=float(values[0].mean()),
        left_out=tuple(values[1:].mean((1, 2)).tolist()),
        projections=tuple(tuple(row) for row in (values[0] / blocks).tolist()),
    )


def spectrum(
    capture: Capture | MomentCapture,
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    alpha: float = 1.0,
) -> SpectralResult:
    """erank and matrix entropy of every captured block's output at the last token.

    States kept in memory are split into `folds` jackknife folds by `seed` (the rule of the IE
    estimate, `jackknife_fold_ids`); streamed moments carry their own folds. Raises ValueError
    for a block whose states do not vary.
    """
    t0 = time.perf_counter()
    n = capture.token_ids.shape[0]
    r_count = capture.projections
    moments = _last_position_moments(capture, folds, seed)
    target = capture.target if isinstance(capture, MomentCapture) else "output"
    cov, mean = _output_moments(moments, target)  # [1 + F, L * R, D, D], [1 + F, L * R, D]
    # the raw rows' second moment: (n-1)/n of the covariance plus the mean's outer product
    counts = moments.row_counts()  # [1 + F]
    scale = ((counts - 1) / counts)[:, None, None, None]
    raw = cov * scale + mean[..., :, None] * mean[..., None, :]
    shape = (len(counts), len(capture.layers), r_count)
    erank = effective_rank(cov).reshape(shape)  # [1 + F, L, R]
    entropy = matrix_entropy_bits(raw, alpha).reshape(shape)
    rows = []
    for i, layer in enumerate(capture.layers):
        block_erank = standard_error(_spread(erank[:, i : i + 1]))
        block_entropy = standard_error(_spread(entropy[:, i : i + 1]))
        rows.append(
            LayerSpectrum(
                layer=layer,
                erank=float(erank[0, i].mean()),
                erank_stderr=block_erank.total,
                matrix_entropy_bits=float(entropy[0, i].mean()),
                matrix_entropy_stderr_bits=block_entropy.total,
            )
        )
    erank_spread, entropy_spread = _spread(erank), _spread(entropy)
    erank_se, entropy_se = standard_error(erank_spread), standard_error(entropy_spread)
    projection = capture.info.settings.projection_dim
    return SpectralResult(
        erank=erank_spread.value,
        erank_stderr=erank_se.total,
        matrix_entropy_bits=entropy_spread.value,
        matrix_entropy_stderr_bits=entropy_se.total,
        per_layer=rows,
        n=n,
        n_folds=len(counts) - 1,
        seed=seed,
        alpha=float(alpha),
        state_dim=capture.info.state_dim,
        projection_dim=None if capture.info.state_dim == capture.info.hidden_dim else projection,
        projections=r_count,
        erank_spread=erank_spread.to_dict(),
        matrix_entropy_spread=entropy_spread.to_dict(),
        seconds=time.perf_counter() - t0,
    )


def diff_erank(model: SpectralResult, control: SpectralResult) -> tuple[float, float]:
    """Diff-eRank = erank(control) - erank(model) and its paired stderr (the two were measured
    on the same documents, folds and projections)."""
    if (model.n, model.n_folds, model.layers, model.projections) != (
        control.n,
        control.n_folds,
        control.layers,
        control.projections,
    ):
        raise ValueError(
            "Diff-eRank needs the model and its control measured on the same documents, folds, "
            f"blocks and projections; got n={model.n}/{control.n}, "
            f"folds={model.n_folds}/{control.n_folds}"
        )
    difference = Spread.from_dict(control.erank_spread).minus(Spread.from_dict(model.erank_spread))
    return difference.value, standard_error(difference).total
