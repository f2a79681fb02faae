"""Checks and conversions of estimator inputs: bad data fails here, with the fix in the message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

#: Below this many samples no split into train and held-out data leaves enough of either.
MIN_SAMPLES = 64

ArrayLike = torch.Tensor | np.ndarray


def as_matrix(value: Any, name: str) -> torch.Tensor:
    """``value`` as a float32 CPU tensor of shape [n, d], or a ValueError that says why not."""
    if isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.number):
            raise TypeError(f"{name} must be numeric, got a numpy array of dtype {value.dtype}.")
        tensor = torch.from_numpy(np.ascontiguousarray(value))
    elif isinstance(value, torch.Tensor):
        tensor = value.detach()
    else:
        raise TypeError(
            f"{name} must be a torch.Tensor or numpy.ndarray of shape [n, d], "
            f"got {type(value).__name__}."
        )
    if tensor.dim() == 1:
        raise ValueError(
            f"{name} has shape {tuple(tensor.shape)}: expected [n, d]. "
            f"For one-dimensional samples pass {name}.reshape(-1, 1)."
        )
    if tensor.dim() != 2:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}: expected rank 2, [n, d].")
    if tensor.is_complex():
        raise TypeError(f"{name} is complex; mutual information needs real-valued samples.")
    tensor = tensor.to(device="cpu", dtype=torch.float32)
    if not torch.isfinite(tensor).all():
        bad = int((~torch.isfinite(tensor)).any(dim=1).sum())
        raise ValueError(
            f"{name} contains NaN or inf in {bad} of {tensor.shape[0]} rows; "
            "drop or repair those samples before estimating."
        )
    return tensor


def require_samples(n: int, fix: str = "use more sequences") -> None:
    """Raise a ValueError unless `n` samples are enough for an MI estimate; `fix` ends it."""
    if n < MIN_SAMPLES:
        raise ValueError(
            f"{n} samples is below the minimum of {MIN_SAMPLES} for an MI estimate "
            f"(a held-out split needs both halves populated); {fix}."
        )


def check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    """Raise a ValueError unless x and y hold the same, sufficient number of samples."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x has {x.shape[0]} samples and y has {y.shape[0]}: MI needs paired samples, "
            "one row of x for each row of y."
        )
    require_samples(x.shape[0])


def as_pairs(
    xs: ArrayLike | Sequence[ArrayLike], ys: ArrayLike | Sequence[ArrayLike]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Accept a [P, n, d] stack or a sequence of [n, d] matrices per side; validate each pair."""
    xs_list = _split_stack(xs, "xs")
    ys_list = _split_stack(ys, "ys")
    if len(xs_list) != len(ys_list):
        raise ValueError(f"got {len(xs_list)} x matrices and {len(ys_list)} y matrices.")
    if not xs_list:
        raise ValueError("no (x, y) pairs given.")
    for i, (x, y) in enumerate(zip(xs_list, ys_list, strict=True)):
        xs_list[i] = as_matrix(x, f"xs[{i}]")
        ys_list[i] = as_matrix(y, f"ys[{i}]")
        check_pair(xs_list[i], ys_list[i])
    return xs_list, ys_list


def _split_stack(value: ArrayLike | Sequence[ArrayLike], name: str) -> list[Any]:
    if isinstance(value, torch.Tensor | np.ndarray):
        if value.ndim != 3:
            raise ValueError(
                f"{name} has shape {tuple(value.shape)}: pass a [P, n, d] stack "
                "or a list of [n, d] matrices."
            )
        return list(value)
    return list(value)
