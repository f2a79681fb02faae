"""What one emergence request returns: a small, picklable payload per document.

The harness gathers every document's `process_results` values to rank 0 (pickled), so a payload
holds only what the estimate needs: the macro states of the requested blocks at the requested
positions, randomly projected and in half precision, and the document's token ids. Micro states
(each token fed alone) are a per-call `TokenTable` and the capture settings a per-call
`CaptureInfo`, both shared by reference by every payload of that call, so pickling a rank's
results writes each once. The estimation settings are not in the payload: the task holds them.

Size per document (layers L, positions P, projection k, 2 bytes a number): macro 2*L*P*k*2 bytes;
for a 7B model (L=32) with k=64 and P=1 that is 8 KiB, never the hidden size d=4096.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..capture import Capture, CaptureInfo, TokenTable, merge_tables

__all__ = ["OUTCOMES", "EmergenceFeatures", "gather_capture"]

#: What a model does after a list: names an unlisted entity of the category (the ICL `acc`),
#: repeats a listed one (the hallucination-like error), or anything else.
OUTCOMES = ("correct", "repeat", "other")


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
    next_token_id: int | None = None
    next_token: str | None = None
    seconds: float = 0.0  # this document's share of its forward passes (macro batch + micro)
    control: EmergenceFeatures | None = None  # the same document on the random-weights copy
    outcome: str | None = None  # what the model did next (OUTCOMES), set by the shots task

    @property
    def payload_bytes(self) -> int:
        """Bytes of this document's own states and token ids (the shared table not counted)."""
        macro = self.macro_inputs.numel() + self.macro_outputs.numel()
        return int(macro * self.macro_inputs.element_size() + 8 * len(self.token_ids))

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


def gather_capture(items: Sequence[EmergenceFeatures]) -> Capture:
    """One `Capture` of a task's payloads (from every rank), in document order."""
    _same(items, "capture settings", lambda f: f.info.settings)
    _same(items, "layers", lambda f: f.info.layers)
    _same(items, "captured positions", lambda f: f.positions)
    _same(items, "token length", lambda f: len(f.token_ids))
    items = sorted(items, key=lambda f: f.doc_id)  # the same order whatever the rank split
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
