"""The decoder blocks of a Hugging Face causal LM, and the hooks that read what enters and
leaves them.

IE compares h_l, the residual stream *entering* block l, with h_{l+1}, the block's *raw output*
(docs/method-notes.md). Both are read with forward hooks rather than from
``output_hidden_states``: in transformers the last entry of ``hidden_states`` is the final norm
applied to the last block's output, not the output. The last requested block's hook stops the
forward pass (`StopForward`), so later blocks, the final norm and the LM head never run.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..estimators.moments import PairMoments

__all__ = [
    "BlocksNotFoundError",
    "RandomProjection",
    "by_replicate",
    "find_blocks",
    "hidden_size",
    "num_layers",
    "projection_seed",
    "resolve_indices",
    "target_states",
    "unit_rows",
]

_LAYER_COUNT_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_BLOCK_LIST_NAMES = {"layers", "h", "blocks", "layer", "block", "decoder_layers"}


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


def projection_seed(seed: int, salt: int, block: int, replicate: int) -> int:
    """The seed of one block's one projection: independent streams for every (seed, salt,
    block, replicate), the same on every machine (numpy's `SeedSequence` mixing)."""
    import numpy as np

    state = np.random.SeedSequence([seed, salt, block, replicate]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


class RandomProjection:
    """Seeded Gaussian random projections from d to k channels, scaled by 1/sqrt(k): `replicates`
    independent matrices for every captured block, side by side ([d, replicates * k] a block).

    Applied to hidden states as they are captured, so memory holds n*R*k numbers, never n*d.
    Every block and replicate draws its own matrix (`projection_seed`), so the projections'
    effects on a block's value are independent across blocks and replicates: they average out in
    a mean over blocks, and their spread over the replicates is measured (`uncertainty.py`).
    Each matrix is drawn on the CPU from a `torch.Generator`: the same (d, k, seed, salt, block,
    replicate) gives the same matrix on every machine. Distances are preserved in expectation
    (Johnson-Lindenstrauss).
    """

    def __init__(
        self,
        d: int,
        k: int,
        seed: int = 0,
        *,
        blocks: Sequence[int] = (0,),
        replicates: int = 1,
        salt: int = 0,
    ) -> None:
        if d <= 0 or k <= 0 or replicates <= 0:
            raise ValueError(
                f"RandomProjection needs d, k and replicates > 0, got d={d}, k={k}, "
                f"replicates={replicates}"
            )
        self.d, self.k, self.seed, self.salt = int(d), int(k), int(seed), int(salt)
        self.blocks = [int(b) for b in blocks]
        self.replicates = int(replicates)
        self.matrices = [
            torch.cat([self._draw(block, r) for r in range(self.replicates)], dim=1)
            for block in self.blocks
        ]  # one [d, R * k] per block slot
        self._on_device: dict[tuple[int, torch.device], torch.Tensor] = {}

    def _draw(self, block: int, replicate: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(projection_seed(self.seed, self.salt, block, replicate))
        return torch.randn(self.d, self.k, generator=gen, dtype=torch.float32) / math.sqrt(self.k)

    def __call__(self, x: torch.Tensor, slot: int = 0) -> torch.Tensor:
        """Project the last dimension of `x` with block slot `slot`'s matrices: [..., R * k]
        (computed in float32 on `x`'s device)."""
        if x.shape[-1] != self.d:
            raise ValueError(
                f"RandomProjection expects {self.d} channels, got a tensor of shape "
                f"{tuple(x.shape)}; build it with d = the model's hidden size"
            )
        matrix = self._on_device.get((slot, x.device))
        if matrix is None:
            matrix = self._on_device[(slot, x.device)] = self.matrices[slot].to(x.device)
        return x.float() @ matrix

    def __repr__(self) -> str:
        return (
            f"RandomProjection(d={self.d}, k={self.k}, seed={self.seed}, salt={self.salt}, "
            f"blocks={len(self.blocks)}, replicates={self.replicates})"
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


def resolve_indices(values: int | Sequence[int] | None, size: int, name: str, of: str) -> list[int]:
    """Indices into `size` items (None: all), negative ones counted from the end, sorted and
    distinct; `name` is one index's word ("layer") and `of` says what holds `size` of them."""
    if values is None:
        return list(range(size))
    if isinstance(values, int) and not isinstance(values, bool):
        values = [values]
    out = set()
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name}s must be integers, got {value!r}")
        if not -size <= value < size:
            raise ValueError(
                f"{name} {value} is out of range: {of}, valid indices are 0..{size - 1} (or "
                f"-{size}..-1)"
            )
        out.add(value % size)
    if not out:
        raise ValueError(f"{name}s is empty; pass None for all of them")
    return sorted(out)


def by_replicate(states: torch.Tensor, replicates: int) -> torch.Tensor:
    """States [..., R * k] of R projections side by side as [..., R, k]."""
    return states.unflatten(-1, (replicates, states.shape[-1] // replicates))


def target_states(x: torch.Tensor, y: torch.Tensor, target: str) -> torch.Tensor:
    """What IE pairs with a block's input: its raw output y ("output") or its update y - x
    ("update"), which carries only what the block adds to the skip path."""
    return y - x if target == "update" else y


# --------------------------------------------------------------------------------------------
# Hooks


class StopForward(Exception):
    """Raised by the last requested block's hook to end the forward pass early."""


def input_embeddings(model: nn.Module) -> nn.Module | None:
    get = getattr(model, "get_input_embeddings", None)
    if callable(get):
        try:
            return get()
        except (NotImplementedError, AttributeError):
            return None
    return None


def model_device(model: nn.Module) -> torch.device:
    emb = input_embeddings(model)
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


class StateBuffers:
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


def unit_rows(states: torch.Tensor) -> torch.Tensor:
    """Each row of `states` [..., k] scaled to length 1 (a zero row stays zero)."""
    norm = states.norm(dim=-1, keepdim=True)
    return states / norm.clamp_min(torch.finfo(states.dtype).tiny)


class MomentSink:
    """Where the hooks write when streaming: one `PairMoments` per block (its pairs are the
    positions times the projections, pair p * R + r; packed, `PairMoments.empty`), and per
    block the per-fold sums of the block outputs scaled to unit length ([F, P * R, k]: what
    representation dispersion reads), accumulated on the block's device; the states themselves
    are dropped."""

    def __init__(
        self, n_layers: int, folds: torch.Tensor, n_folds: int, target: str, replicates: int = 1
    ) -> None:
        self.folds = folds  # [n] the fold of each row
        self.n_folds = n_folds
        self.target = target
        self.replicates = replicates
        self.moments: list[PairMoments | None] = [None] * n_layers
        self.unit_sums: list[torch.Tensor | None] = [None] * n_layers

    def write(self, slot: int, rows: slice, x_in: torch.Tensor, x_out: torch.Tensor) -> None:
        pairs = lambda t: by_replicate(t, self.replicates).flatten(1, 2).transpose(0, 1)  # noqa: E731
        x = pairs(x_in)  # [P * R, B, k]
        y = target_states(x, pairs(x_out), self.target)
        moments = self.moments[slot]
        if moments is None:
            moments = self.moments[slot] = PairMoments.empty(
                self.n_folds, x.shape[0], x.shape[-1], y.shape[-1], x.device, packed=True
            )
        moments.add_rows(x, y, self.folds[rows])
        units = unit_rows(pairs(x_out).double()).transpose(0, 1)  # [B, P * R, k]
        if self.unit_sums[slot] is None:
            self.unit_sums[slot] = units.new_zeros((self.n_folds, *units.shape[1:]))
        self.unit_sums[slot].index_add_(0, self.folds[rows].to(units.device), units)  # type: ignore[union-attr]


class Recorder:
    """The hooks on the blocks, writing one batch at a time into a sink."""

    def __init__(
        self,
        blocks: nn.ModuleList,
        layers: list[int],
        positions: list[int],
        projection: RandomProjection | None,
        sink: StateBuffers | MomentSink,
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

    def __enter__(self) -> Recorder:
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

    def _select(self, x: torch.Tensor, slot: int) -> torch.Tensor:
        """The states at the kept positions, projected with block slot `slot`'s matrices,
        float32, still on the model's device."""
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
        return self.projection(x, slot) if self.projection is not None else x.float()

    def _make_hook(self, slot: int, stop: bool) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            if self.seen[slot]:
                raise RuntimeError(
                    f"decoder block {self.layers[slot]} ran twice in one forward pass "
                    "(shared blocks are not supported)"
                )
            x_in = self._select(_block_input(args, kwargs), slot)
            x_out = self._select(_block_output(output), slot)
            self.sink.write(slot, self.rows, x_in, x_out)
            self.seen[slot] = True
            if stop:
                raise StopForward

        return hook
