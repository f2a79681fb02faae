"""Capture the residual stream entering and leaving each decoder block of a Hugging Face causal LM.

Information Emergence compares I(h_l ; h_{l+1}) at two levels (docs/method-notes.md), where h_l is
the residual stream *entering* block l and h_{l+1} the *raw output* of block l. Those are read with
forward hooks on the blocks rather than from ``output_hidden_states``: in transformers the last
entry of ``hidden_states`` is the final norm applied to the last block's output, not the output.

- `plan_capture` + `capture_states`: the one path of an IE measurement (library, lm-eval adapter
  and benchmarks): capture settings in, one `Capture` (macro states, micro table, BOS,
  positions, projection, timings) out.
- `capture_macro`: sequences processed in context, states at chosen token positions.
- `capture_micro`: each token fed alone (optionally after BOS), one batched forward pass over the
  distinct token ids, then looked up for every (sequence, position).

The forward pass is stopped right after the last requested block (a private exception raised from
that block's hook), so the final norm, the LM head and any later blocks never run.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from .estimators.moments import PairMoments
from .settings import DEFAULT_BATCH_SIZE, CaptureSettings, EmergenceConfigError

__all__ = [
    "BlocksNotFoundError",
    "Capture",
    "CaptureInfo",
    "CaptureResourceError",
    "MomentCapture",
    "CapturePlan",
    "CapturedStates",
    "RandomProjection",
    "TokenTable",
    "capture_macro",
    "capture_micro",
    "capture_moments",
    "capture_states",
    "capture_token_table",
    "captured_width",
    "find_blocks",
    "fitting_batch_size",
    "forward_error",
    "hidden_size",
    "merge_tables",
    "model_bos_token_id",
    "num_layers",
    "plan_capture",
]

_LAYER_COUNT_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_BLOCK_LIST_NAMES = {"layers", "h", "blocks", "layer", "block", "decoder_layers"}
_BOS_MODEL_TYPES = {"llama", "gemma", "gemma2", "gemma3", "gemma3_text", "mistral"}


# --------------------------------------------------------------------------------------------
# Finding the blocks


class BlocksNotFoundError(ValueError):
    """No `nn.ModuleList` of the configured number of layers was found in the model."""


def _expected_num_layers(model: nn.Module) -> tuple[int | None, str]:
    """Configured number of decoder layers and the config key it came from."""
    config = getattr(model, "config", None)
    if config is None:
        return None, "model.config (missing)"
    configs = []
    get_text_config = getattr(config, "get_text_config", None)
    if callable(get_text_config):
        with contextlib.suppress(Exception):  # odd configs: fall back to the config itself
            configs.append(("text config", get_text_config()))
    configs.append(("config", config))
    for label, cfg in configs:
        for key in _LAYER_COUNT_KEYS:
            value = getattr(cfg, key, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value, f"{label}.{key}"
    return None, f"config.{'/'.join(_LAYER_COUNT_KEYS)} (none set)"


def find_blocks(model: nn.Module) -> nn.ModuleList:
    """Return the decoder block stack of a causal LM, found without a list of model classes.

    The stack is the `nn.ModuleList` whose length equals the configured number of layers
    (`num_hidden_layers`, `n_layer` or `num_layers` of `config.get_text_config()` / `config`).
    When several match, prefer lists of one block class, named like `layers`/`h`/`blocks`, and
    the shallowest. Raises `BlocksNotFoundError` listing the lists looked at otherwise.
    """
    expected, source = _expected_num_layers(model)
    seen: list[tuple[str, int]] = []
    matches: list[tuple[tuple[int, int, str], nn.ModuleList]] = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList):
            continue
        seen.append((name or "<model>", len(module)))
        if expected is None or len(module) != expected:
            continue
        homogeneous = len({type(child) for child in module}) == 1
        named_like = name.rsplit(".", 1)[-1] in _BLOCK_LIST_NAMES
        depth = name.count(".") if name else -1
        matches.append(((-(int(homogeneous) + int(named_like)), depth, name), module))
    if matches:
        return min(matches, key=lambda m: m[0])[1]
    looked_at = ", ".join(f"{n} (len {k})" for n, k in seen) or "none"
    want = f"{expected} ({source})" if expected is not None else f"unknown: {source}"
    raise BlocksNotFoundError(
        f"Could not find the decoder blocks of {type(model).__name__}: expected an nn.ModuleList "
        f"with as many entries as the configured number of layers, {want}. ModuleLists looked "
        f"at: {looked_at}. Check that the model's config states the number of decoder blocks "
        f"(num_hidden_layers, n_layer or num_layers) and that the blocks are held in one "
        f"nn.ModuleList; models built otherwise are not supported."
    )


def num_layers(model: nn.Module) -> int:
    """Number of decoder blocks of `model` (the length of `find_blocks(model)`)."""
    return len(find_blocks(model))


# --------------------------------------------------------------------------------------------
# Projection and results


class RandomProjection:
    """Seeded Gaussian random projection from d to k channels, scaled by 1/sqrt(k).

    Applied to hidden states as they are captured, so memory holds n*k numbers, never n*d. The
    matrix is drawn on the CPU from `torch.Generator().manual_seed(seed)`: the same (d, k, seed)
    gives the same matrix on every machine. Distances are preserved in expectation
    (Johnson-Lindenstrauss), and for k >= d the map is almost surely injective.
    """

    def __init__(self, d: int, k: int, seed: int = 0) -> None:
        if d <= 0 or k <= 0:
            raise ValueError(f"RandomProjection needs d > 0 and k > 0, got d={d}, k={k}")
        self.d = int(d)
        self.k = int(k)
        self.seed = int(seed)
        gen = torch.Generator().manual_seed(self.seed)
        self.matrix = torch.randn(self.d, self.k, generator=gen, dtype=torch.float32)
        self.matrix /= math.sqrt(self.k)
        self._on_device: dict[torch.device, torch.Tensor] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Project the last dimension of `x` (computed in float32 on `x`'s device)."""
        if x.shape[-1] != self.d:
            raise ValueError(
                f"RandomProjection expects {self.d} channels, got a tensor of shape "
                f"{tuple(x.shape)}; build it with d = the model's hidden size"
            )
        matrix = self._on_device.get(x.device)
        if matrix is None:
            matrix = self._on_device[x.device] = self.matrix.to(x.device)
        return x.float() @ matrix

    def __repr__(self) -> str:
        return f"RandomProjection(d={self.d}, k={self.k}, seed={self.seed})"


@dataclass
class CapturedStates:
    """Block inputs and raw outputs at chosen positions, float32 on the CPU."""

    layers: list[int]  # block indices captured
    inputs: torch.Tensor  # [n_layers, n, n_positions, k] float32, block input
    outputs: torch.Tensor  # [n_layers, n, n_positions, k] float32, block raw output
    positions: list[int]  # token positions captured (macro) or token index t (micro)
    bos_token_id: int | None = None  # micro only: the BOS used, None if none
    greedy_next_ids: torch.Tensor | None = None  # macro with next_token=True: argmax at the end


# --------------------------------------------------------------------------------------------
# Input validation


def _as_input_ids(input_ids: Any) -> torch.Tensor:
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


def _check_vocab(model: nn.Module, ids: torch.Tensor, what: str = "token ids") -> None:
    emb = _input_embeddings(model)
    vocab = getattr(emb, "num_embeddings", None)
    if vocab is None:
        return
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab:
        raise ValueError(
            f"{what} must lie in [0, {vocab - 1}] (the model's vocabulary), got {lo}..{hi}"
        )


def _resolve_layers(layers: Sequence[int] | None, n_blocks: int) -> list[int]:
    if layers is None:
        return list(range(n_blocks))
    if isinstance(layers, int):
        layers = [layers]
    out = set()
    for layer in layers:
        if not isinstance(layer, int) or isinstance(layer, bool):
            raise ValueError(f"layers must be integers, got {layer!r}")
        if not -n_blocks <= layer < n_blocks:
            raise ValueError(
                f"layer {layer} is out of range: this model has {n_blocks} blocks, valid indices "
                f"are 0..{n_blocks - 1} (or -{n_blocks}..-1)"
            )
        out.add(layer % n_blocks)
    if not out:
        raise ValueError("layers is empty; pass None for all blocks")
    return sorted(out)


def _resolve_positions(positions: str | Sequence[int], seq_len: int) -> list[int]:
    if isinstance(positions, str):
        if positions == "last":
            return [seq_len - 1]
        if positions == "all":
            return list(range(seq_len))
        raise ValueError(f"positions must be 'last', 'all' or a list of ints, got {positions!r}")
    if isinstance(positions, int):
        positions = [positions]
    out = []
    for pos in positions:
        if not isinstance(pos, int) or isinstance(pos, bool):
            raise ValueError(f"positions must be integers, got {pos!r}")
        if not -seq_len <= pos < seq_len:
            raise ValueError(
                f"position {pos} is out of range for sequences of {seq_len} tokens: valid "
                f"positions are 0..{seq_len - 1} (or -{seq_len}..-1)"
            )
        out.append(pos % seq_len)
    if not out:
        raise ValueError("positions is empty")
    return out


# --------------------------------------------------------------------------------------------
# Hooks


class _StopForward(Exception):
    """Raised by the last requested block's hook to end the forward pass early."""


def _input_embeddings(model: nn.Module) -> nn.Module | None:
    get = getattr(model, "get_input_embeddings", None)
    if callable(get):
        try:
            return get()
        except (NotImplementedError, AttributeError):
            return None
    return None


def _model_device(model: nn.Module) -> torch.device:
    emb = _input_embeddings(model)
    weight = getattr(emb, "weight", None)
    if isinstance(weight, torch.Tensor):
        return weight.device
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _block_input(args: tuple, kwargs: dict) -> torch.Tensor:
    if args and isinstance(args[0], torch.Tensor):
        return args[0]
    hidden = kwargs.get("hidden_states")
    if isinstance(hidden, torch.Tensor):
        return hidden
    raise RuntimeError(
        "could not read a decoder block's input: neither its first positional argument nor "
        "kwargs['hidden_states'] is a tensor"
    )


def _block_output(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise RuntimeError(f"could not read a decoder block's output (got {type(output).__name__})")


class _StateBuffers:
    """Where the hooks write by default: float32 CPU buffers [L, n, P, k] of inputs and outputs."""

    def __init__(self, n_layers: int, n: int, n_positions: int) -> None:
        self.shape = (n_layers, n, n_positions)
        self.inputs: torch.Tensor | None = None
        self.outputs: torch.Tensor | None = None

    def write(self, slot: int, rows: slice, x_in: torch.Tensor, x_out: torch.Tensor) -> None:
        """States [B, P, k] of block slot `slot` for rows `rows`, on the model's device."""
        if self.inputs is None:
            self.inputs = torch.empty((*self.shape, x_in.shape[-1]), dtype=torch.float32)
            self.outputs = torch.empty_like(self.inputs)
        self.inputs[slot, rows] = x_in.to("cpu", torch.float32)
        self.outputs[slot, rows] = x_out.to("cpu", torch.float32)  # type: ignore[index]


class _MomentSink:
    """Where the hooks write when streaming: one `PairMoments` per block (its pairs are the
    positions), accumulated on the block's device; the states themselves are dropped."""

    def __init__(self, n_layers: int, folds: torch.Tensor, n_folds: int, target: str) -> None:
        self.folds = folds  # [n] the fold of each row
        self.n_folds = n_folds
        self.target = target
        self.moments: list[PairMoments | None] = [None] * n_layers

    def write(self, slot: int, rows: slice, x_in: torch.Tensor, x_out: torch.Tensor) -> None:
        x = x_in.transpose(0, 1)  # [P, B, k]
        y = x_out.transpose(0, 1)
        if self.target == "update":
            y = y - x
        moments = self.moments[slot]
        if moments is None:
            moments = self.moments[slot] = PairMoments.empty(
                self.n_folds, x.shape[0], x.shape[-1], y.shape[-1], x.device
            )
        moments.add_rows(x, y, self.folds[rows])


class _Recorder:
    """The hooks on the blocks, writing one batch at a time into a sink."""

    def __init__(
        self,
        blocks: nn.ModuleList,
        layers: list[int],
        positions: list[int],
        projection: RandomProjection | None,
        sink: _StateBuffers | _MomentSink,
        stop_early: bool = True,
    ) -> None:
        self.stop_early = stop_early
        self.blocks = blocks
        self.layers = layers
        self.positions = positions
        self.projection = projection
        self.sink = sink
        self.rows = slice(0, 0)
        self.seq_len = 0
        self.seen: list[bool] = [False] * len(layers)
        self._pos_index: dict[torch.device, torch.Tensor] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> _Recorder:
        try:
            last = len(self.layers) - 1
            for slot, layer in enumerate(self.layers):
                hook = self._make_hook(slot, stop=self.stop_early and slot == last)
                handle = self.blocks[layer].register_forward_hook(hook, with_kwargs=True)
                self._handles.append(handle)
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def start_batch(self, rows: slice, seq_len: int) -> None:
        self.rows = rows
        self.seq_len = seq_len
        self.seen = [False] * len(self.layers)

    def check_batch(self) -> None:
        missing = [layer for layer, ok in zip(self.layers, self.seen, strict=True) if not ok]
        if missing:
            raise RuntimeError(f"decoder blocks {missing} did not run during the forward pass")

    def _select(self, x: torch.Tensor) -> torch.Tensor:
        """The states at the kept positions, projected, float32, still on the model's device."""
        batch = self.rows.stop - self.rows.start
        if x.dim() != 3 or x.shape[0] != batch or x.shape[1] != self.seq_len:
            raise RuntimeError(
                f"a decoder block's hidden states have shape {tuple(x.shape)}, expected "
                f"[{batch}, {self.seq_len}, hidden]"
            )
        index = self._pos_index.get(x.device)
        if index is None:
            index = self._pos_index[x.device] = torch.tensor(self.positions, device=x.device)
        x = x.index_select(1, index)
        return self.projection(x) if self.projection is not None else x.float()

    def _make_hook(self, slot: int, stop: bool) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            if self.seen[slot]:
                raise RuntimeError(
                    f"decoder block {self.layers[slot]} ran twice in one forward pass "
                    "(shared blocks are not supported)"
                )
            x_in = self._select(_block_input(args, kwargs))
            x_out = self._select(_block_output(output))
            self.sink.write(slot, self.rows, x_in, x_out)
            self.seen[slot] = True
            if stop:
                raise _StopForward

        return hook


def _capture(
    model: nn.Module,
    blocks: nn.ModuleList,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    layers: list[int],
    positions: list[int],
    batch_size: int,
    projection: RandomProjection | None,
    progress: bool,
    desc: str,
    next_token: bool = False,
    sink: _StateBuffers | _MomentSink | None = None,
    score_ids: Sequence[Sequence[int]] | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Batched forward passes with hooks on `layers`: (inputs, outputs, greedy next ids,
    scored log-probabilities).

    With `next_token` the pass runs to the LM head and the argmax of the last position's logits
    is kept (the model's greedy continuation); otherwise it stops after the last hooked block.
    `score_ids` (one id set per row, with `next_token`) also keeps, per row, the natural log of
    the probability mass the next-token distribution puts on its ids. The states go to `sink`
    (default: CPU buffers, returned; a `_MomentSink` keeps only their moments, and the first two
    returned values are None).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    device = _model_device(model)
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
            sink = _StateBuffers(len(layers), n, len(positions))
        recorder = _Recorder(blocks, layers, positions, projection, sink, stop_early=not next_token)
        with recorder as rec, torch.no_grad():
            for start in starts:
                rows = slice(start, min(start + batch_size, n))
                kwargs: dict[str, Any] = {"input_ids": input_ids[rows].to(device)}
                if attention_mask is not None:
                    kwargs["attention_mask"] = attention_mask[rows].to(device)
                if getattr(model, "config", None) is not None and hasattr(
                    model.config, "use_cache"
                ):
                    kwargs["use_cache"] = False
                if greedy is not None and keeps_last_logits:
                    kwargs["logits_to_keep"] = 1  # the LM head on the last position only
                rec.start_batch(rows, seq_len)
                try:
                    with contextlib.suppress(_StopForward):  # raised after the last block
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
    if isinstance(sink, _MomentSink):
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
    _check_vocab(model, torch.tensor([int(t) for ids in score_ids for t in ids]), "score_ids")


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
    device = _model_device(model)
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

    The probe is one pass of the capture's most expensive kind (the whole model, the LM head
    on the last position), as lm-eval probes before its loglikelihood passes.
    """
    device = _model_device(model)
    keeps_last = "logits_to_keep" in inspect.signature(model.forward).parameters
    size = max(1, int(start))
    while True:
        try:
            with torch.no_grad():
                ids = torch.ones((size, seq_len), dtype=torch.long, device=device)
                kwargs: dict[str, Any] = {"input_ids": ids, "use_cache": False}
                if keeps_last and next_token:
                    kwargs["logits_to_keep"] = 1
                model(**kwargs)
            return size
        except RuntimeError as exc:  # torch.OutOfMemoryError is one
            if not _is_oom(exc) or size == 1:
                translated = forward_error(exc, model, size)
                if translated is None:
                    raise
                raise translated from exc
            size //= 2
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------
# Public capture API


def capture_macro(
    model: nn.Module,
    input_ids: torch.Tensor | Sequence[Sequence[int]],
    *,
    layers: list[int] | None = None,
    positions: str | list[int] = "last",
    batch_size: int = 64,
    projection: RandomProjection | None = None,
    attention_mask: torch.Tensor | None = None,
    progress: bool = False,
    next_token: bool = False,
) -> CapturedStates:
    """Block inputs and raw outputs of sequences processed in context (the macro level).

    `input_ids` [n, T] are used as given (prepending BOS is the caller's choice). `positions` is
    "last" ([T-1]), "all" or a list of indices; they index the given rows, padding included.
    `layers` defaults to all blocks. Returns float32 CPU tensors [n_layers, n, n_positions, k],
    k = hidden size or projection.k. `next_token=True` also returns the greedy next token of
    each row (argmax of the logits at its last position; runs the full model).
    """
    ids = _as_input_ids(input_ids)
    _check_vocab(model, ids)
    blocks = find_blocks(model)
    layer_list = _resolve_layers(layers, len(blocks))
    pos_list = _resolve_positions(positions, ids.shape[1])
    if attention_mask is not None:
        attention_mask = torch.as_tensor(attention_mask)
        if tuple(attention_mask.shape) != tuple(ids.shape):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, expected "
                f"{tuple(ids.shape)} like input_ids"
            )
    inputs, outputs, greedy, _ = _capture(
        model,
        blocks,
        ids,
        attention_mask,
        layer_list,
        pos_list,
        batch_size,
        projection,
        progress,
        "macro",
        next_token=next_token,
    )
    return CapturedStates(
        layers=layer_list,
        inputs=inputs,
        outputs=outputs,
        positions=pos_list,
        bos_token_id=None,
        greedy_next_ids=greedy,
    )


def _token_table(
    model: nn.Module,
    token_ids: torch.Tensor,
    *,
    bos_token_id: int | None,
    layers: list[int] | None,
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
    _check_vocab(
        model,
        singles
        if bos_token_id is None
        else torch.cat([ids, ids.new_tensor([bos_token_id])]).unsqueeze(1),
    )
    blocks = find_blocks(model)
    layer_list = _resolve_layers(layers, len(blocks))
    if bos_token_id is not None:
        singles = torch.cat([torch.full_like(singles, bos_token_id), singles], dim=1)  # [U, 2]
    read_at = [singles.shape[1] - 1]
    inputs, outputs, _, _ = _capture(
        model, blocks, singles, None, layer_list, read_at, batch_size, projection, progress, "micro"
    )
    return TokenTable(ids, inputs[:, :, 0], outputs[:, :, 0], layer_list)


def capture_micro(
    model: nn.Module,
    input_ids: torch.Tensor | Sequence[Sequence[int]],
    *,
    bos_token_id: int | None,
    layers: list[int] | None = None,
    batch_size: int = 256,
    projection: RandomProjection | None = None,
    progress: bool = False,
) -> CapturedStates:
    """Block inputs and raw outputs of each token fed alone, without context (the micro level).

    Each distinct token id is run once, as a length-1 sequence, or as `[bos, tok]` read at
    position 1 when `bos_token_id` is not None; the states are then looked up, so entry
    [:, i, t] is the micro state of `input_ids[i, t]`. Cost: one forward pass per `batch_size`
    distinct tokens, not per sample. `positions` of the result is range(T).
    """
    ids = _as_input_ids(input_ids)
    table = _token_table(
        model,
        torch.unique(ids),
        bos_token_id=None if bos_token_id is None else int(bos_token_id),
        layers=layers,
        batch_size=batch_size,
        projection=projection,
        progress=progress,
    )
    inputs, outputs = table.lookup(ids)
    return CapturedStates(
        layers=table.layers,
        inputs=inputs,
        outputs=outputs,
        positions=list(range(ids.shape[1])),
        bos_token_id=bos_token_id,
    )


def hidden_size(model: nn.Module) -> int:
    """Width of the residual stream: the config's hidden size, else the embedding width."""
    config = getattr(model, "config", None)
    if config is not None:
        get_text = getattr(config, "get_text_config", None)
        cfg = get_text() if callable(get_text) else config
        for key in ("hidden_size", "n_embd", "d_model"):
            value = getattr(cfg, key, None)
            if isinstance(value, int) and value > 0:
                return value
    emb = model.get_input_embeddings()
    return int(emb.weight.shape[1])


def captured_width(model: nn.Module, projection_dim: int | None) -> int:
    """Width of the captured states: `projection_dim`, or the hidden size where a projection
    would not narrow them (a projection never widens the states; None keeps them whole)."""
    hidden = hidden_size(model)
    return hidden if projection_dim is None else min(projection_dim, hidden)


def model_bos_token_id(model: nn.Module, tokenizer: Any) -> int | None:
    """The BOS token to prepend for micro capture, or None to feed each token alone.

    Rule: the micro state should be taken under the same conditions the model sees text in.
    1. No `tokenizer.bos_token_id` -> None.
    2. The tokenizer prepends BOS by default (`tokenizer("a").input_ids[0] == bos`) -> BOS.
    3. The tokenizer states `add_bos_token` explicitly -> BOS if True, else None.
    4. Otherwise, by family: config `model_type` in Llama/Gemma/Mistral -> BOS, else None.
    The tokenizer's own setting wins over the family, so SmolLM2 (model_type "llama", but BOS
    `<|im_start|>` is a chat-turn marker that its tokenizer never prepends, add_bos_token=False)
    gets None: its tokens sit at position 0 alone, exactly as the first token of a macro sequence
    (lm-eval's HFLM does not prepend BOS for it either).
    """
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    bos = int(bos)
    try:
        first = tokenizer("a").input_ids[:1]
    except Exception:  # noqa: BLE001 - any tokenizer oddity: fall through to the other rules
        first = []
    if first and int(first[0]) == bos:
        return bos
    add_bos = getattr(tokenizer, "add_bos_token", None)
    if isinstance(add_bos, bool):
        return bos if add_bos else None
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type in _BOS_MODEL_TYPES:
        return bos
    return None


# --------------------------------------------------------------------------------------------
# The capture of one IE measurement: settings in, one typed object out


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


#: Micro sequences are one or two tokens long, so their batches are at least this large.
MIN_MICRO_BATCH = 64


@dataclass(eq=False)
class CaptureInfo:
    """How states were captured: the settings, resolved for one model; shared by reference."""

    settings: CaptureSettings
    layers: list[int]
    bos_token_id: int | None
    hidden_dim: int  # the model's width
    state_dim: int  # the width of the captured states (the projection's, when projected)
    model_name: str
    n_parameters: int
    model_dtype: str
    state_dtype: str = "float32"


@dataclass(eq=False)
class CapturePlan:
    """Capture settings resolved against one model: `info`, the projection and batch sizes."""

    info: CaptureInfo
    projection: RandomProjection | None
    batch_size: int
    micro_batch_size: int


def plan_capture(
    model: nn.Module,
    tokenizer: Any,
    settings: CaptureSettings,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> CapturePlan:
    """Resolve `settings` for `model`: the one place the BOS rule and the projection are chosen.

    `batch_size` is used when `settings.batch_size` is None or "auto" (the caller resolves
    lm-eval's "auto"). Raises ValueError (block out of range, no blocks found) before any work.
    """
    blocks = find_blocks(model)
    layers = _resolve_layers(list(settings.layers) if settings.layers else None, len(blocks))
    bos = model_bos_token_id(model, tokenizer) if settings.bos == "auto" else settings.bos
    hidden = hidden_size(model)
    width = captured_width(model, settings.projection_dim)
    projection = None if width == hidden else RandomProjection(hidden, width, settings.seed)
    batch = settings.batch_size if isinstance(settings.batch_size, int) else batch_size
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", "") if config is not None else ""
    info = CaptureInfo(
        settings=settings,
        layers=layers,
        bos_token_id=bos,
        hidden_dim=hidden,
        state_dim=width,
        model_name=str(name) if name else type(model).__name__,
        n_parameters=sum(p.numel() for p in model.parameters()),
        model_dtype=str(next(model.parameters()).dtype).replace("torch.", ""),
    )
    return CapturePlan(
        info=info,
        projection=projection,
        batch_size=batch,
        micro_batch_size=max(batch, MIN_MICRO_BATCH),
    )


@dataclass(eq=False)
class Capture:
    """Everything IE is computed from: the states of N sequences, in context and token alone.

    `positions` are token indices of `token_ids` (BOS, when used, is not counted), and the macro
    states are kept at those positions only: [L, N, P, k]. The micro states are a table of the
    distinct tokens, looked up per (sequence, position) by `micro_states()`.
    """

    info: CaptureInfo
    token_ids: torch.Tensor  # [N, T] int64, without BOS
    positions: list[int]
    macro_inputs: torch.Tensor  # [L, N, P, k]
    macro_outputs: torch.Tensor  # [L, N, P, k]
    micro: TokenTable
    greedy_next_ids: torch.Tensor | None = None  # [N], with next_token=True
    next_logprobs: torch.Tensor | None = None  # [N] float64 nats, with score_ids
    seconds_macro: float = 0.0
    seconds_micro: float = 0.0

    @property
    def layers(self) -> list[int]:
        return self.info.layers

    def micro_states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 micro states [L, N, T, k] of every (sequence, position)."""
        return self.micro.lookup(self.token_ids)

    def as_update(self) -> Capture:
        """The same capture with each block's output replaced by its update, output - input.

        The skip path makes y close to x where a block does little (as at random init), so
        I(x; y) is high there; the update y - x carries only what the block adds. The
        projection is linear and shared by both sides, so this is the projected update.
        """
        micro = self.micro
        table = TokenTable(
            micro.token_ids,
            micro.inputs,
            micro.outputs.float() - micro.inputs.float(),
            micro.layers,
        )
        update = self.macro_outputs.float() - self.macro_inputs.float()
        return replace(self, macro_outputs=update, micro=table)

    def subset(self, n: int | None = None, layers: Sequence[int] | None = None) -> Capture:
        """A copy with the first `n` sequences and/or the blocks `layers` (studies over N)."""
        missing = sorted(set(layers or []) - set(self.layers))
        if missing:
            raise ValueError(f"blocks {missing} were not captured (captured: {self.layers})")
        keep = [i for i, b in enumerate(self.layers) if layers is None or b in layers]
        rows = slice(None) if n is None else slice(0, n)
        info = replace(self.info, layers=[self.layers[i] for i in keep])
        index = torch.tensor(keep)
        micro = TokenTable(
            self.micro.token_ids,
            self.micro.inputs.index_select(0, index),
            self.micro.outputs.index_select(0, index),
            info.layers,
        )
        return replace(
            self,
            info=info,
            token_ids=self.token_ids[rows],
            macro_inputs=self.macro_inputs.index_select(0, index)[:, rows],
            macro_outputs=self.macro_outputs.index_select(0, index)[:, rows],
            micro=micro,
            greedy_next_ids=None if self.greedy_next_ids is None else self.greedy_next_ids[rows],
            next_logprobs=None if self.next_logprobs is None else self.next_logprobs[rows],
        )


def capture_states(
    model: nn.Module,
    token_ids: torch.Tensor,
    plan: CapturePlan,
    *,
    positions: str | Sequence[int] = "last",
    next_token: bool = False,
    score_ids: Sequence[Sequence[int]] | None = None,
    table: TokenTable | None = None,
    progress: bool = False,
) -> Capture:
    """Capture the macro states of `token_ids` [N, T] at `positions` and their micro table.

    Macro and micro states are read under the same condition: a model that gets BOS before a
    token alone gets it before the sequence too, and positions then shift by one. `positions`
    are token indices ("last", "all" or a list); `table` reuses micro states captured before
    (it must hold every token of `token_ids`), else they are captured here. `next_token` keeps
    each sequence's greedy next token; `score_ids` (with it) the log-probability mass of each
    sequence's correct next tokens (`Capture.next_logprobs`, nats).
    """
    passes = _in_context(model, token_ids, plan, positions, next_token, score_ids, table, progress)
    return Capture(
        info=plan.info,
        token_ids=passes.token_ids,
        positions=passes.positions,
        macro_inputs=passes.inputs,  # type: ignore[arg-type]
        macro_outputs=passes.outputs,  # type: ignore[arg-type]
        micro=passes.table,
        greedy_next_ids=passes.greedy_next_ids,
        next_logprobs=passes.next_logprobs,
        seconds_macro=passes.seconds_macro,
        seconds_micro=passes.seconds_micro,
    )


@dataclass
class _Passes:
    """What the forward passes of one capture give (`_in_context`)."""

    token_ids: torch.Tensor
    positions: list[int]
    inputs: torch.Tensor | None  # None when the sink kept moments
    outputs: torch.Tensor | None
    greedy_next_ids: torch.Tensor | None
    next_logprobs: torch.Tensor | None
    table: TokenTable
    seconds_macro: float
    seconds_micro: float


def _in_context(
    model: nn.Module,
    token_ids: torch.Tensor,
    plan: CapturePlan,
    positions: str | Sequence[int],
    next_token: bool,
    score_ids: Sequence[Sequence[int]] | None,
    table: TokenTable | None,
    progress: bool,
    sink: _MomentSink | None = None,
) -> _Passes:
    """The passes of `capture_states` and `capture_moments`: BOS as the plan says, the macro
    passes at `positions` into `sink` (default: kept states), and the micro table."""
    ids = _as_input_ids(token_ids)
    n, seq_len = ids.shape
    if sink is not None and sink.folds.shape != (n,):
        raise ValueError(
            f"folds must give one fold per sequence, [{n}], got {tuple(sink.folds.shape)}"
        )
    wanted = _resolve_positions(positions, seq_len)
    bos = plan.info.bos_token_id
    offset = 0 if bos is None else 1
    macro_ids = ids if bos is None else torch.cat([torch.full((n, 1), bos), ids], dim=1)
    _check_vocab(model, macro_ids)
    t0 = time.perf_counter()
    inputs, outputs, greedy, logprobs = _capture(
        model,
        find_blocks(model),
        macro_ids,
        None,
        plan.info.layers,
        [t + offset for t in wanted],
        plan.batch_size,
        plan.projection,
        progress,
        "macro",
        next_token=next_token,
        sink=sink,
        score_ids=score_ids,
    )
    t1 = time.perf_counter()
    if table is None:
        table = capture_token_table(model, ids, plan, progress=progress)
    seconds_micro = time.perf_counter() - t1
    return _Passes(ids, wanted, inputs, outputs, greedy, logprobs, table, t1 - t0, seconds_micro)


@dataclass(eq=False)
class MomentCapture:
    """A `Capture` whose macro states were reduced to their second moments as they were
    computed (`capture_moments`): memory O(blocks x positions x folds x k^2), not O(N).

    `macro[slot]` holds block slot `slot`'s pairs (input, target) at each of `positions`;
    `target` says what the y side is (the block's "output" or its "update", output - input);
    `folds` is each sequence's jackknife fold.
    """

    info: CaptureInfo
    token_ids: torch.Tensor  # [N, T] int64, without BOS
    positions: list[int]
    macro: list[PairMoments]
    micro: TokenTable
    target: str
    folds: torch.Tensor  # [N] int64
    n_folds: int
    greedy_next_ids: torch.Tensor | None = None
    next_logprobs: torch.Tensor | None = None
    seconds_macro: float = 0.0
    seconds_micro: float = 0.0

    @property
    def layers(self) -> list[int]:
        return self.info.layers


def capture_moments(
    model: nn.Module,
    token_ids: torch.Tensor,
    plan: CapturePlan,
    *,
    folds: torch.Tensor,
    n_folds: int,
    target: str,
    positions: str | Sequence[int] = "last",
    next_token: bool = False,
    score_ids: Sequence[Sequence[int]] | None = None,
    table: TokenTable | None = None,
    progress: bool = False,
) -> MomentCapture:
    """`capture_states`, keeping the second moments of the macro states instead of the states.

    Each batch's states are projected, paired (input with output or update) and added to
    per-block, per-fold moments on the block's device; `folds[i]` is the jackknife fold of row
    i. Used where the estimator is a closed form of the moments (`gaussian-floor`).
    """
    sink = _MomentSink(len(plan.info.layers), folds, n_folds, target)
    passes = _in_context(
        model, token_ids, plan, positions, next_token, score_ids, table, progress, sink
    )
    return MomentCapture(
        info=plan.info,
        token_ids=passes.token_ids,
        positions=passes.positions,
        macro=[m.to("cpu") for m in sink.moments if m is not None],
        micro=passes.table,
        target=target,
        folds=folds,
        n_folds=n_folds,
        greedy_next_ids=passes.greedy_next_ids,
        next_logprobs=passes.next_logprobs,
        seconds_macro=passes.seconds_macro,
        seconds_micro=passes.seconds_micro,
    )


def capture_token_table(
    model: nn.Module, token_ids: torch.Tensor, plan: CapturePlan, *, progress: bool = False
) -> TokenTable:
    """The micro table of the distinct `token_ids` under `plan`, to share between captures."""
    return _token_table(
        model,
        torch.unique(torch.as_tensor(token_ids, dtype=torch.long)),
        bos_token_id=plan.info.bos_token_id,
        layers=plan.info.layers,
        batch_size=plan.micro_batch_size,
        projection=plan.projection,
        progress=progress,
    )
