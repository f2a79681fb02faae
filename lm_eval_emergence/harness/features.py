"""What one emergence request returns: a small, picklable payload per document.

The harness gathers every document's `process_results` values to rank 0 (pickled), so a payload
holds only what the estimate needs: the macro states of the requested blocks at the requested
positions, randomly projected and in half precision, and the document's token ids. Micro states
(each token fed alone) are a per-call `TokenTable` and the capture settings a per-call
`CaptureInfo`, both shared by reference by every payload of that call, so pickling a rank's
results writes each once. The estimation settings are not in the payload: the task holds them.

Size per document (layers L, positions P, projection k, 2 bytes a number): macro 2*L*P*k*2 bytes;
for a 7B model (L=32) with k=64 and P=1 that is 8 KiB, never the hidden size d=4096.

Streamed (wherever the protocol's estimator reads second moments, at every N): a payload holds
no states, only its token ids and a reference to the `StreamedMoments` of the documents its rank
captured with it (per block and position, folds x 2k(2k + 1)/2 float64 numbers, the packed
cross-products: 21 MB for L=32, P=1, k=64, 10 folds), so what a rank sends to rank 0 does not
grow with the number of documents. Rank 0 adds the ranks' moments up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..capture import (
    Capture,
    CaptureInfo,
    MomentCapture,
    StreamSpec,
    TokenTable,
    merge_tables,
)
from ..estimators.moments import PairMoments

__all__ = ["EmergenceFeatures", "StreamedMoments", "gather_capture", "gather_moments"]


@dataclass(eq=False)
class StreamedMoments:
    """The moments of the macro states of some documents of one task, captured together."""

    macro: list[PairMoments]  # one per block, its pairs the captured positions
    stream: StreamSpec  # the task's: its documents, their folds, the y side
    doc_ids: tuple[int, ...]  # the documents added (each once)
    unit_sums: list[torch.Tensor]  # one per block: the unit-length outputs' sums per fold

    @property
    def nbytes(self) -> int:
        units = sum(u.numel() * u.element_size() for u in self.unit_sums)
        return sum(m.nbytes for m in self.macro) + units


@dataclass(eq=False)
class EmergenceFeatures:
    """One document's contribution to an IE estimate (see the module docstring)."""

    task_name: str
    doc_id: int
    token_ids: tuple[int, ...]
    positions: tuple[int, ...]  # token indices of the macro states (the last is T-1)
    macro_inputs: torch.Tensor | None  # [L, P, k]; None when streamed
    macro_outputs: torch.Tensor | None  # [L, P, k]; None when streamed
    micro: TokenTable
    info: CaptureInfo
    next_token_id: int | None = None
    next_token: str | None = None
    next_logprob: float | None = None  # ln of the next-token probability of the correct ids
    seconds: float = 0.0  # this document's share of its forward passes (macro batch + micro)
    control: EmergenceFeatures | None = None  # the same document on the random-weights copy
    outcome: str | None = None  # what the model did next (`metrics.table.OUTCOMES`)
    moments: StreamedMoments | None = None  # streamed: shared by the documents captured with it

    @property
    def payload_bytes(self) -> int:
        """Bytes of this document's own states and token ids (shared tables and moments not
        counted)."""
        ids = 8 * len(self.token_ids)
        if self.macro_inputs is None or self.macro_outputs is None:
            return ids
        macro = self.macro_inputs.numel() + self.macro_outputs.numel()
        return int(macro * self.macro_inputs.element_size() + ids)

    def __repr__(self) -> str:
        nxt = "" if self.next_token is None else f", next={self.next_token!r}"
        return (
            f"EmergenceFeatures(T={len(self.token_ids)}, layers={len(self.info.layers)}, "
            f"k={self.info.state_dim}, positions={len(self.positions)}{nxt})"
        )

    __str__ = __repr__


def _same(items: Sequence[EmergenceFeatures], what: str, get: object) -> None:
    values = {repr(get(f)) for f in items}  # type: ignore[operator]
    if len(values) > 1:
        raise RuntimeError(
            f"the documents of task {items[0].task_name} differ in {what} ({sorted(values)[:3]}); "
            "one estimate needs one setting"
        )


def _checked_alike(items: Sequence[EmergenceFeatures]) -> list[EmergenceFeatures]:
    _same(items, "capture settings", lambda f: f.info.settings)
    _same(items, "layers", lambda f: f.info.layers)
    _same(items, "captured positions", lambda f: f.positions)
    _same(items, "token length", lambda f: len(f.token_ids))
    _same(items, "streaming", lambda f: f.moments is None)
    return sorted(items, key=lambda f: f.doc_id)  # the same order whatever the rank split


def gather_capture(items: Sequence[EmergenceFeatures]) -> Capture:
    """One `Capture` of a task's payloads (from every rank), in document order."""
    items = _checked_alike(items)
    if items[0].moments is not None:
        raise RuntimeError(
            f"task {items[0].task_name}: its documents were streamed, so their states were not "
            "kept; use gather_moments"
        )
    return Capture(
        info=items[0].info,
        token_ids=torch.tensor([f.token_ids for f in items], dtype=torch.long),
        positions=list(items[0].positions),
        macro_inputs=torch.stack([f.macro_inputs for f in items], dim=1).float(),
        macro_outputs=torch.stack([f.macro_outputs for f in items], dim=1).float(),
        micro=merge_tables([f.micro for f in items]),
        seconds_macro=sum(f.seconds for f in items),  # this task's share, micro included
        seconds_micro=0.0,
    )


def gather_moments(items: Sequence[EmergenceFeatures]) -> MomentCapture:
    """One `MomentCapture` of a task's streamed payloads (from every rank): the moments of every
    rank and capture call added up, each document counted once."""
    items = _checked_alike(items)
    task = items[0].task_name
    parts = list({id(f.moments): f.moments for f in items if f.moments is not None}.values())
    if not parts:
        raise RuntimeError(f"task {task}: streamed payloads without moments")
    first = parts[0]
    _same(items, "stream settings", lambda f: f.moments.stream)
    doc_ids = [f.doc_id for f in items]
    added = sorted(d for part in parts for d in part.doc_ids)
    stream = first.stream
    if added != doc_ids or doc_ids != list(range(stream.rows)):
        raise RuntimeError(
            f"task {task}: the streamed moments hold documents {added[:5]}... ({len(added)}), the "
            f"task has {len(doc_ids)} of {stream.rows}; each must be added once"
        )
    macro = [
        moments[0].merged(moments[1:]) for moments in zip(*(p.macro for p in parts), strict=True)
    ]
    unit_sums = [sum(sums) for sums in zip(*(p.unit_sums for p in parts), strict=True)]
    return MomentCapture(
        info=items[0].info,
        token_ids=torch.tensor([f.token_ids for f in items], dtype=torch.long),
        positions=list(items[0].positions),
        macro=macro,
        micro=merge_tables([f.micro for f in items]),
        stream=stream,
        folds=stream.fold_ids(),
        unit_sums=unit_sums,  # type: ignore[arg-type]
        seconds_macro=sum(f.seconds for f in items),
        seconds_micro=0.0,
    )
