"""The capture of one IE measurement: settings resolved against a model (`plan_capture`), then
the in-context and token-alone passes (`capture_states`, or `capture_moments` where only the
states' second moments are kept)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from ..estimators.moments import PairMoments, jackknife_fold_count, jackknife_fold_ids
from ..settings import DEFAULT_BATCH_SIZE, CaptureSettings
from .blocks import (
    MomentSink,
    RandomProjection,
    find_blocks,
    hidden_size,
    resolve_indices,
    target_states,
)
from .passes import as_input_ids, check_vocab, run_passes
from .tokens import MIN_MICRO_BATCH, TokenTable, token_table

__all__ = [
    "Capture",
    "CaptureInfo",
    "CapturePlan",
    "MomentCapture",
    "StreamSpec",
    "capture_moments",
    "capture_states",
    "capture_token_table",
    "captured_width",
    "model_bos_token_id",
    "plan_capture",
]

_BOS_MODEL_TYPES = {"llama", "gemma", "gemma2", "gemma3", "gemma3_text", "mistral"}


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


@dataclass(eq=False)
class CaptureInfo:
    """How states were captured: the settings, resolved for one model; shared by reference."""

    settings: CaptureSettings
    layers: list[int]
    bos_token_id: int | None
    hidden_dim: int  # the model's width
    state_dim: int  # the width of one projection's states (k; the hidden size unprojected)
    projections: int  # independent projections per block (R), side by side in the states
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
    of = f"this model has {len(blocks)} blocks"
    layers = resolve_indices(settings.layers, len(blocks), "layer", of)
    bos = model_bos_token_id(model, tokenizer) if settings.bos == "auto" else settings.bos
    hidden = hidden_size(model)
    width = captured_width(model, settings.projection_dim)
    projection = None
    if width < hidden:
        projection = RandomProjection(
            hidden,
            width,
            settings.seed,
            blocks=layers,
            replicates=settings.projections,
            salt=settings.salt,
        )
    batch = settings.batch_size if isinstance(settings.batch_size, int) else batch_size
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", "") if config is not None else ""
    info = CaptureInfo(
        settings=settings,
        layers=layers,
        bos_token_id=bos,
        hidden_dim=hidden,
        state_dim=width,
        projections=1 if projection is None else settings.projections,
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
    states are kept at those positions only: [L, N, P, R * k], the R projections of a block side
    by side (`blocks.by_replicate` splits them). The micro states are a table of the distinct
    tokens, looked up per (sequence, position) by `micro_states()`.
    """

    info: CaptureInfo
    token_ids: torch.Tensor  # [N, T] int64, without BOS
    positions: list[int]
    macro_inputs: torch.Tensor  # [L, N, P, R * k]
    macro_outputs: torch.Tensor  # [L, N, P, R * k]
    micro: TokenTable
    greedy_next_ids: torch.Tensor | None = None  # [N], with next_token=True
    next_logprobs: torch.Tensor | None = None  # [N] float64 nats, with score_ids
    seconds_macro: float = 0.0
    seconds_micro: float = 0.0

    @property
    def layers(self) -> list[int]:
        return self.info.layers

    @property
    def projections(self) -> int:
        return self.info.projections

    def micro_states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 micro states [L, N, T, R * k] of every (sequence, position)."""
        return self.micro.lookup(self.token_ids)

    def as_update(self) -> Capture:
        """The same capture with each block's output replaced by its update, output - input.

        The skip path makes y close to x where a block does little (as at random init), so
        I(x; y) is high there; the update y - x carries only what the block adds. The
        projection is linear and shared by both sides, so this is the projected update.
        """
        micro = self.micro
        micro_update = target_states(micro.inputs.float(), micro.outputs.float(), "update")
        table = TokenTable(micro.token_ids, micro.inputs, micro_update, micro.layers)
        update = target_states(self.macro_inputs.float(), self.macro_outputs.float(), "update")
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


def _positions(positions: str | Sequence[int], seq_len: int) -> list[int]:
    """Token indices from "last", "all" or indices (negative from the end), sorted and distinct."""
    if isinstance(positions, str):
        if positions not in ("last", "all"):
            raise ValueError(
                f"positions must be 'last', 'all' or a list of ints, got {positions!r}"
            )
        positions = [seq_len - 1] if positions == "last" else list(range(seq_len))
    return resolve_indices(positions, seq_len, "position", f"the sequences have {seq_len} tokens")


def _in_context(
    model: nn.Module,
    token_ids: torch.Tensor,
    plan: CapturePlan,
    positions: str | Sequence[int],
    next_token: bool,
    score_ids: Sequence[Sequence[int]] | None,
    table: TokenTable | None,
    progress: bool,
    sink: MomentSink | None = None,
) -> _Passes:
    """The passes of `capture_states` and `capture_moments`: BOS as the plan says, the macro
    passes at `positions` into `sink` (default: kept states), and the micro table."""
    ids = as_input_ids(token_ids)
    n, seq_len = ids.shape
    wanted = _positions(positions, seq_len)
    bos = plan.info.bos_token_id
    offset = 0 if bos is None else 1
    macro_ids = ids if bos is None else torch.cat([torch.full((n, 1), bos), ids], dim=1)
    check_vocab(model, macro_ids)
    t0 = time.perf_counter()
    inputs, outputs, greedy, logprobs = run_passes(
        model,
        find_blocks(model),
        macro_ids,
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


@dataclass(frozen=True)
class StreamSpec:
    """How a capture keeps only the second moments of its macro states: `rows` sequences (a
    task's documents, by index) in jackknife folds drawn with `seed`, and the y side of each
    pair (`target`). Decided once, by `emergence.stream_spec`; it travels to the lm-eval model
    with the requests (`to_dict`)."""

    rows: int
    folds: int
    seed: int
    target: str

    def fold_ids(self) -> torch.Tensor:
        """The jackknife fold of each row 0..rows-1, [rows] int64."""
        return jackknife_fold_ids(self.rows, self.folds, self.seed)

    @property
    def n_folds(self) -> int:
        """The folds that hold rows (fewer than `folds` when the rows do not fill them)."""
        return jackknife_fold_count(self.rows, self.folds)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "folds": self.folds, "seed": self.seed, "target": self.target}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamSpec:
        return cls(int(data["rows"]), int(data["folds"]), int(data["seed"]), str(data["target"]))


@dataclass(eq=False)
class MomentCapture:
    """A `Capture` whose macro states were reduced to their second moments as they were
    computed (`capture_moments`): memory O(blocks x positions x folds x k^2), not O(N).

    `macro[slot]` holds block slot `slot`'s pairs (input, target) at each of `positions` under
    each projection (pair p * R + r); `stream.target` says what the y side is (the block's
    "output" or its "update", output - input); `folds` is each sequence's jackknife fold.
    """

    info: CaptureInfo
    token_ids: torch.Tensor  # [N, T] int64, without BOS
    positions: list[int]
    macro: list[PairMoments]
    micro: TokenTable
    stream: StreamSpec
    folds: torch.Tensor  # [N] int64
    #: per block, per fold: the sum of its outputs scaled to unit length at each position and
    #: projection, [F, P * R, k] float64 (`blocks.MomentSink`)
    unit_sums: list[torch.Tensor] = field(default_factory=list)
    greedy_next_ids: torch.Tensor | None = None
    next_logprobs: torch.Tensor | None = None
    seconds_macro: float = 0.0
    seconds_micro: float = 0.0

    @property
    def layers(self) -> list[int]:
        return self.info.layers

    @property
    def projections(self) -> int:
        return self.info.projections

    @property
    def target(self) -> str:
        return self.stream.target

    @property
    def n_folds(self) -> int:
        return self.stream.n_folds


def capture_moments(
    model: nn.Module,
    token_ids: torch.Tensor,
    plan: CapturePlan,
    stream: StreamSpec,
    *,
    rows: torch.Tensor | None = None,
    positions: str | Sequence[int] = "last",
    next_token: bool = False,
    score_ids: Sequence[Sequence[int]] | None = None,
    table: TokenTable | None = None,
    progress: bool = False,
) -> MomentCapture:
    """`capture_states`, keeping the second moments of the macro states instead of the states.

    Each batch's states are projected, paired (input with output or update) and added to
    per-block, per-fold moments on the block's device. `rows` are the sequences' indices among
    the stream's `rows` (default: 0..N-1, all of them), which fix their jackknife folds. Used
    where the estimator is a closed form of the moments (`gaussian-floor`).
    """
    n = len(token_ids)
    index = torch.arange(n) if rows is None else torch.as_tensor(rows, dtype=torch.long)
    if index.shape != (n,) or (n and not 0 <= int(index.min()) <= int(index.max()) < stream.rows):
        raise ValueError(
            f"rows must give each of the {n} sequences its index among the stream's "
            f"{stream.rows} rows; got {index.tolist()[:5]}..."
        )
    folds = stream.fold_ids()[index]
    sink = MomentSink(
        len(plan.info.layers), folds, stream.n_folds, stream.target, plan.info.projections
    )
    passes = _in_context(
        model, token_ids, plan, positions, next_token, score_ids, table, progress, sink
    )
    return MomentCapture(
        info=plan.info,
        token_ids=passes.token_ids,
        positions=passes.positions,
        macro=[m.to("cpu") for m in sink.moments if m is not None],
        unit_sums=[u.cpu() for u in sink.unit_sums if u is not None],
        micro=passes.table,
        stream=stream,
        folds=folds,
        greedy_next_ids=passes.greedy_next_ids,
        next_logprobs=passes.next_logprobs,
        seconds_macro=passes.seconds_macro,
        seconds_micro=passes.seconds_micro,
    )


def capture_token_table(
    model: nn.Module, token_ids: torch.Tensor, plan: CapturePlan, *, progress: bool = False
) -> TokenTable:
    """The micro table of the distinct `token_ids` under `plan`, to share between captures."""
    return token_table(
        model,
        torch.unique(torch.as_tensor(token_ids, dtype=torch.long)),
        bos_token_id=plan.info.bos_token_id,
        layers=plan.info.layers,
        batch_size=plan.micro_batch_size,
        projection=plan.projection,
        progress=progress,
    )
