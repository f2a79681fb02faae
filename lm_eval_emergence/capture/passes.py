"""Batched forward passes with the block hooks on, and the memory they need.

`run_passes` is the one loop over batches (macro sequences and micro tokens alike); an
out-of-memory error or a dtype the device cannot run becomes a `CaptureResourceError` that names
the setting to change, and `fitting_batch_size` finds lm-eval's `--batch_size auto`.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
from accelerate.utils import find_executable_batch_size
from torch import nn

from ..settings import EmergenceConfigError
from .blocks import (
    MomentSink,
    RandomProjection,
    Recorder,
    StateBuffers,
    StopForward,
    input_embeddings,
    model_device,
)

__all__ = ["CaptureResourceError", "fitting_batch_size", "forward_error"]


def as_input_ids(input_ids: Any) -> torch.Tensor:
    """A 2-D int64 CPU tensor from a tensor or a list of equal-length token lists."""
    if not isinstance(input_ids, torch.Tensor):
        if not isinstance(input_ids, Sequence) or isinstance(input_ids, (str, bytes)):
            raise ValueError(
                "input_ids must be a 2-D integer tensor [n, T] or a list of equal-length token "
                f"id lists, got {type(input_ids).__name__}"
            )
        rows = list(input_ids)
        if rows and all(isinstance(r, int) for r in rows):
            raise ValueError(
                "input_ids must be 2-D [n, T] (a list of token id lists); got one flat list: wrap "
                "a single sequence as [ids]"
            )
        lengths = sorted({len(r) for r in rows})
        if len(lengths) > 1:
            raise ValueError(
                f"all sequences must have equal token length, got lengths {lengths}; pad, "
                "truncate or filter them to one length T first"
            )
        input_ids = torch.tensor(rows, dtype=torch.long)
    if input_ids.dim() != 2:
        raise ValueError(
            f"input_ids must be 2-D [n, T] (n sequences of equal token length T), got shape "
            f"{tuple(input_ids.shape)}"
        )
    if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
        raise ValueError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
    if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids is empty (shape {tuple(input_ids.shape)})")
    return input_ids.detach().to("cpu", torch.long)


def check_vocab(model: nn.Module, ids: torch.Tensor, what: str = "token ids") -> None:
    emb = input_embeddings(model)
    vocab = getattr(emb, "num_embeddings", None)
    if vocab is None:
        return
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab:
        raise ValueError(
            f"{what} must lie in [0, {vocab - 1}] (the model's vocabulary), got {lo}..{hi}"
        )


# --------------------------------------------------------------------------------------------
# The passes


def run_passes(
    model: nn.Module,
    blocks: nn.ModuleList,
    input_ids: torch.Tensor,
    layers: list[int],
    positions: list[int],
    batch_size: int,
    projection: RandomProjection | None,
    progress: bool,
    desc: str,
    next_token: bool = False,
    sink: StateBuffers | MomentSink | None = None,
    score_ids: Sequence[Sequence[int]] | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Batched forward passes with hooks on `layers`: (inputs, outputs, greedy next ids,
    scored log-probabilities).

    With `next_token` the pass runs to the LM head and the argmax of the last position's logits
    is kept (the model's greedy continuation); otherwise it stops after the last hooked block.
    `score_ids` (one id set per row, with `next_token`) also keeps, per row, the natural log of
    the probability mass the next-token distribution puts on its ids. The states go to `sink`
    (default: CPU buffers, returned; a `MomentSink` keeps only their moments, and the first two
    returned values are None).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    device = model_device(model)
    n, seq_len = input_ids.shape
    starts = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="batch")
    was_training = model.training
    model.eval()
    greedy = torch.empty(n, dtype=torch.long) if next_token else None
    scores = None
    if score_ids is not None:
        if not next_token:
            raise ValueError("score_ids needs next_token=True (the pass must reach the LM head)")
        _check_score_ids(model, score_ids, n)
        scores = torch.empty(n, dtype=torch.float64)
    keeps_last_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
    try:
        if sink is None:
            sink = StateBuffers(len(layers), n, len(positions))
        recorder = Recorder(blocks, layers, positions, projection, sink, stop_early=not next_token)
        with recorder as rec, torch.no_grad():
            for start in starts:
                rows = slice(start, min(start + batch_size, n))
                kwargs: dict[str, Any] = {"input_ids": input_ids[rows].to(device)}
                if getattr(model, "config", None) is not None and hasattr(
                    model.config, "use_cache"
                ):
                    kwargs["use_cache"] = False
                if greedy is not None and keeps_last_logits:
                    kwargs["logits_to_keep"] = 1  # the LM head on the last position only
                rec.start_batch(rows, seq_len)
                try:
                    with contextlib.suppress(StopForward):  # raised after the last block
                        out = model(**kwargs)
                        if greedy is not None:
                            greedy[rows] = out.logits[:, -1].argmax(-1).cpu()
                        if scores is not None:
                            scores[rows] = _scored(out.logits[:, -1], score_ids[rows])
                except RuntimeError as exc:  # torch.OutOfMemoryError is one
                    translated = forward_error(exc, model, batch_size)
                    if translated is None:
                        raise
                    raise translated from exc
                rec.check_batch()
    finally:
        if was_training:
            model.train()
    if isinstance(sink, MomentSink):
        return None, None, greedy, scores
    assert sink.inputs is not None and sink.outputs is not None
    return sink.inputs, sink.outputs, greedy, scores


def _check_score_ids(model: nn.Module, score_ids: Sequence[Sequence[int]], n: int) -> None:
    if len(score_ids) != n:
        raise ValueError(f"score_ids must give one id set per sequence ({n}), got {len(score_ids)}")
    empty = [i for i, ids in enumerate(score_ids) if len(ids) == 0]
    if empty:
        raise ValueError(
            f"score_ids of sequences {empty[:5]} are empty: a log-probability of no continuation "
            "is -inf; give each sequence at least one correct next token id"
        )
    check_vocab(model, torch.tensor([int(t) for ids in score_ids for t in ids]), "score_ids")


def _scored(logits: torch.Tensor, score_ids: Sequence[Sequence[int]]) -> torch.Tensor:
    """ln sum_{i in ids} p(i) per row of next-token logits [B, V] (float64, on the CPU)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    width = max(len(ids) for ids in score_ids)
    index = torch.zeros(len(score_ids), width, dtype=torch.long)
    valid = torch.zeros(len(score_ids), width, dtype=torch.bool)
    for row, ids in enumerate(score_ids):
        index[row, : len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
        valid[row, : len(ids)] = True
    picked = logp.gather(1, index.to(logp.device)).cpu().double()
    return torch.logsumexp(picked.masked_fill(~valid, -math.inf), dim=1)


class CaptureResourceError(EmergenceConfigError):
    """The forward passes ran out of memory, or the model's dtype is not supported where it
    runs; the message names the setting to change."""


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def forward_error(
    exc: BaseException, model: nn.Module, batch_size: int
) -> CaptureResourceError | None:
    """`exc` of a forward pass as a `CaptureResourceError` naming the fix, where it has one
    (out of memory, a dtype an operation does not implement); None for any other error."""
    device = model_device(model)
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    if _is_oom(exc):
        return CaptureResourceError(
            f"out of memory in the forward passes of the emergence capture at batch size "
            f"{batch_size} on {device}: lower --batch_size (or ie_batch_size), or use "
            "--batch_size auto, which halves it until it fits; fewer blocks (ie_layers) or "
            f"positions also help. ({str(exc).splitlines()[0][:200]})"
        )
    text = str(exc)
    if "not implemented for" in text or "not supported for" in text:
        return CaptureResourceError(
            f"the model's dtype {dtype} is not supported on {device} by an operation of its "
            f"forward pass ({text.splitlines()[0][:200]}); load it in a dtype the device "
            "supports, e.g. --model_args dtype=float32 (or dtype=bfloat16 on a GPU)"
        )
    return None


def fitting_batch_size(
    model: nn.Module, seq_len: int, start: int, *, next_token: bool = True
) -> int:
    """The largest batch size, `start` halved until it fits, at which a forward pass over
    `seq_len` tokens runs without running out of memory (`--batch_size auto`).

    accelerate's `find_executable_batch_size` retries, halving as lm-eval's auto does; the probe
    is one pass of the capture's most expensive kind (the whole model, the LM head on the last
    position), as lm-eval probes before its loglikelihood passes.
    """
    device = model_device(model)
    keeps_last = "logits_to_keep" in inspect.signature(model.forward).parameters
    size = max(1, int(start))
    failure: list[RuntimeError] = []

    def halve() -> int:
        nonlocal size
        if size == 1:  # nothing smaller to try: report the out-of-memory error itself
            raise failure[-1]
        size //= 2
        return size

    @find_executable_batch_size(starting_batch_size=size, reduce_batch_size_fn=halve)
    def probe(batch_size: int) -> int:
        ids = torch.ones((batch_size, seq_len), dtype=torch.long, device=device)
        kwargs: dict[str, Any] = {"input_ids": ids, "use_cache": False}
        if keeps_last and next_token:
            kwargs["logits_to_keep"] = 1
        try:
            with torch.no_grad():
                model(**kwargs)
        except RuntimeError as exc:
            failure.append(exc)
            raise
        return batch_size

    try:
        return probe()
    except RuntimeError as exc:  # torch.OutOfMemoryError is one
        translated = forward_error(exc, model, size)
        if translated is None:
            raise
        raise translated from exc
