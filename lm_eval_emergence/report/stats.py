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


@dataclass
class Breakpoint:
    """Where a metric starts to change along x: the hinge y = level + slope * max(0, x - at),
    fitted by least squares over a grid of `at`, with a profile 95% interval.

    `open_low` / `open_high`: the interval reaches the lowest / highest breakpoint the runs can
    place (at least two runs must lie above it), so the data do not bound it on that side.
    `r2` and `r2_line` compare the hinge with one straight line over all runs.
    """

    n: int
    at: float | None = None
    ci: tuple[float, float] | None = None
    open_low: bool = False
    open_high: bool = False
    level: float | None = None
    slope: float | None = None
    r2: float | None = None
    r2_line: float | None = None
    note: str | None = None  # why there is no fit


def _hinge_sse(x: np.ndarray, y: np.ndarray, at: float) -> tuple[float, float, float]:
    """(SSE, level, slope) of the least-squares hinge with its breakpoint at `at`."""
    design = np.stack([np.ones_like(x), np.maximum(0.0, x - at)], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    return float(residual @ residual), float(coef[0]), float(coef[1])


def breakpoint_fit(x: Sequence[float], y: Sequence[float], *, grid: int = 400) -> Breakpoint:
    """The hinge fit of `y` against `x` (e.g. a metric against log10 parameters).

    The breakpoint is searched on `grid` points from the smallest x to the third-largest (two
    runs must lie above it, so one run cannot make a rise). The interval is the set of
    breakpoints whose residual sum of squares is within the F(1, n - 3) 95% bound of the best
    (the profile-likelihood interval of segmented regression, Lerman 1980). Needs 4 runs with
    distinct x and a y that varies.
    """
    from scipy import stats

    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(xa)
    out = Breakpoint(n=n)
    if n < 4 or len(np.unique(xa)) < 4:
        out.note = f"no breakpoint from {len(np.unique(xa))} distinct x value(s) (need 4)"
        return out
    if np.ptp(ya) == 0:
        out.note = "no breakpoint: the metric is the same for every run"
        return out
    top = np.sort(np.unique(xa))[-3]
    candidates = np.linspace(xa.min(), top, grid)
    fits = [_hinge_sse(xa, ya, c) for c in candidates]
    sse = np.array([f[0] for f in fits])
    best = int(np.argmin(sse))
    bound = sse[best] * (1.0 + stats.f.ppf(0.95, 1, n - 3) / (n - 3))
    inside = np.flatnonzero(sse <= bound + 1e-12 * max(1.0, float(sse.max())))
    total = float(((ya - ya.mean()) ** 2).sum())
    out.at = float(candidates[best])
    out.ci = (float(candidates[inside.min()]), float(candidates[inside.max()]))
    out.open_low = bool(inside.min() == 0)
    out.open_high = bool(inside.max() == grid - 1)
    out.level, out.slope = fits[best][1], fits[best][2]
    out.r2 = 1.0 - float(sse[best]) / total
    out.r2_line = 1.0 - fits[0][0] / total  # the hinge at the smallest x is one line
    return out
