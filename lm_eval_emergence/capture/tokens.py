"""Micro states: each distinct token fed alone, once, kept as a table looked up per position."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import RandomProjection, find_blocks
from .passes import check_vocab, run_passes

__all__ = ["MIN_MICRO_BATCH", "TokenTable", "merge_tables", "token_table"]

#: Micro sequences are one or two tokens long, so their batches are at least this large.
MIN_MICRO_BATCH = 64


@dataclass(eq=False)
class TokenTable:
    """Micro states: block input and raw output of each distinct token fed alone."""

    token_ids: torch.Tensor  # [U] int64
    inputs: torch.Tensor  # [L, U, k]
    outputs: torch.Tensor  # [L, U, k]
    layers: list[int]

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


def merge_tables(tables: Sequence[TokenTable]) -> TokenTable:
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
    return TokenTable(
        ids[index], inputs.index_select(1, index), outputs.index_select(1, index), unique[0].layers
    )


def token_table(
    model: nn.Module,
    token_ids: torch.Tensor,
    *,
    bos_token_id: int | None,
    layers: list[int],  # block indices, resolved by the plan
    batch_size: int,
    projection: RandomProjection | None,
    progress: bool,
) -> TokenTable:
    """Block input and raw output of each given (distinct) token fed alone, as a table.

    Each token runs as a length-1 sequence, or as `[bos, tok]` read at position 1 when
    `bos_token_id` is not None; each row costs a forward pass.
    """
    ids = torch.as_tensor(token_ids, dtype=torch.long).flatten().cpu()
    if ids.numel() == 0:
        raise ValueError("token_ids is empty; pass at least one token id")
    singles = ids.unsqueeze(1)  # [U, 1]
    check_vocab(
        model,
        singles
        if bos_token_id is None
        else torch.cat([ids, ids.new_tensor([bos_token_id])]).unsqueeze(1),
    )
    blocks = find_blocks(model)
    if bos_token_id is not None:
        singles = torch.cat([torch.full_like(singles, bos_token_id), singles], dim=1)  # [U, 2]
    read_at = [singles.shape[1] - 1]
    inputs, outputs, _, _ = run_passes(
        model, blocks, singles, layers, read_at, batch_size, projection, progress, "micro"
    )
    return TokenTable(ids, inputs[:, :, 0], outputs[:, :, 0], list(layers))
