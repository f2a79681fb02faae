"""Information Emergence (IE) of a causal LM on a set of equal-length sequences (method.md §1).

Per block l, in bits:

    E(l) = I(h_l^macro ; h_{l+1}^macro) - (1/T) * sum_t I(h_l^{micro,t} ; h_{l+1}^{micro,t})

where the macro states are those of the last token of each sequence processed in context and the
micro states those of each token fed to the model on its own. The scalar IE is the mean of E(l)
over the blocks. Every MI comes from one batched call to `estimate_mi_many`, so all pairs of a
profile share one seed-derived split and training run.

Each number is a property of the estimator and the sample as much as of the model (method.md §5):
the result therefore carries N, the estimator's ceiling, log2(N), the plug-in entropies of the
data, the resolved estimator options, the seed and a divergence flag next to every value; an
estimate that is impossible (an MI negative beyond its noise) is flagged `implausible` and
described in `warnings`, never passed on silently.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .capture import (
    RandomProjection,
    capture_macro,
    capture_micro,
    find_blocks,
    hidden_size,
    model_bos_token_id,
)
from .estimators import MIN_SAMPLES, estimate_mi_many
from .estimators.api import resolve_options

#: The estimator of IE. Not the Gaussian default of `estimate_mi`: a block is a deterministic map,
#: and micro states take one value per distinct token, where the Gaussian MI is infinite while
#: InfoNCE reads the entropy (docs/performance.md, case discrete-32-det).
DEFAULT_ESTIMATOR = "infonce"
#: Width of the seeded random projection applied while capturing: bounds memory and makes the
#: 30-block SmolLM2 profile fit in 5 minutes on 2 cores (docs/performance.md).
DEFAULT_PROJECTION_DIM = 64

__all__ = ["EmergenceResult", "measure_emergence", "plugin_entropy_bits"]


@dataclass
class EmergenceResult:
    """IE of one model on one set of sequences, with everything needed to judge the number.

    `per_layer` entries: {layer, macro_bits, micro_bits (mean over positions), emergence_bits,
    stderr_bits, macro_stderr_bits, micro_stderr_bits (of the mean), micro_bits_per_position,
    micro_stderr_bits_per_position, micro_exact_zero_positions (positions whose token is the same
    in every sequence, e.g. a list separator: one side is constant, so the MI is exactly 0 and is
    not estimated), macro_null_bits, micro_null_bits (shuffled-pair nulls, None
    unless the estimator option null=True), diverged, implausible}.
    `per_position` (only when asked): [{position, emergence_bits (mean over layers), stderr_bits,
    per_layer: [{layer, macro_bits, micro_bits (mean over k <= position), emergence_bits,
    stderr_bits, diverged}]}].
    """

    ie_bits: float
    ie_sum_bits: float
    ie_stderr_bits: float
    ie_sum_stderr_bits: float
    per_layer: list[dict[str, Any]]
    per_position: list[dict[str, Any]] | None
    n: int
    seq_len: int
    ceiling_bits: float | None
    log2_n: float
    sequence_entropy_bits: float
    token_entropy_bits: list[float]
    n_distinct_sequences: int
    bos_token_id: int | None
    micro_input: str
    estimator: str
    estimator_options: dict[str, Any]
    seed: int
    layers: list[int]
    projection_dim: int | None
    hidden_dim: int
    any_diverged: bool
    diverged_layers: list[int]
    implausible_layers: list[int]
    warnings: list[str]
    n_estimates: int
    n_exact_zero: int
    seconds_capture: float
    seconds_capture_macro: float
    seconds_capture_micro: float
    seconds_estimation: float
    model_name: str
    n_parameters: int
    package_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: plain Python types, NaN and inf written as None."""
        return _json_ready(asdict(self))


# --------------------------------------------------------------------------------------------
# Public entry point


def measure_emergence(
    model: nn.Module,
    tokenizer: Any,
    sequences: Sequence[str] | Sequence[Sequence[int]] | torch.Tensor,
    *,
    estimator: str = DEFAULT_ESTIMATOR,
    layers: list[int] | None = None,
    seed: int = 0,
    per_position: bool = False,
    projection_dim: int | None = DEFAULT_PROJECTION_DIM,
    batch_size: int = 64,
    truncate_to: int | None = None,
    micro_bos: int | None | str = "auto",
    progress: bool = False,
    estimator_options: dict[str, Any] | None = None,
    **options: Any,
) -> EmergenceResult:
    """Measure the per-block Information Emergence E(l) and its mean over blocks, in bits.

    `sequences`: texts (tokenized with add_special_tokens=False), token-id lists or a LongTensor
    [N, T]; all must have the same token length T >= 2 (or pass `truncate_to=T` to keep the
    first T tokens of each). `tokenizer` may be None for token ids. `projection_dim` applies a
    seeded random projection while capturing (bounds memory). `micro_bos`: "auto" uses
    `model_bos_token_id(model, tokenizer)`; an int or None forces it. Extra keyword arguments are
    options of the estimator (`method_options(estimator)`); options whose names clash with this
    function's own arguments (the critic's `layers` and `batch_size`) go in `estimator_options`.

    Standard errors are propagated assuming the estimates of a profile are independent
    (stderr(l) = sqrt(se_macro^2 + sum_t se_t^2 / T^2); the mean over layers
    sqrt(sum_l se_l^2) / L). They share one data split, so this is an approximation.
    """
    estimator_options = _merge_options(estimator_options, options)
    resolve_options(estimator, estimator_options)  # fail before any capture
    ids = _as_token_ids(sequences, tokenizer, truncate_to)
    n, seq_len = ids.shape
    find_blocks(model)  # fail fast (BlocksNotFoundError) before any work

    bos = model_bos_token_id(model, tokenizer) if micro_bos == "auto" else micro_bos
    if bos is not None and (isinstance(bos, bool) or not isinstance(bos, int)):
        raise ValueError(f"micro_bos must be 'auto', None or a token id, got {micro_bos!r}")
    projection = None
    hidden = hidden_size(model)
    if projection_dim is not None:
        if projection_dim <= 0:
            raise ValueError(f"projection_dim must be a positive integer, got {projection_dim}")
        if projection_dim < hidden:  # a projection never widens the states
            projection = RandomProjection(hidden, projection_dim, seed)

    # macro and micro states are read under the same condition: a model that gets BOS before a
    # token alone gets it before the sequence too, and positions then shift by one
    offset = 0 if bos is None else 1
    macro_ids = ids if bos is None else torch.cat([torch.full((n, 1), bos), ids], dim=1)
    t0 = time.perf_counter()
    macro = capture_macro(
        model,
        macro_ids,
        layers=layers,
        positions=list(range(offset, seq_len + offset)) if per_position else "last",
        batch_size=batch_size,
        projection=projection,
        progress=progress,
    )
    t1 = time.perf_counter()
    micro = capture_micro(
        model,
        ids,
        bos_token_id=bos,
        layers=macro.layers,
        batch_size=batch_size,
        projection=projection,
        progress=progress,
    )
    t2 = time.perf_counter()
    return emergence_from_states(
        layers=list(macro.layers),
        macro_inputs=macro.inputs,
        macro_outputs=macro.outputs,
        macro_positions=[t - offset for t in macro.positions],
        micro_inputs=micro.inputs,
        micro_outputs=micro.outputs,
        token_ids=ids,
        estimator=estimator,
        seed=seed,
        estimator_options=estimator_options,
        per_position=per_position,
        bos_token_id=bos,
        projection_dim=projection_dim,
        model_name=_model_name(model),
        n_parameters=sum(p.numel() for p in model.parameters()),
        seconds_capture_macro=t1 - t0,
        seconds_capture_micro=t2 - t1,
        progress=progress,
    )


def emergence_from_states(
    *,
    layers: list[int],
    macro_inputs: torch.Tensor,
    macro_outputs: torch.Tensor,
    macro_positions: list[int],
    micro_inputs: torch.Tensor,
    micro_outputs: torch.Tensor,
    token_ids: torch.Tensor,
    estimator: str = DEFAULT_ESTIMATOR,
    seed: int = 0,
    estimator_options: dict[str, Any] | None = None,
    per_position: bool | Sequence[int] = False,
    bos_token_id: int | None = None,
    projection_dim: int | None = None,
    model_name: str = "",
    n_parameters: int = 0,
    seconds_capture_macro: float = 0.0,
    seconds_capture_micro: float = 0.0,
    progress: bool = False,
) -> EmergenceResult:
    """IE from captured states: the estimation half of `measure_emergence`.

    `macro_*` [L, N, P, k] are the block inputs/outputs in context at the token indices
    `macro_positions` (which must include the last, T-1); `micro_*` [L, N, T, k] those of each
    token alone; `token_ids` [N, T] the sequences (for the plug-in entropies). `per_position`:
    False, True (every captured position) or a list of token indices to report E at. The
    lm-eval adapter calls this on states gathered from every rank.
    """
    estimator_options = dict(estimator_options or {})
    resolve_options(estimator, estimator_options)
    n, seq_len = token_ids.shape
    n_layers_in = len(layers)
    expected_micro = (n_layers_in, n, seq_len)
    if tuple(micro_inputs.shape[:3]) != expected_micro or micro_inputs.shape != micro_outputs.shape:
        raise ValueError(
            f"micro states have shapes {tuple(micro_inputs.shape)} / {tuple(micro_outputs.shape)}, "
            f"expected [{n_layers_in}, {n}, {seq_len}, k] for {n_layers_in} layers and "
            f"token_ids of shape {tuple(token_ids.shape)}"
        )
    expected_macro = (n_layers_in, n, len(macro_positions))
    if tuple(macro_inputs.shape[:3]) != expected_macro or macro_inputs.shape != macro_outputs.shape:
        raise ValueError(
            f"macro states have shapes {tuple(macro_inputs.shape)} / {tuple(macro_outputs.shape)}, "
            f"expected [{n_layers_in}, {n}, {len(macro_positions)}, k]"
        )
    if seq_len - 1 not in macro_positions:
        raise ValueError(
            f"macro_positions {macro_positions} must include the last token {seq_len - 1}"
        )
    if per_position is True:
        report_positions = sorted(macro_positions)
    elif per_position is False:
        report_positions = []
    else:
        report_positions = sorted({int(t) for t in per_position})
        missing = sorted(set(report_positions) - set(macro_positions))
        if missing:
            raise ValueError(f"per_position asks for positions {missing} that were not captured")
    if n < MIN_SAMPLES:
        raise ValueError(
            f"{n} sequences is below the estimator minimum of {MIN_SAMPLES}; "
            "use more sequences (the MI estimates need a held-out split)"
        )

    # One batched estimate over every pair of the profile.
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    keys: list[tuple[str, int, int]] = []
    for li in range(n_layers_in):
        for pi, t in enumerate(macro_positions):
            xs.append(macro_inputs[li, :, pi])
            ys.append(macro_outputs[li, :, pi])
            keys.append(("macro", li, t))  # keyed by token index, BOS or not
        for t in range(seq_len):
            xs.append(micro_inputs[li, :, t])
            ys.append(micro_outputs[li, :, t])
            keys.append(("micro", li, t))
    # A side that is the same in every sample (e.g. the separator token of an ICL list, fed
    # alone) has zero entropy, so the MI is exactly 0: no estimate, recorded as exact.
    constant = [_is_constant(x) or _is_constant(y) for x, y in zip(xs, ys, strict=True)]
    todo = [i for i, c in enumerate(constant) if not c]
    if not todo:
        raise ValueError(
            "every block input or output is identical across the sequences (all sequences are "
            "the same?); there is nothing to estimate"
        )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=1, desc=f"estimate {len(todo)} MI pairs ({estimator})", unit="call")
    t2 = time.perf_counter()
    estimates = estimate_mi_many(
        [xs[i].float() for i in todo],
        [ys[i].float() for i in todo],
        method=estimator,
        seed=seed,
        **estimator_options,
    )
    if bar is not None:
        bar.update(1)
        bar.close()
    t3 = time.perf_counter()
    first = estimates[0]
    with_null = first.null_bits is not None
    by_key: dict[tuple[str, int, int], Any] = {
        key: _ExactZero(null_bits=0.0 if with_null else None) for key in keys
    }
    by_key.update({keys[i]: est for i, est in zip(todo, estimates, strict=True)})

    per_layer, per_pos = _assemble(by_key, layers, seq_len, report_positions)
    e = [row["emergence_bits"] for row in per_layer]
    se = [row["stderr_bits"] for row in per_layer]
    n_layers = len(per_layer)
    sum_se = math.sqrt(sum(s * s for s in se))
    diverged_layers = [row["layer"] for row in per_layer if row["diverged"]]
    flagged = _implausible(by_key, layers)
    for row in per_layer:
        row["implausible"] = any(layer == row["layer"] for layer, _ in flagged)
    from . import __version__

    return EmergenceResult(
        ie_bits=sum(e) / n_layers,
        ie_sum_bits=sum(e),
        ie_stderr_bits=sum_se / n_layers,
        ie_sum_stderr_bits=sum_se,
        per_layer=per_layer,
        per_position=per_pos if per_position is not False else None,
        n=n,
        seq_len=seq_len,
        ceiling_bits=first.ceiling_bits,
        log2_n=math.log2(n),
        sequence_entropy_bits=plugin_entropy_bits(token_ids),
        token_entropy_bits=[plugin_entropy_bits(token_ids[:, t]) for t in range(seq_len)],
        n_distinct_sequences=int(torch.unique(token_ids, dim=0).shape[0]),
        bos_token_id=bos_token_id,
        micro_input="token alone"
        if bos_token_id is None
        else f"BOS + token (BOS id {bos_token_id})",
        estimator=estimator,
        estimator_options=dict(first.options),
        seed=seed,
        layers=list(layers),
        projection_dim=projection_dim,
        hidden_dim=int(macro_inputs.shape[-1]),
        any_diverged=bool(diverged_layers),
        diverged_layers=diverged_layers,
        implausible_layers=[row["layer"] for row in per_layer if row["implausible"]],
        warnings=[message for _, message in flagged],
        n_estimates=len(estimates),
        n_exact_zero=len(keys) - len(todo),
        seconds_capture=seconds_capture_macro + seconds_capture_micro,
        seconds_capture_macro=seconds_capture_macro,
        seconds_capture_micro=seconds_capture_micro,
        seconds_estimation=t3 - t2,
        model_name=model_name,
        n_parameters=n_parameters,
        package_version=__version__,
    )


def plugin_entropy_bits(values: torch.Tensor) -> float:
    """Plug-in (maximum-likelihood) entropy in bits of the empirical distribution of the rows.

    For a 1-D tensor the rows are scalars; for [N, T] whole sequences. Written as
    log2 N - sum_c c log2 c / N, so N distinct rows give exactly log2 N.
    """
    if values.dim() == 1:
        values = values.unsqueeze(1)
    n = values.shape[0]
    _, counts = torch.unique(values, dim=0, return_counts=True)
    counts = counts.double()
    return float(math.log2(n) - (counts * torch.log2(counts)).sum() / n)


# --------------------------------------------------------------------------------------------
# Inputs


def _merge_options(explicit: dict[str, Any] | None, extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(explicit or {})
    both = sorted(set(merged) & set(extra))
    if both:
        raise ValueError(f"estimator option(s) {both} given twice (keyword and estimator_options)")
    merged.update(extra)
    return merged


def _as_token_ids(sequences: Any, tokenizer: Any, truncate_to: int | None) -> torch.Tensor:
    """[N, T] int64 tensor of token ids, with the length checks and errors of measure_emergence."""
    if truncate_to is not None and (
        isinstance(truncate_to, bool) or not isinstance(truncate_to, int) or truncate_to < 2
    ):
        raise ValueError(f"truncate_to must be an integer >= 2, got {truncate_to!r}")
    if isinstance(sequences, torch.Tensor):
        if sequences.dim() != 2:
            raise ValueError(
                f"a tensor of sequences must be 2-D [N, T], got shape {tuple(sequences.shape)}"
            )
        if sequences.is_floating_point() or sequences.is_complex():
            raise ValueError(f"sequences must hold integer token ids, got {sequences.dtype}")
        rows = sequences.detach().cpu().long().tolist()
        if not rows:
            raise ValueError("sequences is empty")
    elif isinstance(sequences, (str, bytes)):
        raise ValueError("sequences must be a list of texts or token lists, not one string")
    else:
        items = list(sequences)
        if not items:
            raise ValueError("sequences is empty")
        if all(isinstance(s, str) for s in items):
            if tokenizer is None:
                raise ValueError("texts need a tokenizer; pass tokenizer= or token ids")
            rows = [list(r) for r in tokenizer(items, add_special_tokens=False)["input_ids"]]
        elif any(isinstance(s, str) for s in items):
            raise ValueError("sequences mixes texts and token lists; pass one kind")
        elif all(isinstance(s, int) for s in items):
            raise ValueError("sequences is one flat list of ids; pass a list of token lists")
        else:
            rows = []
            for i, s in enumerate(items):
                row = s.tolist() if isinstance(s, torch.Tensor) else list(s)
                if not all(isinstance(v, int) or hasattr(v, "__index__") for v in row):
                    raise ValueError(f"sequence {i} holds non-integer values: {row[:5]}...")
                rows.append([int(v) for v in row])
    if truncate_to is not None:
        for i, row in enumerate(rows):
            if len(row) < truncate_to:
                raise ValueError(
                    f"sequence {i} has {len(row)} tokens, fewer than truncate_to={truncate_to}; "
                    "drop it or lower truncate_to"
                )
        rows = [row[:truncate_to] for row in rows]
    lengths = Counter(len(row) for row in rows)
    if len(lengths) > 1:
        found = dict(sorted(lengths.items()))
        shortest = min(lengths)
        raise ValueError(
            f"sequences must have equal token length; found lengths {found} (length: count). "
            f"Pass truncate_to=T (e.g. truncate_to={shortest}) to cut each sequence to its "
            "first T tokens, or filter the sequences to one length"
        )
    seq_len = next(iter(lengths))
    if seq_len < 2:
        raise ValueError(
            f"sequences have {seq_len} token(s); emergence needs T >= 2 (one token has no context)"
        )
    if len(rows) < MIN_SAMPLES:
        raise ValueError(
            f"{len(rows)} sequences is below the estimator minimum of {MIN_SAMPLES}; "
            "use more sequences (the MI estimates need a held-out split)"
        )
    return torch.tensor(rows, dtype=torch.long)


def _model_name(model: nn.Module) -> str:
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", "") if config is not None else ""
    return str(name) if name else type(model).__name__


# --------------------------------------------------------------------------------------------
# Assembly


@dataclass(frozen=True)
class _ExactZero:
    """I(x; y) = 0 exactly because one side is constant over the samples (zero entropy)."""

    null_bits: float | None = None
    bits: float = 0.0
    stderr_bits: float = 0.0
    diverged: bool = False
    exact: bool = True


#: An MI is never negative: an estimate below -(3 stderr + this) bits is not sampling noise.
NEGATIVE_TOLERANCE_BITS = 0.1


def _implausible(
    by_key: dict[tuple[str, int, int], Any], layers: list[int]
) -> list[tuple[int, str]]:
    """(block, message) for each estimate no MI can take (an estimator failure).

    Impossible: not finite; negative beyond 3 standard errors; or, where the estimator has a
    ceiling (log2 of its held-out rows), beyond it in either direction, whatever the stderr.
    """
    out = []
    for (kind, li, t), est in by_key.items():
        bits, se = est.bits, est.stderr_bits
        ceiling = getattr(est, "ceiling_bits", None)
        if not (math.isfinite(bits) and math.isfinite(se)):
            why = "is not finite"
        elif bits < -(3 * se + NEGATIVE_TOLERANCE_BITS):
            why = "is below 0 by more than 3 standard errors; MI cannot be negative"
        elif ceiling is not None and not -ceiling <= bits <= ceiling + 3 * se + 0.1:
            why = f"lies outside +-{ceiling:.2f} bits, the range this estimator can read"
        else:
            continue
        message = (
            f"block {layers[li]} {kind} position {t}: {bits:.4g} ± {se:.4g} bits {why}, so this "
            "estimate (and the block's E) is unreliable"
        )
        out.append((layers[li], message))
    return out


def _is_constant(x: torch.Tensor) -> bool:
    return bool((x == x[:1]).all())


def _assemble(
    by_key: dict[tuple[str, int, int], Any], layers: list[int], seq_len: int, positions: list[int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-layer rows, and per-position rows for the token indices `positions`."""
    last = seq_len - 1
    per_layer = []
    for li, layer in enumerate(layers):
        mac = by_key[("macro", li, last)]
        mic = [by_key[("micro", li, t)] for t in range(seq_len)]
        micro_mean = sum(m.bits for m in mic) / seq_len
        micro_se = math.sqrt(sum(m.stderr_bits**2 for m in mic)) / seq_len
        nulls = [m.null_bits for m in mic]
        per_layer.append(
            {
                "layer": layer,
                "macro_bits": mac.bits,
                "micro_bits": micro_mean,
                "emergence_bits": mac.bits - micro_mean,
                "stderr_bits": math.sqrt(mac.stderr_bits**2 + micro_se**2),
                "macro_stderr_bits": mac.stderr_bits,
                "micro_stderr_bits": micro_se,
                "micro_bits_per_position": [m.bits for m in mic],
                "micro_stderr_bits_per_position": [m.stderr_bits for m in mic],
                "micro_exact_zero_positions": [
                    t for t, m in enumerate(mic) if isinstance(m, _ExactZero)
                ],
                "macro_null_bits": mac.null_bits,
                "micro_null_bits": None if None in nulls else sum(nulls) / seq_len,
                "diverged": bool(mac.diverged or any(m.diverged for m in mic)),
            }
        )
    per_pos = []
    for t in positions:
        rows = []
        for li, layer in enumerate(layers):
            mac = by_key[("macro", li, t)]
            mic = [by_key[("micro", li, k)] for k in range(t + 1)]
            micro_mean = sum(m.bits for m in mic) / (t + 1)
            micro_se = math.sqrt(sum(m.stderr_bits**2 for m in mic)) / (t + 1)
            rows.append(
                {
                    "layer": layer,
                    "macro_bits": mac.bits,
                    "macro_stderr_bits": mac.stderr_bits,
                    "micro_bits": micro_mean,
                    "emergence_bits": mac.bits - micro_mean,
                    "stderr_bits": math.sqrt(mac.stderr_bits**2 + micro_se**2),
                    "diverged": bool(mac.diverged or any(m.diverged for m in mic)),
                }
            )
        se = math.sqrt(sum(r["stderr_bits"] ** 2 for r in rows)) / len(rows)
        per_pos.append(
            {
                "position": t,
                "emergence_bits": sum(r["emergence_bits"] for r in rows) / len(rows),
                "stderr_bits": se,
                "per_layer": rows,
            }
        )
    return per_layer, per_pos


def _json_ready(value: Any) -> Any:
    """Recursively convert to JSON types; non-finite floats become None."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _json_ready(value.tolist())
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return _json_ready(value.item())
    return str(value)
