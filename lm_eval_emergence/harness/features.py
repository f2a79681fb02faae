"""What one emergence request returns: a small, picklable payload per document.

The harness gathers every document's `process_results` values to rank 0 (pickled), so a payload
holds only what the estimate needs: the macro states of the requested blocks at the requested
positions, randomly projected and in half precision, and the document's token ids. Micro states
(each token fed alone) are a per-call table shared by reference by every payload of that call, so
pickling a rank's results writes each table once.

Size per document (layers L, positions P, projection k, 2 bytes a number): macro 2*L*P*k*2 bytes;
for a 7B model (L=32) with k=64 and P=1 that is 8 KiB, never the hidden size d=4096.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .settings import IESettings

__all__ = ["CaptureInfo", "EmergenceFeatures", "TokenTable", "merge_tables"]


@dataclass(eq=False)
class CaptureInfo:
    """How the states were captured; one object per emergence call, shared by its payloads."""

    layers: list[int]
    projection_dim: int | None
    hidden_dim: int
    state_dim: int
    bos_token_id: int | None
    model_name: str
    n_parameters: int
    model_dtype: str
    state_dtype: str
    rank: int


@dataclass(eq=False)
class TokenTable:
    """Micro states: block input and output of each distinct token fed alone."""

    token_ids: torch.Tensor  # [U] int64
    inputs: torch.Tensor  # [L, U, k]
    outputs: torch.Tensor  # [L, U, k]

    def lookup(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 micro states [L, N, T, k] of the token ids [N, T]."""
        order = torch.argsort(self.token_ids)
        sorted_ids = self.token_ids[order]
        flat = ids.flatten()
        where = torch.searchsorted(sorted_ids, flat).clamp(max=len(sorted_ids) - 1)
        found = sorted_ids[where] == flat
        if not bool(found.all()):
            missing = sorted(set(flat[~found].tolist()))[:10]
            raise RuntimeError(f"no micro state was captured for token ids {missing}")
        index = order[where]
        shape = (self.inputs.shape[0], *ids.shape, self.inputs.shape[-1])
        return (
            self.inputs.index_select(1, index).float().reshape(shape),
            self.outputs.index_select(1, index).float().reshape(shape),
        )

    def __repr__(self) -> str:
        return f"TokenTable(tokens={len(self.token_ids)}, layers={self.inputs.shape[0]})"


def merge_tables(tables: list[TokenTable]) -> TokenTable:
    """One table from several (one per rank or call); a token seen twice keeps its first entry."""
    unique = list({id(t): t for t in tables}.values())
    if len(unique) == 1:
        return unique[0]
    ids = torch.cat([t.token_ids for t in unique])
    inputs = torch.cat([t.inputs for t in unique], dim=1)
    outputs = torch.cat([t.outputs for t in unique], dim=1)
    keep: dict[int, int] = {}
    for i, token in enumerate(ids.tolist()):
        keep.setdefault(token, i)
    index = torch.tensor(list(keep.values()), dtype=torch.long)
    return TokenTable(ids[index], inputs.index_select(1, index), outputs.index_select(1, index))


@dataclass(eq=False)
class EmergenceFeatures:
    """One document's contribution to an IE estimate (see the module docstring)."""

    task_name: str
    doc_id: int
    token_ids: tuple[int, ...]
    positions: tuple[int, ...]  # token indices of the macro states (the last is T-1)
    macro_inputs: torch.Tensor  # [L, P, k]
    macro_outputs: torch.Tensor  # [L, P, k]
    micro: TokenTable
    info: CaptureInfo
    settings: IESettings
    next_token_id: int | None = None
    next_token: str | None = None
    seconds: float = 0.0  # this document's share of its forward passes (macro batch + micro)
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        nxt = "" if self.next_token is None else f", next={self.next_token!r}"
        return (
            f"EmergenceFeatures(T={len(self.token_ids)}, layers={len(self.info.layers)}, "
            f"k={self.info.state_dim}, positions={len(self.positions)}{nxt})"
        )

    __str__ = __repr__
