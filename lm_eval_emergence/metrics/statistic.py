"""A state statistic's record from its per-block values: the baselines' common last step.

Every intrinsic baseline (`spectral.py`, `dispersion.py`) computes one number per block and
projection, on all documents and with each jackknife fold of documents left out ([1 + G, L, R]);
the reported value is the mean over blocks of each block's mean over its projections, and its
standard error covers the documents and the projections (`uncertainty.py`).
"""

from __future__ import annotations

from typing import Any

import torch

from ..capture import Capture, MomentCapture
from ..records import LayerStatistic, StateStatistic
from ..uncertainty import Spread, standard_error

__all__ = ["state_statistic"]


def _spread(values: torch.Tensor) -> Spread:
    """The spread of the mean over blocks of the mean over projections of `values` [1 + G, L, R]
    (all rows, then each fold left out)."""
    blocks = values.shape[1]
    return Spread(
        value=float(values[0].mean()),
        left_out=tuple(values[1:].mean((1, 2)).tolist()),
        projections=tuple(tuple(row) for row in (values[0] / blocks).tolist()),
    )


def state_statistic(
    name: str,
    values: torch.Tensor,
    capture: Capture | MomentCapture,
    *,
    seed: int,
    seconds: float,
    options: dict[str, Any] | None = None,
) -> StateStatistic:
    """The record of statistic `name` whose per-block, per-projection values on all rows and
    with each fold left out are `values` [1 + G, L, R]."""
    rows = []
    for i, layer in enumerate(capture.layers):
        block = values[:, i : i + 1]
        rows.append(
            LayerStatistic(layer, float(block[0].mean()), standard_error(_spread(block)).total)
        )
    spread = _spread(values)
    info = capture.info
    return StateStatistic(
        name=name,
        value=spread.value,
        stderr=standard_error(spread).total,
        per_layer=rows,
        spread=spread.to_dict(),
        n=capture.token_ids.shape[0],
        n_folds=values.shape[0] - 1,
        seed=seed,
        state_dim=info.state_dim,
        projection_dim=None if info.state_dim == info.hidden_dim else info.settings.projection_dim,
        projections=capture.projections,
        options=dict(options or {}),
        seconds=seconds,
    )
