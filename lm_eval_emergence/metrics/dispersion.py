"""Representation dispersion: how widely a block spreads the documents' last-token states.

Li, Li, Livescu & Zhou, "On the Predictive Power of Representation Dispersion in Language
Models" (arXiv 2506.24106, ICLR 2026): the mean pairwise cosine distance among hidden vectors,
which their models' perplexity falls with. Here, per block, of its outputs at the last token of
the N documents:

    D = 1 / (N (N - 1)) sum_{i != j} (1 - u_i . u_j) = 1 - (|sum_i u_i|^2 - N) / (N (N - 1))

with u_i the output scaled to unit length, so it needs only the per-fold sums of the u_i
(streamed by `capture.blocks.MomentSink`, or summed here from kept states). A departure from the
paper, as for the spectral baselines: under the default projection it describes the projected
states (cosines are preserved only approximately by a random projection), each block's value
the mean over its projections.
"""

from __future__ import annotations

import time

import torch

from ..capture import Capture, MomentCapture
from ..capture.blocks import by_replicate, unit_rows
from ..estimators.moments import DEFAULT_FOLDS, jackknife_fold_count, jackknife_fold_ids
from ..records import StateStatistic
from .statistic import state_statistic

__all__ = ["dispersion", "dispersion_from_sums"]


def dispersion_from_sums(sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """D from the sums of unit vectors [..., k] of `counts` [...] rows (broadcast)."""
    n = counts.to(sums.dtype)
    return 1.0 - ((sums * sums).sum(-1) - n) / (n * (n - 1))


def _unit_sums(
    capture: Capture | MomentCapture, folds: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per fold: the sums of the unit-length outputs at the last token, [F, L, R, k], and the
    row counts [F] (streamed sums carry their own folds; kept states are split by `seed`)."""
    n = capture.token_ids.shape[0]
    r_count = capture.projections
    last = capture.positions.index(capture.token_ids.shape[1] - 1)
    if isinstance(capture, MomentCapture):
        picked = [s[:, last * r_count : (last + 1) * r_count] for s in capture.unit_sums]
        sums = torch.stack(picked, dim=1)  # [F, L, R, k]
        fold_ids, n_folds = capture.folds, capture.n_folds
    else:
        fold_ids = jackknife_fold_ids(n, folds, seed)
        n_folds = jackknife_fold_count(n, folds)
        units = unit_rows(by_replicate(capture.macro_outputs[:, :, last].double(), r_count))
        sums = torch.zeros((n_folds, *units.shape[:1], *units.shape[2:]), dtype=torch.float64)
        sums.index_add_(0, fold_ids, units.transpose(0, 1))  # rows [N, L, R, k] into folds
    counts = torch.bincount(fold_ids, minlength=n_folds).double()
    return sums, counts


def dispersion(
    capture: Capture | MomentCapture, *, folds: int = DEFAULT_FOLDS, seed: int = 0
) -> StateStatistic:
    """The representation dispersion of every captured block's outputs at the last token, on
    all documents and with each fold left out (folds as the other baselines')."""
    t0 = time.perf_counter()
    sums, counts = _unit_sums(capture, folds, seed)
    held = counts > 0
    sums, counts = sums[held], counts[held]
    total, rows = sums.sum(0), counts.sum()
    all_sums = torch.cat([total[None], total[None] - sums])  # [1 + G, L, R, k]
    all_counts = torch.cat([rows[None], rows - counts])  # [1 + G]
    values = dispersion_from_sums(all_sums, all_counts[:, None, None])
    return state_statistic(
        "dispersion", values, capture, seed=seed, seconds=time.perf_counter() - t0
    )
