"""Information Emergence (IE) of a causal LM on a set of equal-length sequences.

Per block l, in bits:

    E(l) = I(h_l^macro ; h_{l+1}^macro) - (1/T) * sum_t I(h_l^{micro,t} ; h_{l+1}^{micro,t})

where the macro states are those of the last token of each sequence processed in context and the
micro states those of each token fed to the model on its own. The scalar IE is the mean of E(l)
over the blocks, each block's E the mean over its independent random projections. Every MI of a
profile is estimated in `pairs.py` (all pairs share one seed-derived split of the documents);
every reported number is a weighted sum of those estimates, and its standard error covers the
documents and the projections alike (`uncertainty.py`).

Each number is a property of the estimator and the sample as much as of the model
(docs/method-notes.md): the result therefore carries N, the estimator's ceiling, log2(N), the
plug-in entropies of the data, the resolved estimator options, the seed and a divergence flag
next to every value; an estimate that is impossible (an MI negative beyond its noise) is flagged
`implausible` and described in `warnings`, never passed on silently.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from ..capture import (
    Capture,
    MomentCapture,
    StreamSpec,
    capture_moments,
    capture_states,
    plan_capture,
)
from ..estimators import require_samples
from ..meta import __version__
from ..pairs import PairKey, PairTable, estimate_pairs, pairs_from_moments, stream_unsupported
from ..records import EmergenceResult, LayerEmergence, PositionEmergence, PositionLayer
from ..settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_PROJECTION_DIM,
    DEFAULT_PROJECTIONS,
    CaptureSettings,
    EmergenceConfigError,
    EstimationSettings,
    IESettings,
)
from ..uncertainty import StandardError, standard_error

__all__ = [
    "emergence_from_moments",
    "emergence_from_states",
    "entropy_bits",
    "measure",
    "measure_emergence",
    "stream_spec",
    "stream_unsupported",
]

_Key = PairKey  # (level, block slot, projection, token index)

#: An MI is never negative, nor above its estimator's ceiling: an estimate beyond either by more
#: than 3 stderr + this many bits is not sampling noise.
TOLERANCE_BITS = 0.1


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
    projections: int = DEFAULT_PROJECTIONS,
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

    Standard errors are those of the numbers as reported, over the documents (a jackknife over
    folds of documents, for estimators with folds; else the estimates' own errors in quadrature)
    and over the projections (`uncertainty.py`).
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
        projections=projections,
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
    stream = stream_spec(len(ids), estimation)
    if stream is not None:
        moments = capture_moments(model, ids, plan, stream, positions=positions, progress=progress)
        return emergence_from_moments(moments, estimation, per_position=per_position)
    states = capture_states(model, ids, plan, positions=positions, progress=progress)
    return emergence_from_states(states, estimation, per_position=per_position, progress=progress)


def stream_spec(
    n: int, estimation: EstimationSettings, *, blocked_by: str | None = None
) -> StreamSpec | None:
    """How a capture of `n` sequences keeps only the second moments of its states, or None
    where it keeps the states: the one place this is decided, by the estimate's need.

    An estimate that reads second moments (`stream_unsupported` is None: gaussian-floor in the
    ie form, the floor-update and floor-output protocols) streams them at every N; one that
    needs the samples (the trained bounds, v-linear, the psi form, sample-only options) keeps
    the states. `blocked_by` is a reason of the caller's own to keep them (a task that splits
    its documents after the passes).
    """
    if blocked_by is not None or stream_unsupported(estimation) is not None:
        return None
    return StreamSpec(
        rows=n, folds=estimation.folds, seed=estimation.seed, target=estimation.target
    )


def emergence_from_states(
    capture: Capture,
    estimation: EstimationSettings,
    *,
    per_position: bool | Sequence[int] = False,
    progress: bool = False,
) -> EmergenceResult:
    """IE from captured states: the estimation half of `measure_emergence`.

    `capture.positions` must include the last token. `per_position`: False, True (every captured
    position) or a list of token indices to report E at. An estimator that reads second moments
    reads those of the states (the numbers of a streamed capture of the same states); the others
    read the samples. The lm-eval adapter calls this on the states gathered from every rank, the
    benchmarks on subsets of one capture.
    """
    report_positions = _report_positions(capture, per_position)
    if estimation.form == "psi" and report_positions:
        raise EmergenceConfigError(
            "the psi form pairs each token with the last position's output; it has no "
            "per-position profile: use per_position=False or form='ie'"
        )
    table = estimate_pairs(capture, estimation, progress=progress)
    return _result(capture, estimation, table, report_positions, per_position)


def emergence_from_moments(
    capture: MomentCapture,
    estimation: EstimationSettings,
    *,
    per_position: bool | Sequence[int] = False,
) -> EmergenceResult:
    """IE from streamed moments (`capture_moments`): what `emergence_from_states` gives on the
    states themselves, to float rounding, for an estimator that reads second moments."""
    report_positions = _report_positions(capture, per_position)
    why = stream_unsupported(estimation)
    if why is not None:
        raise EmergenceConfigError(f"{why}; capture the states instead (capture_states)")
    table = pairs_from_moments(capture, estimation)
    return _result(capture, estimation, table, report_positions, per_position)


# --------------------------------------------------------------------------------------------
# Assembly: every reported number is a weighted sum of the pairs' estimates


def _report_positions(
    capture: Capture | MomentCapture, per_position: bool | Sequence[int]
) -> list[int]:
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


def _terms(
    slots: Sequence[int], r_count: int, macro_at: int, micro_upto: int, scale: float
) -> tuple[dict[_Key, float], dict[_Key, float]]:
    """The weights of the macro term (at `macro_at`) and of the micro mean over positions
    0..micro_upto-1, for a mean over `slots` (times `scale`) of the mean over projections."""
    each = scale / (len(slots) * r_count)
    macro = {("macro", s, r, macro_at): each for s in slots for r in range(r_count)}
    micro = {
        ("micro", s, r, t): each / micro_upto
        for s in slots
        for r in range(r_count)
        for t in range(micro_upto)
    }
    return macro, micro


def _emergence_weights(
    table: PairTable, slots: Sequence[int], at: int, scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights of E (macro minus micro mean), of the macro term and of the micro mean, at
    token index `at`, over `slots` (a mean over blocks and projections, times `scale`)."""
    macro, micro = _terms(slots, table.projections, at, at + 1, scale)
    w_macro, w_micro = table.weights(macro), table.weights(micro)
    return w_macro - w_micro, w_macro, w_micro


def _se(table: PairTable, w: torch.Tensor) -> StandardError:
    return standard_error(table.spread(w))


def _pair_flags(table: PairTable, layers: list[int]) -> list[tuple[int, str]]:
    """(block, message) for each estimate no MI can take (an estimator failure).

    Impossible: not finite; negative beyond 3 standard errors; or, where the estimator has a
    ceiling (log2 of its held-out rows), beyond it in either direction, whatever the stderr.
    """
    out = []
    ceiling = table.ceiling_bits
    for (kind, slot, r, t), bits, se, exact in zip(
        table.keys, table.value.tolist(), table.stderr.tolist(), table.exact.tolist(), strict=True
    ):
        if exact:
            continue
        slack = 3 * se + TOLERANCE_BITS
        if not (math.isfinite(bits) and math.isfinite(se)):
            why = "is not finite"
        elif bits < -slack:
            why = "is below 0 by more than 3 standard errors; MI cannot be negative"
        elif ceiling is not None and not -ceiling <= bits <= ceiling + slack:
            why = f"lies outside +-{ceiling:.2f} bits, the range this estimator can read"
        else:
            continue
        projection = f" projection {r}" if table.projections > 1 else ""
        message = (
            f"block {layers[slot]} {kind} position {t}{projection}: {bits:.4g} ± {se:.4g} bits "
            f"{why}, so this estimate (and the block's E) is unreliable"
        )
        out.append((layers[slot], message))
    return out


def _mean_over_projections(table: PairTable, level: str, slot: int, t: int) -> float:
    keys = [(level, slot, r, t) for r in range(table.projections)]
    return sum(float(table.value[table.index[k]]) for k in keys) / table.projections


def _per_layer(table: PairTable, layers: list[int], seq_len: int) -> list[LayerEmergence]:
    """One row per block: macro at the last token against the mean micro term."""
    rows = []
    last = seq_len - 1
    for slot, layer in enumerate(layers):
        w, w_macro, w_micro = _emergence_weights(table, [slot], last)
        se, se_macro, se_micro = _se(table, w), _se(table, w_macro), _se(table, w_micro)
        micro_keys = [
            [table.index[("micro", slot, r, t)] for r in range(table.projections)]
            for t in range(seq_len)
        ]
        exact = [all(bool(table.exact[i]) for i in idx) for idx in micro_keys]
        nulls = None
        if table.null is not None:
            nulls = [float(table.null[idx].mean()) for idx in micro_keys]
        macro_idx = [table.index[("macro", slot, r, last)] for r in range(table.projections)]
        per_pos_se = [
            float(torch.sqrt((table.stderr[idx] ** 2).sum()) / table.projections)
            for idx in micro_keys
        ]
        rows.append(
            LayerEmergence(
                layer=layer,
                macro_bits=float(w_macro @ table.value),
                micro_bits=float(w_micro @ table.value),
                emergence_bits=float(w @ table.value),
                stderr_bits=se.total,
                macro_stderr_bits=se_macro.total,
                micro_stderr_bits=se_micro.total,
                micro_bits_per_position=[
                    _mean_over_projections(table, "micro", slot, t) for t in range(seq_len)
                ],
                micro_stderr_bits_per_position=per_pos_se,
                micro_exact_zero_positions=[t for t, e in enumerate(exact) if e],
                macro_null_bits=None if table.null is None else float(table.null[macro_idx].mean()),
                micro_null_bits=None if nulls is None else sum(nulls) / seq_len,
                diverged=bool(table.diverged[macro_idx].any())
                or any(bool(table.diverged[idx].any()) for idx in micro_keys),
                emergence_bits_per_projection=_per_projection(table, slot, last),
                stderr_documents_bits=se.documents,
                stderr_projections_bits=se.projections,
            )
        )
    return rows


def _per_projection(table: PairTable, slot: int, last: int) -> list[float]:
    """E(l) of block slot `slot` under each of its projections."""
    out = []
    for r in range(table.projections):
        macro = float(table.value[table.index[("macro", slot, r, last)]])
        micro = [float(table.value[table.index[("micro", slot, r, t)]]) for t in range(last + 1)]
        out.append(macro - sum(micro) / len(micro))
    return out


def _per_position(
    table: PairTable, layers: list[int], positions: list[int]
) -> list[PositionEmergence]:
    """E(l, t) at each token index t: macro at t against the micro mean over k <= t."""
    out = []
    all_slots = list(range(len(layers)))
    for t in positions:
        rows = []
        for slot, layer in enumerate(layers):
            w, w_macro, w_micro = _emergence_weights(table, [slot], t)
            idx = [table.index[("macro", slot, r, t)] for r in range(table.projections)]
            idx += [
                table.index[("micro", slot, r, k)]
                for r in range(table.projections)
                for k in range(t + 1)
            ]
            rows.append(
                PositionLayer(
                    layer=layer,
                    macro_bits=float(w_macro @ table.value),
                    macro_stderr_bits=_se(table, w_macro).total,
                    micro_bits=float(w_micro @ table.value),
                    emergence_bits=float(w @ table.value),
                    stderr_bits=_se(table, w).total,
                    diverged=bool(table.diverged[idx].any()),
                )
            )
        w_all, _, _ = _emergence_weights(table, all_slots, t)
        out.append(
            PositionEmergence(
                position=t,
                emergence_bits=float(w_all @ table.value),
                stderr_bits=_se(table, w_all).total,
                per_layer=rows,
            )
        )
    return out


def _result(
    capture: Capture | MomentCapture,
    estimation: EstimationSettings,
    table: PairTable,
    report_positions: list[int],
    per_position: bool | Sequence[int],
) -> EmergenceResult:
    info, ids = capture.info, capture.token_ids
    n, seq_len = ids.shape
    layers = list(capture.layers)
    slots = list(range(len(layers)))
    per_layer = _per_layer(table, layers, seq_len)
    w, w_macro, w_micro = _emergence_weights(table, slots, seq_len - 1)
    spread = table.spread(w)
    se = standard_error(spread)
    check = table.check(w)
    flagged = _pair_flags(table, layers)
    for row in per_layer:
        row.implausible = any(layer == row.layer for layer, _ in flagged)
    diverged_layers = [row.layer for row in per_layer if row.diverged]
    bos = info.bos_token_id
    ie = float(w @ table.value)
    return EmergenceResult(
        ie_bits=ie,
        ie_sum_bits=ie * len(layers),
        ie_stderr_bits=se.total,
        ie_sum_stderr_bits=se.total * len(layers),
        per_layer=per_layer,
        per_position=None
        if per_position is False
        else _per_position(table, layers, report_positions),
        n=n,
        seq_len=seq_len,
        ceiling_bits=table.ceiling_bits,
        log2_n=math.log2(n),
        sequence_entropy_bits=entropy_bits(ids),
        token_entropy_bits=[entropy_bits(ids[:, t]) for t in range(seq_len)],
        n_distinct_sequences=int(torch.unique(ids, dim=0).shape[0]),
        bos_token_id=bos,
        micro_input="token alone" if bos is None else f"BOS + token (BOS id {bos})",
        estimator=estimation.estimator,
        estimator_options=dict(table.estimator_options),
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
        n_estimates=int((~table.exact).sum()),
        n_exact_zero=int(table.exact.sum()),
        seconds_capture=capture.seconds_macro + capture.seconds_micro,
        seconds_capture_macro=capture.seconds_macro,
        seconds_capture_micro=capture.seconds_micro,
        seconds_estimation=table.seconds,
        model_name=info.model_name,
        n_parameters=info.n_parameters,
        package_version=__version__,
        projections=table.projections,
        macro_bits=float(w_macro @ table.value),
        macro_stderr_bits=_se(table, w_macro).total,
        micro_bits=float(w_micro @ table.value),
        micro_stderr_bits=_se(table, w_micro).total,
        ie_stderr_documents_bits=se.documents,
        ie_stderr_projections_bits=se.projections,
        ie_stderr_dof=se.dof,
        stderr_method=se.method,
        ie_spread=spread.to_dict(),
        n_check=None if check is None else asdict(check),
        n_check_reason=table.half_reason if check is None else None,
        moments_bytes=table.moments_bytes,
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
