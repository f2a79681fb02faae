"""Information Emergence (IE) of a causal LM on a set of equal-length sequences.

Per block l, in bits:

    E(l) = I(h_l^macro ; h_{l+1}^macro) - (1/T) * sum_t I(h_l^{micro,t} ; h_{l+1}^{micro,t})

where the macro states are those of the last token of each sequence processed in context and the
micro states those of each token fed to the model on its own. The scalar IE is the mean of E(l)
over the blocks. Every MI comes from one batched call to `estimate_mi_many`, so all pairs of a
profile share one seed-derived split and training run.

Each number is a property of the estimator and the sample as much as of the model
(docs/method-notes.md): the result therefore carries N, the estimator's ceiling, log2(N), the
plug-in entropies of the data, the resolved estimator options, the seed and a divergence flag
next to every value; an estimate that is impossible (an MI negative beyond its noise) is flagged
`implausible` and described in `warnings`, never passed on silently.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .capture import (
    Capture,
    MomentCapture,
    StreamSpec,
    capture_moments,
    capture_states,
    plan_capture,
)
from .capture.blocks import target_states
from .estimators import estimate_mi_many, require_samples
from .estimators.api import estimate_mi_from_moments, moments_unsupported
from .estimators.moments import PairMoments, stack_pairs
from .meta import __version__
from .records import EmergenceResult, LayerEmergence, PositionEmergence, PositionLayer
from .settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_PROJECTION_DIM,
    CaptureSettings,
    EmergenceConfigError,
    EstimationSettings,
    IESettings,
)

__all__ = [
    "emergence_from_moments",
    "emergence_from_states",
    "entropy_bits",
    "measure",
    "measure_emergence",
    "stream_spec",
    "stream_unsupported",
]

_Key = tuple[str, int, int]  # (level, layer slot, token index)


# --------------------------------------------------------------------------------------------
# Public entry points


def measure_emergence(
    model: nn.Module,
    tokenizer: Any,
    sequences: Sequence[str] | Sequence[Sequence[int]] | torch.Tensor,
    *,
    protocol: str | None = None,
    estimator: str | None = None,
    target: str | None = None,
    form: str | None = None,
    layers: list[int] | None = None,
    seed: int = 0,
    per_position: bool = False,
    projection_dim: int | None = DEFAULT_PROJECTION_DIM,
    batch_size: int = DEFAULT_BATCH_SIZE,
    truncate_to: int | None = None,
    micro_bos: int | None | str = "auto",
    progress: bool = False,
    estimator_options: dict[str, Any] | None = None,
    **options: Any,
) -> EmergenceResult:
    """Measure the per-block Information Emergence E(l) and its mean over blocks, in bits.

    `protocol` names an estimator, its options, a target and a form at once (`protocols.py`);
    or set `estimator`, `target` ("output", the block's y, or "update", y - x) and `form`
    ("ie", or "psi": micro inputs against the macro output) yourself; unset, each is that of
    `DEFAULT_IE_PROTOCOL`. Options given here adjust a protocol's.

    `sequences`: texts (tokenized with add_special_tokens=False), token-id lists or a LongTensor
    [N, T]; all must have the same token length T >= 2 (or pass `truncate_to=T` to keep the
    first T tokens of each). `tokenizer` may be None for token ids. `projection_dim` applies a
    seeded random projection while capturing (bounds memory). `micro_bos`: "auto" uses
    `model_bos_token_id(model, tokenizer)`; an int or None forces it. Extra keyword arguments are
    options of the estimator (`estimator_options(estimator)`); options whose names clash with
    this function's own arguments (the critic's `layers` and `batch_size`) go in
    `estimator_options`. A thin front of `plan_capture`, `capture_states` and
    `emergence_from_states`, which take the settings objects (`measure` takes them whole).

    Standard errors are propagated assuming the estimates of a profile are independent
    (stderr(l) = sqrt(se_macro^2 + sum_t se_t^2 / T^2); the mean over layers
    sqrt(sum_l se_l^2) / L). They share one data split, so this is an approximation.
    """
    estimation = EstimationSettings.choose(
        protocol=protocol,
        estimator=estimator,
        options=_merge_options(estimator_options, options),
        target=target,
        form=form,
        seed=seed,
    )
    capture = CaptureSettings(
        layers=layers,
        projection_dim=projection_dim,
        seed=seed,
        bos=micro_bos,
        batch_size=batch_size,
    )
    return measure(
        model,
        tokenizer,
        sequences,
        IESettings(capture, estimation),
        per_position=per_position,
        truncate_to=truncate_to,
        progress=progress,
    )


def measure(
    model: nn.Module,
    tokenizer: Any,
    sequences: Sequence[str] | Sequence[Sequence[int]] | torch.Tensor,
    settings: IESettings,
    *,
    per_position: bool = False,
    truncate_to: int | None = None,
    progress: bool = False,
) -> EmergenceResult:
    """`measure_emergence` with its settings as one `IESettings` (the profile command's way in).

    Checks the sequences (equal length T >= 2, enough of them) and the blocks before any forward
    pass, then plans, captures and estimates.
    """
    ids = _as_token_ids(sequences, tokenizer, truncate_to)
    plan = plan_capture(model, tokenizer, settings.capture)  # fails (bad block) before any work
    positions = "all" if per_position else "last"
    estimation = settings.estimation
    stream = stream_spec(settings.capture.stream, len(ids), plan.info.state_dim, estimation)
    if stream is not None:
        moments = capture_moments(model, ids, plan, stream, positions=positions, progress=progress)
        return emergence_from_moments(moments, estimation, per_position=per_position)
    states = capture_states(model, ids, plan, positions=positions, progress=progress)
    return emergence_from_states(states, estimation, per_position=per_position, progress=progress)


#: Bytes a number of the captured states takes where they are kept: float32 in the library,
#: float16 in the lm-eval payloads (`harness/features.py`).
STATE_BYTES = {"library": 4, "payload": 2}


def stream_spec(
    mode: str,
    n: int,
    state_dim: int,
    estimation: EstimationSettings,
    *,
    kept_as: str = "library",
    blocked_by: str | None = None,
) -> StreamSpec | None:
    """Whether a capture of `n` sequences keeps only the moments of its states (`ie_stream`),
    and how: the one place this is decided. None keeps the states.

    "on" streams or fails naming why it cannot; "off" never streams; "auto" streams when the
    estimate can be computed from moments and they take fewer bytes than the states would
    (`kept_as` says where: per block and position 2k numbers a sequence at STATE_BYTES each,
    against folds x (2k)^2 float64 numbers of moments): at k = 64, above 2,580 sequences of
    library states or 5,160 payloads. `blocked_by` is a reason of the caller's own not to
    stream (a task that splits its documents after the passes).
    """
    if mode == "off":
        return None
    why = blocked_by or stream_unsupported(estimation)
    if mode == "on" and why is not None:
        raise EmergenceConfigError(f"ie_stream=on, but {why}; use ie_stream=auto or off")
    if why is not None:
        return None
    width = 2 * state_dim
    folds = estimation.folds
    if mode == "auto" and n * width * STATE_BYTES[kept_as] <= folds * width * (width + 1) * 8:
        return None
    return StreamSpec(rows=n, folds=folds, seed=estimation.seed, target=estimation.target)


def emergence_from_states(
    capture: Capture,
    estimation: EstimationSettings,
    *,
    per_position: bool | Sequence[int] = False,
    progress: bool = False,
) -> EmergenceResult:
    """IE from captured states: the estimation half of `measure_emergence`.

    `capture.positions` must include the last token. `per_position`: False, True (every captured
    position) or a list of token indices to report E at. The lm-eval adapter calls this on the
    states gathered from every rank, the benchmarks on subsets of one capture.
    """
    n, seq_len = capture.token_ids.shape
    report_positions = _report_positions(capture, per_position)
    require_samples(n)
    if estimation.form == "psi" and report_positions:
        raise EmergenceConfigError(
            "the psi form pairs each token with the last position's output; it has no "
            "per-position profile: use per_position=False or form='ie'"
        )
    states = capture.as_update() if estimation.target == "update" else capture
    keys, xs, ys = _pairs(states, psi=estimation.form == "psi")
    # A side that is the same in every sample (e.g. the separator token of an ICL list, fed
    # alone) has zero entropy, so the MI is exactly 0: no estimate, recorded as exact.
    todo = [i for i, (x, y) in enumerate(zip(xs, ys, strict=True)) if not _is_constant(x, y)]
    if not todo:
        raise ValueError(
            "every block input or output is identical across the sequences (all sequences are "
            "the same?); there is nothing to estimate"
        )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=1, desc=f"estimate {len(todo)} MI pairs ({estimation.estimator})")
    t0 = time.perf_counter()
    estimates = estimate_mi_many(
        [xs[i].float() for i in todo],
        [ys[i].float() for i in todo],
        estimator=estimation.estimator,
        seed=estimation.seed,
        **estimation.options,
    )
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.update(1)
        bar.close()
    null = 0.0 if estimates[0].null_bits is not None else None
    by_key: dict[_Key, Any] = {key: _ExactZero(null_bits=null) for key in keys}
    by_key.update({keys[i]: est for i, est in zip(todo, estimates, strict=True)})
    return _result(capture, estimation, by_key, report_positions, per_position, seconds)


def emergence_from_moments(
    capture: MomentCapture,
    estimation: EstimationSettings,
    *,
    per_position: bool | Sequence[int] = False,
) -> EmergenceResult:
    """IE from streamed moments (`capture_moments`): what `emergence_from_states` gives on the
    states themselves, to float rounding, for a closed-form estimator (`gaussian-floor`)."""
    n, seq_len = capture.token_ids.shape
    report_positions = _report_positions(capture, per_position)
    require_samples(n)
    why = stream_unsupported(estimation)
    if why is not None:
        raise EmergenceConfigError(f"{why}; capture the states instead (ie_stream=off)")
    if capture.target != estimation.target:
        raise EmergenceConfigError(
            f"the moments were streamed for target {capture.target!r}, the estimate asks for "
            f"{estimation.target!r}"
        )
    keys: list[_Key] = []
    parts = []
    for li, moments in enumerate(capture.macro):
        keys += [("macro", li, t) for t in capture.positions]
        parts.append(moments)
    for t in range(seq_len):
        keys += [("micro", li, t) for li in range(len(capture.layers))]
        parts.append(_micro_moments(capture, t))
    moments = stack_pairs(parts)
    constant = moments.constant()
    todo = [i for i in range(len(keys)) if not bool(constant[i])]
    if not todo:
        raise ValueError(
            "every block input or output is identical across the sequences (all sequences are "
            "the same?); there is nothing to estimate"
        )
    t0 = time.perf_counter()
    estimates = estimate_mi_from_moments(
        moments.select(todo),
        estimator=estimation.estimator,
        seed=estimation.seed,
        **estimation.options,
    )
    seconds = time.perf_counter() - t0
    by_key: dict[_Key, Any] = {key: _ExactZero(null_bits=None) for key in keys}
    by_key.update({keys[i]: est for i, est in zip(todo, estimates, strict=True)})
    return _result(capture, estimation, by_key, report_positions, per_position, seconds)


def stream_unsupported(estimation: EstimationSettings) -> str | None:
    """Why IE under `estimation` cannot be computed from streamed moments, or None if it can."""
    if estimation.form == "psi":
        return "the psi form pairs each token alone with the sequence's output row by row"
    return moments_unsupported(estimation.estimator, estimation.options)


def _micro_moments(capture: MomentCapture, t: int) -> PairMoments:
    """Moments of the micro pairs at token index t of every block: the distinct tokens' states,
    each counted as often as it stands at t in each fold."""
    table = capture.micro
    tokens, where = torch.unique(capture.token_ids[:, t], return_inverse=True)
    counts = torch.zeros(capture.n_folds, len(tokens), dtype=torch.float64)
    counts.index_put_((capture.folds, where), torch.ones(len(where), dtype=torch.float64), True)
    x, y = table.lookup(tokens[None, :])  # [L, 1, U, k]
    x, y = x[:, 0], target_states(x[:, 0], y[:, 0], capture.target)
    moments = PairMoments.empty(capture.n_folds, x.shape[0], x.shape[-1], y.shape[-1])
    moments.add_weighted(x, y, counts)
    return moments


# --------------------------------------------------------------------------------------------
# Estimation


def _report_positions(capture: Capture, per_position: bool | Sequence[int]) -> list[int]:
    seq_len = capture.token_ids.shape[1]
    captured = capture.positions
    if seq_len - 1 not in captured:
        raise ValueError(f"captured positions {captured} must include the last token {seq_len - 1}")
    if per_position is True:
        return sorted(captured)
    if per_position is False:
        return []
    wanted = sorted({int(t) for t in per_position})
    missing = sorted(set(wanted) - set(captured))
    if missing:
        raise ValueError(f"per_position asks for positions {missing} that were not captured")
    return wanted


def _pairs(
    capture: Capture, psi: bool = False
) -> tuple[list[_Key], list[torch.Tensor], list[torch.Tensor]]:
    """Every (input, output) pair of the profile: macro at each captured position, micro at
    every position, keyed by token index (BOS or not). `psi`: each micro input is paired with
    the macro output at the last position instead of its own output."""
    micro_in, micro_out = capture.micro_states()
    seq_len = capture.token_ids.shape[1]
    keys: list[_Key] = []
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    for li in range(len(capture.layers)):
        for pi, t in enumerate(capture.positions):
            xs.append(capture.macro_inputs[li, :, pi])
            ys.append(capture.macro_outputs[li, :, pi])
            keys.append(("macro", li, t))
        last = capture.macro_outputs[li, :, capture.positions.index(seq_len - 1)]
        for t in range(seq_len):
            xs.append(micro_in[li, :, t])
            ys.append(last if psi else micro_out[li, :, t])
            keys.append(("micro", li, t))
    return keys, xs, ys


def _result(
    capture: Capture | MomentCapture,
    estimation: EstimationSettings,
    by_key: dict[_Key, Any],
    report_positions: list[int],
    per_position: bool | Sequence[int],
    seconds_estimation: float,
) -> EmergenceResult:
    info, ids = capture.info, capture.token_ids
    n, seq_len = ids.shape
    layers = list(capture.layers)
    per_layer = _per_layer(by_key, layers, seq_len)
    e = [row.emergence_bits for row in per_layer]
    sum_se = math.sqrt(sum(row.stderr_bits**2 for row in per_layer))
    flagged = _implausible(by_key, layers)
    for row in per_layer:
        row.implausible = any(layer == row.layer for layer, _ in flagged)
    estimates = [v for v in by_key.values() if not isinstance(v, _ExactZero)]
    diverged_layers = [row.layer for row in per_layer if row.diverged]
    bos = info.bos_token_id
    return EmergenceResult(
        ie_bits=sum(e) / len(per_layer),
        ie_sum_bits=sum(e),
        ie_stderr_bits=sum_se / len(per_layer),
        ie_sum_stderr_bits=sum_se,
        per_layer=per_layer,
        per_position=None
        if per_position is False
        else _per_position(by_key, layers, report_positions),
        n=n,
        seq_len=seq_len,
        ceiling_bits=estimates[0].ceiling_bits,
        log2_n=math.log2(n),
        sequence_entropy_bits=entropy_bits(ids),
        token_entropy_bits=[entropy_bits(ids[:, t]) for t in range(seq_len)],
        n_distinct_sequences=int(torch.unique(ids, dim=0).shape[0]),
        bos_token_id=bos,
        micro_input="token alone" if bos is None else f"BOS + token (BOS id {bos})",
        estimator=estimation.estimator,
        estimator_options=dict(estimates[0].options),
        seed=estimation.seed,
        target=estimation.target,
        form=estimation.form,
        protocol=estimation.protocol,
        layers=layers,
        projection_dim=info.settings.projection_dim,
        hidden_dim=info.state_dim,
        any_diverged=bool(diverged_layers),
        diverged_layers=diverged_layers,
        implausible_layers=[row.layer for row in per_layer if row.implausible],
        warnings=[message for _, message in flagged],
        n_estimates=len(estimates),
        n_exact_zero=len(by_key) - len(estimates),
        seconds_capture=capture.seconds_macro + capture.seconds_micro,
        seconds_capture_macro=capture.seconds_macro,
        seconds_capture_micro=capture.seconds_micro,
        seconds_estimation=seconds_estimation,
        model_name=info.model_name,
        n_parameters=info.n_parameters,
        package_version=__version__,
    )


def entropy_bits(values: torch.Tensor) -> float:
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
        raise EmergenceConfigError(
            f"estimator option(s) {both} given twice (keyword and estimator_options)"
        )
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
    require_samples(len(rows))
    return torch.tensor(rows, dtype=torch.long)


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


#: An MI is never negative, nor above its estimator's ceiling: an estimate beyond either by more
#: than 3 stderr + this many bits is not sampling noise.
TOLERANCE_BITS = 0.1


def _implausible(by_key: dict[_Key, Any], layers: list[int]) -> list[tuple[int, str]]:
    """(block, message) for each estimate no MI can take (an estimator failure).

    Impossible: not finite; negative beyond 3 standard errors; or, where the estimator has a
    ceiling (log2 of its held-out rows), beyond it in either direction, whatever the stderr.
    """
    out = []
    for (kind, li, t), est in by_key.items():
        bits, se = est.bits, est.stderr_bits
        ceiling = getattr(est, "ceiling_bits", None)
        slack = 3 * se + TOLERANCE_BITS
        if not (math.isfinite(bits) and math.isfinite(se)):
            why = "is not finite"
        elif bits < -slack:
            why = "is below 0 by more than 3 standard errors; MI cannot be negative"
        elif ceiling is not None and not -ceiling <= bits <= ceiling + slack:
            why = f"lies outside +-{ceiling:.2f} bits, the range this estimator can read"
        else:
            continue
        message = (
            f"block {layers[li]} {kind} position {t}: {bits:.4g} ± {se:.4g} bits {why}, so this "
            "estimate (and the block's E) is unreliable"
        )
        out.append((layers[li], message))
    return out


def _is_constant(x: torch.Tensor, y: torch.Tensor) -> bool:
    return bool((x == x[:1]).all()) or bool((y == y[:1]).all())


def _micro_mean(by_key: dict[_Key, Any], li: int, upto: int) -> tuple[list[Any], float, float]:
    """Micro estimates of positions 0..upto-1 of layer slot li, their mean and its stderr."""
    mic = [by_key[("micro", li, t)] for t in range(upto)]
    mean = sum(m.bits for m in mic) / upto
    return mic, mean, math.sqrt(sum(m.stderr_bits**2 for m in mic)) / upto


def _per_layer(by_key: dict[_Key, Any], layers: list[int], seq_len: int) -> list[LayerEmergence]:
    """One row per block: macro at the last token against the mean micro term."""
    rows = []
    for li, layer in enumerate(layers):
        mac = by_key[("macro", li, seq_len - 1)]
        mic, micro_mean, micro_se = _micro_mean(by_key, li, seq_len)
        nulls = [m.null_bits for m in mic]
        rows.append(
            LayerEmergence(
                layer=layer,
                macro_bits=mac.bits,
                micro_bits=micro_mean,
                emergence_bits=mac.bits - micro_mean,
                stderr_bits=math.sqrt(mac.stderr_bits**2 + micro_se**2),
                macro_stderr_bits=mac.stderr_bits,
                micro_stderr_bits=micro_se,
                micro_bits_per_position=[m.bits for m in mic],
                micro_stderr_bits_per_position=[m.stderr_bits for m in mic],
                micro_exact_zero_positions=[
                    t for t, m in enumerate(mic) if isinstance(m, _ExactZero)
                ],
                macro_null_bits=mac.null_bits,
                micro_null_bits=None if None in nulls else sum(nulls) / seq_len,
                diverged=bool(mac.diverged or any(m.diverged for m in mic)),
            )
        )
    return rows


def _per_position(
    by_key: dict[_Key, Any], layers: list[int], positions: list[int]
) -> list[PositionEmergence]:
    """E(l, t) at each token index t: macro at t against the micro mean over k <= t."""
    out = []
    for t in positions:
        rows = []
        for li, layer in enumerate(layers):
            mac = by_key[("macro", li, t)]
            mic, micro_mean, micro_se = _micro_mean(by_key, li, t + 1)
            rows.append(
                PositionLayer(
                    layer=layer,
                    macro_bits=mac.bits,
                    macro_stderr_bits=mac.stderr_bits,
                    micro_bits=micro_mean,
                    emergence_bits=mac.bits - micro_mean,
                    stderr_bits=math.sqrt(mac.stderr_bits**2 + micro_se**2),
                    diverged=bool(mac.diverged or any(m.diverged for m in mic)),
                )
            )
        out.append(
            PositionEmergence(
                position=t,
                emergence_bits=sum(r.emergence_bits for r in rows) / len(rows),
                stderr_bits=math.sqrt(sum(r.stderr_bits**2 for r in rows)) / len(rows),
                per_layer=rows,
            )
        )
    return out
