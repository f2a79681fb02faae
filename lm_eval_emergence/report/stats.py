"""Correlation over runs: Spearman and Pearson with percentile bootstrap intervals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .text import fmt


@dataclass
class Correlation:
    """Spearman and Pearson coefficients over runs with percentile bootstrap 95% intervals."""

    n: int
    spearman: float | None = None
    spearman_ci: tuple[float, float] | None = None
    pearson: float | None = None
    pearson_ci: tuple[float, float] | None = None
    resamples: int = 0  # bootstrap resamples requested
    resamples_used: int = 0  # those where both coefficients are defined
    note: str | None = None  # why there are no numbers


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    r = (x * y).sum(axis=1) / np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    return np.clip(r, -1.0, 1.0)


def correlate(
    x: Sequence[float], y: Sequence[float], *, bootstrap: int = 2000, seed: int = 0
) -> Correlation:
    """Spearman and Pearson of paired values, with bootstrap CIs (resampling pairs).

    Fewer than 3 pairs or a constant variable give no numbers, only `note`. Resamples in which
    a variable is constant (coefficient undefined) are skipped; `resamples_used` counts the rest.
    """
    from scipy import stats

    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    n = len(xa)
    out = Correlation(n=n, resamples=bootstrap)
    if n < 3:
        out.note = f"no correlation can be computed from {n} run{'s' if n != 1 else ''} (need 3)"
        return out
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        out.note = "undefined: one of the two variables is the same for every run"
        return out
    # no p-values: scipy's asymptotic ones are wrong for a handful of runs (rho = 1 at n = 5
    # would read p ~ 1e-24 where the exact permutation p is 1/60)
    out.spearman = float(stats.spearmanr(xa, ya).statistic)
    out.pearson = float(stats.pearsonr(xa, ya).statistic)
    if bootstrap > 0:
        idx = np.random.default_rng(seed).integers(0, n, size=(bootstrap, n))
        xs, ys = xa[idx], ya[idx]
        ok = (np.ptp(xs, axis=1) > 0) & (np.ptp(ys, axis=1) > 0)
        xs, ys = xs[ok], ys[ok]
        out.resamples_used = int(ok.sum())
        if out.resamples_used:
            rs = _rowwise_pearson(stats.rankdata(xs, axis=1), stats.rankdata(ys, axis=1))
            rp = _rowwise_pearson(xs, ys)
            out.spearman_ci = tuple(float(v) for v in np.percentile(rs, [2.5, 97.5]))
            out.pearson_ci = tuple(float(v) for v in np.percentile(rp, [2.5, 97.5]))
    return out


def corr_text(corr: Correlation) -> str:
    """One line: n, both coefficients with their intervals, or why there are none."""
    if corr.note:
        return corr.note
    return (
        f"n={corr.n}  Spearman {fmt(corr.spearman, 2)} {ci_text(corr.spearman_ci)}  "
        f"Pearson {fmt(corr.pearson, 2)} {ci_text(corr.pearson_ci)}"
    )


def ci_text(ci: tuple[float, float] | None) -> str:
    """An interval as "[lo, hi]", "[n/a]" when no resample was usable."""
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "[n/a]"
