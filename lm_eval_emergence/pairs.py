"""Every (input, output) pair of an IE profile, estimated: one table of values and fold values.

An IE profile is built from pairs keyed (level, block slot, projection, token index): the macro
pair of each block at each captured position, in context, and the micro pair of each block at
each position, the token fed alone, each under every projection of the block. `PairTable` holds
their estimates as arrays (the value, each pair's own standard error, the plug-in value with
each document fold left out, and the same on half of the folds), and turns any weighted sum of
them, which every reported number is, into a `Spread` (`uncertainty.py`).

Two ways to fill it, one per kind of estimator:

- `pairs_from_moments`: estimators that read second moments (`gaussian-floor`, the default
  protocol's), from streamed moments or from states kept in memory, block by block (one
  block's pairs in memory at a time); the half-N values come from half of the same folds;
- `pairs_from_samples`: estimators that need the samples (the trained bounds, the psi form), one
  batched call over every pair; no half-N values.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import torch

from . import heap
from .capture import Capture, MomentCapture, TokenTable
from .capture.blocks import by_replicate, target_states
from .estimators import estimate_mi_many, require_samples
from .estimators.api import moments_unsupported, outcome_from_moments
from .estimators.inputs import MIN_SAMPLES
from .estimators.moments import (
    PairMoments,
    jackknife_fold_count,
    jackknife_fold_ids,
    moments_of_samples,
)
from .estimators.result import LOG2E
from .settings import EmergenceConfigError, EstimationSettings
from .uncertainty import NCheck, Spread, n_check

__all__ = ["PairKey", "PairTable", "pairs_from_moments", "pairs_from_samples", "stream_unsupported"]

#: (level "macro" or "micro", block slot, projection, token index)
PairKey = tuple[str, int, int, int]


@dataclass(eq=False)
class PairTable:
    """The estimates of every pair of a profile, in bits, as arrays over the pairs ([K]).

    `value`: the estimate as reported (bias-corrected where the estimator corrects);
    `stderr`: each pair's own standard error; `left_out`: [G, K] the plug-in value with each of
    G document folds left out (None: the estimator has no folds). The N/2 check's (None: not
    computed, `half_reason` says why): `half`, the mean of the value on the rows of each half
    of the folds (folds 0..m-1 and m..2m-1, N/2 documents each); `pair_left_out` [m, K], the
    plug-in on all rows with folds j and m + j left out together, and `half_left_out` [m, K],
    the mean of the two halves' plug-ins, each with its fold of that pair left out. The change
    IE(N) - IE(N/2) is then a symmetric function of the m pairs of folds, whose jackknife reads
    its variance alone (leaving out one fold would shrink one half only and mix the halves'
    linear terms, and their finite-sample bias, into it). A constant side makes a pair's MI
    exactly 0 (`exact`): no estimate, zeros everywhere.
    """

    keys: list[PairKey]
    value: torch.Tensor
    stderr: torch.Tensor
    diverged: torch.Tensor
    exact: torch.Tensor
    null: torch.Tensor | None
    left_out: torch.Tensor | None
    half: torch.Tensor | None
    pair_left_out: torch.Tensor | None
    half_left_out: torch.Tensor | None
    n: int
    n_half: int | None
    n_blocks: int
    projections: int
    estimator_options: dict
    ceiling_bits: float | None
    seconds: float
    half_reason: str | None = None
    #: second moments held at once while estimating (streamed ones included; None: samples)
    moments_bytes: int | None = None
    index: dict[PairKey, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {key: i for i, key in enumerate(self.keys)}

    def weights(self, terms: Mapping[PairKey, float]) -> torch.Tensor:
        """A weight per pair, [K] float64, from {key: coefficient}."""
        w = torch.zeros(len(self.keys), dtype=torch.float64)
        for key, coefficient in terms.items():
            w[self.index[key]] += coefficient
        return w

    def _by_block(self, w: torch.Tensor) -> torch.Tensor:
        """[L, R]: each block's share of `w . value` under each projection, times R (so that the
        value is the sum over blocks of the mean over projections)."""
        out = torch.zeros(self.n_blocks, self.projections, dtype=torch.float64)
        for (_, slot, r, _), wk, vk in zip(self.keys, w.tolist(), self.value.tolist(), strict=True):
            if wk:
                out[slot, r] += wk * vk * self.projections
        return out

    def spread(self, w: torch.Tensor) -> Spread:
        """The `Spread` of the weighted sum `w . value`."""
        value = float(w @ self.value)
        left_out = None
        if self.left_out is not None:
            left_out = tuple((self.left_out @ w).tolist())
        blocks = self._by_block(w)
        used = blocks.abs().sum(1) > 0
        projections = tuple(tuple(row) for row in blocks[used].tolist())
        quadrature = float(((w * self.stderr) ** 2).sum().sqrt())
        return Spread(value, left_out, projections or None, quadrature)

    def check(self, w: torch.Tensor) -> NCheck | None:
        """The N/2 check of `w . value` (None where no half was computed)."""
        if self.half is None or self.half_left_out is None or self.pair_left_out is None:
            return None
        change_left_out = (self.pair_left_out - self.half_left_out) @ w
        return n_check(
            self.n,
            self.n_half or 0,
            float(w @ self.value),
            float(w @ self.half),
            change_left_out.tolist(),
        )


def stream_unsupported(estimation: EstimationSettings) -> str | None:
    """Why IE under `estimation` cannot be computed from second moments, or None if it can."""
    if estimation.form == "psi":
        return "the psi form pairs each token alone with the sequence's output row by row"
    return moments_unsupported(estimation.estimator, estimation.options)


# ------------------------------------------------------------------------------- from moments


def _fold_counts(token_ids: torch.Tensor, folds: torch.Tensor, n_folds: int, t: int):
    """The distinct tokens at index t and how often each stands there in each fold: [U], [F, U]."""
    tokens, where = torch.unique(token_ids[:, t], return_inverse=True)
    counts = torch.zeros(n_folds, len(tokens), dtype=torch.float64)
    counts.index_put_((folds, where), torch.ones(len(where), dtype=torch.float64), True)
    return tokens, counts


def _table_rows(table: TokenTable, tokens: torch.Tensor) -> torch.Tensor:
    """Rows of `table` holding `tokens` (every token must be in it)."""
    order = torch.argsort(table.token_ids)
    where = torch.searchsorted(table.token_ids[order], tokens).clamp(max=len(order) - 1)
    if not bool((table.token_ids[order][where] == tokens).all()):
        missing = sorted(set(tokens.tolist()) - set(table.token_ids.tolist()))[:10]
        raise RuntimeError(f"no micro state was captured for token ids {missing}")
    return order[where]


def _micro_moments(
    table: TokenTable,
    slot: int,
    counts: list[tuple[torch.Tensor, torch.Tensor]],
    target: str,
    projections: int,
) -> list[PairMoments]:
    """Block slot `slot`'s micro moments at each token index (pairs: the projections): the
    distinct tokens' states, each counted as often as it stands there in each fold."""
    out = []
    for tokens, weights in counts:
        rows = _table_rows(table, tokens)
        x = by_replicate(table.inputs[slot, rows].float(), projections).transpose(0, 1)
        y = by_replicate(table.outputs[slot, rows].float(), projections).transpose(0, 1)
        moments = PairMoments.empty(weights.shape[0], projections, x.shape[-1], y.shape[-1])
        moments.add_weighted(x, target_states(x, y, target), weights)
        out.append(moments)
    return out


def _macro_moments_of_states(
    capture: Capture, slot: int, target: str, folds: int, seed: int
) -> PairMoments:
    """Block slot `slot`'s macro moments from kept states (pairs p * R + r, as streamed)."""
    r = capture.projections
    x = by_replicate(capture.macro_inputs[slot].float(), r).flatten(1, 2).transpose(0, 1)
    y = by_replicate(capture.macro_outputs[slot].float(), r).flatten(1, 2).transpose(0, 1)
    return moments_of_samples(x, target_states(x, y, target), folds, seed)


def pairs_from_moments(
    capture: Capture | MomentCapture, estimation: EstimationSettings
) -> PairTable:
    """Every pair of the profile estimated from second moments, one block at a time."""
    why = stream_unsupported(estimation)
    if why is not None:
        raise EmergenceConfigError(f"{why}; estimate from the samples instead")
    n, seq_len = capture.token_ids.shape
    require_samples(n)
    r_count = capture.projections
    if isinstance(capture, MomentCapture):
        if capture.target != estimation.target:
            raise EmergenceConfigError(
                f"the moments were streamed for target {capture.target!r}, the estimate asks for "
                f"{estimation.target!r}"
            )
        folds, n_folds = capture.folds, capture.n_folds
    else:
        n_folds = jackknife_fold_count(n, estimation.folds)
        folds = jackknife_fold_ids(n, estimation.folds, estimation.seed)
    counts = [_fold_counts(capture.token_ids, folds, n_folds, t) for t in range(seq_len)]
    held = int((torch.bincount(folds, minlength=n_folds) > 0).sum())
    m = held // 2  # folds 0..m-1 and m..2m-1 are the halves; an odd last fold is in neither
    sizes = torch.bincount(folds, minlength=n_folds)
    n_half = min(int(sizes[:m].sum()), int(sizes[m : 2 * m].sum())) if m else 0
    half_reason = None
    if m < 2 or n_half < MIN_SAMPLES:
        half_reason = (
            f"half of the folds hold {n_half} documents, below the {MIN_SAMPLES} an estimate "
            "needs (or too few folds)"
        )
    keys: list[PairKey] = []
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in _BLOCK_ARRAYS}
    streamed = sum(p.nbytes for p in capture.macro) if isinstance(capture, MomentCapture) else 0
    peak = 0
    t0 = time.perf_counter()
    for slot in range(len(capture.layers)):
        keys += [("macro", slot, r, t) for t in capture.positions for r in range(r_count)]
        keys += [("micro", slot, r, t) for t in range(seq_len) for r in range(r_count)]
        # one group of pairs at a time (the block's macro pairs, then each position's micro
        # pairs): what is held while estimating is one group's moments and their covariances,
        # not the block's (issue 35: the block's stack was the estimation's transient peak)
        for moments in _block_groups(capture, slot, counts, estimation):
            arrays, held_bytes = _estimate_block(
                moments, estimation, held, m if half_reason is None else 0
            )
            del moments
            peak = max(peak, held_bytes)
            for name in _BLOCK_ARRAYS:
                parts[name].append(arrays[name])
        heap.release()  # the block's freed tensors, before the next block's (heap.py)
    exact_all = torch.cat(parts["exact"])
    if bool(exact_all.all()):
        raise ValueError(
            "every block input or output is identical across the sequences (all sequences are "
            "the same?); there is nothing to estimate"
        )
    cat = lambda name, dim=0: torch.cat(parts[name], dim)  # noqa: E731
    no_half = half_reason is not None
    return PairTable(
        keys=keys,
        value=cat("value"),
        stderr=cat("stderr"),
        diverged=cat("diverged"),
        exact=exact_all,
        null=None,
        left_out=cat("left_out", 1),
        half=None if no_half else cat("half"),
        pair_left_out=None if no_half else cat("pair_left_out", 1),
        half_left_out=None if no_half else cat("half_left_out", 1),
        n=n,
        n_half=None if no_half else n_half,
        n_blocks=len(capture.layers),
        projections=r_count,
        estimator_options=estimation.resolved_options(),
        ceiling_bits=None,
        seconds=time.perf_counter() - t0,
        half_reason=half_reason,
        moments_bytes=streamed + peak,
    )


def _block_groups(
    capture: Capture | MomentCapture,
    slot: int,
    counts: list[tuple[torch.Tensor, torch.Tensor]],
    estimation: EstimationSettings,
) -> Iterator[PairMoments]:
    """Block slot `slot`'s pairs as groups of moments, in the order of the table's keys: its
    macro pairs (every captured position and projection), then the micro pairs of each token
    index (every projection), each built only when it is asked for."""
    if isinstance(capture, MomentCapture):
        yield capture.macro[slot]
    else:
        yield _macro_moments_of_states(
            capture, slot, estimation.target, estimation.folds, estimation.seed
        )
    for at in counts:
        (micro,) = _micro_moments(capture.micro, slot, [at], estimation.target, capture.projections)
        yield micro


#: What `_estimate_block` gives for every pair of one block.
_BLOCK_ARRAYS = (
    "value",
    "stderr",
    "diverged",
    "exact",
    "left_out",
    "half",
    "pair_left_out",
    "half_left_out",
)


def _estimate_block(
    moments: PairMoments, estimation: EstimationSettings, held: int, m: int
) -> tuple[dict[str, torch.Tensor], int]:
    """Every pair of one group of a block's pairs (`moments`, on `held` folds with rows)
    estimated: the arrays of `PairTable` for its pairs and the bytes of second moments held at
    once. `m` > 0: also the
    N/2 check's values, from the halves (folds 0..m-1, m..2m-1) and the pairs (j, m + j)."""
    exact = moments.constant()
    todo = torch.nonzero(~exact).flatten().tolist()
    width = moments.n_pairs
    out = {
        "value": torch.zeros(width, dtype=torch.float64),
        "stderr": torch.zeros(width, dtype=torch.float64),
        "diverged": torch.zeros(width, dtype=torch.bool),
        "exact": exact,
        "left_out": torch.zeros(held, width, dtype=torch.float64),
        "half": torch.zeros(width, dtype=torch.float64),
        "pair_left_out": torch.zeros(m, width, dtype=torch.float64),
        "half_left_out": torch.zeros(m, width, dtype=torch.float64),
    }
    if not todo:
        return out, moments.nbytes
    options = dict(estimation.options)
    bits = lambda t: t.double() * LOG2E  # noqa: E731
    chosen = moments.select(todo)
    full = outcome_from_moments(chosen, estimation.estimator, options)
    out["value"][todo] = bits(full.nats)
    out["stderr"][todo] = bits(full.stderr_nats)
    out["diverged"][todo] = full.diverged.cpu()
    out["left_out"][:, todo] = bits(full.fold_nats[1:])  # type: ignore[index]
    held_bytes = moments.nbytes + chosen.nbytes
    if m:
        odd = [[2 * m]] if held % 2 else []  # kept in the whole, in neither half
        paired = chosen.grouped_folds([[j, m + j] for j in range(m)] + odd)
        whole = outcome_from_moments(paired, estimation.estimator, options)
        out["pair_left_out"][:, todo] = bits(whole.fold_nats[1 : 1 + m])  # type: ignore[index]
        for which in (range(m), range(m, 2 * m)):
            half = chosen.grouped_folds([[j] for j in which])
            part = outcome_from_moments(half, estimation.estimator, options)
            out["half"][todo] += bits(part.nats) / 2
            out["half_left_out"][:, todo] += bits(part.fold_nats[1:]) / 2  # type: ignore[index]
        held_bytes += paired.nbytes + half.nbytes
    return out, held_bytes


# ------------------------------------------------------------------------------- from samples


def _sample_pairs(
    capture: Capture, psi: bool
) -> tuple[list[PairKey], list[torch.Tensor], list[torch.Tensor]]:
    """Every (input, output) pair of the profile as samples: macro at each captured position,
    micro at every position, each under every projection. `psi`: each micro input is paired
    with the macro output at the last position instead of its own output."""
    r_count = capture.projections
    micro_in, micro_out = (by_replicate(s, r_count) for s in capture.micro_states())
    macro_in = by_replicate(capture.macro_inputs, r_count)  # [L, N, P, R, k]
    macro_out = by_replicate(capture.macro_outputs, r_count)
    seq_len = capture.token_ids.shape[1]
    last = capture.positions.index(seq_len - 1)
    keys: list[PairKey] = []
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    for slot in range(len(capture.layers)):
        for r in range(r_count):
            for pi, t in enumerate(capture.positions):
                xs.append(macro_in[slot, :, pi, r])
                ys.append(macro_out[slot, :, pi, r])
                keys.append(("macro", slot, r, t))
            for t in range(seq_len):
                xs.append(micro_in[slot, :, t, r])
                ys.append(macro_out[slot, :, last, r] if psi else micro_out[slot, :, t, r])
                keys.append(("micro", slot, r, t))
    return keys, xs, ys


def pairs_from_samples(
    capture: Capture, estimation: EstimationSettings, *, progress: bool = False
) -> PairTable:
    """Every pair of the profile estimated from the samples, in one batched call."""
    n = capture.token_ids.shape[0]
    require_samples(n)
    states = capture.as_update() if estimation.target == "update" else capture
    keys, xs, ys = _sample_pairs(states, psi=estimation.form == "psi")
    # A side that is the same in every sample (e.g. the separator token of an ICL list, fed
    # alone) has zero entropy, so the MI is exactly 0: no estimate, recorded as exact.
    exact = torch.tensor(
        [bool((x == x[:1]).all()) or bool((y == y[:1]).all()) for x, y in zip(xs, ys, strict=True)]
    )
    todo = torch.nonzero(~exact).flatten().tolist()
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
    k = len(keys)
    value = torch.zeros(k, dtype=torch.float64)
    stderr = torch.zeros(k, dtype=torch.float64)
    diverged = torch.zeros(k, dtype=torch.bool)
    value[todo] = torch.tensor([e.bits for e in estimates], dtype=torch.float64)
    stderr[todo] = torch.tensor([e.stderr_bits for e in estimates], dtype=torch.float64)
    diverged[todo] = torch.tensor([e.diverged for e in estimates])
    null = None
    if estimates[0].null_bits is not None:
        null = torch.zeros(k, dtype=torch.float64)
        null[todo] = torch.tensor([e.null_bits for e in estimates], dtype=torch.float64)
    left_out = None
    if all(e.left_out_bits is not None for e in estimates):  # an estimator with folds
        g = len(estimates[0].left_out_bits or ())
        left_out = torch.zeros(g, k, dtype=torch.float64)
        left_out[:, todo] = torch.tensor([e.left_out_bits for e in estimates]).T.double()
    return PairTable(
        keys=keys,
        value=value,
        stderr=stderr,
        diverged=diverged,
        exact=exact,
        null=null,
        left_out=left_out,
        half=None,
        pair_left_out=None,
        half_left_out=None,
        n=n,
        n_half=None,
        n_blocks=len(capture.layers),
        projections=capture.projections,
        estimator_options=dict(estimates[0].options),
        ceiling_bits=estimates[0].ceiling_bits,
        seconds=seconds,
        half_reason="the estimator reads samples: no fold-half estimate without a second fit",
    )


def estimate_pairs(
    capture: Capture | MomentCapture,
    estimation: EstimationSettings,
    *,
    progress: bool = False,
) -> PairTable:
    """The pairs of `capture` estimated the one way its estimator allows: from second moments
    where it reads them (streamed or kept states alike), else from the samples."""
    if isinstance(capture, MomentCapture) or stream_unsupported(estimation) is None:
        return pairs_from_moments(capture, estimation)
    return pairs_from_samples(capture, estimation, progress=progress)
