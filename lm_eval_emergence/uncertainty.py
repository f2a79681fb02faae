"""The ± of every reported value: a jackknife over document folds plus the projections' spread.

Every number the plugin reports (IE, its macro and micro terms, E per block and per position, the
spectral baselines, a model's difference from its control) is a sum over blocks of terms that
are all estimated on the same documents. A repeat of the run draws two things afresh: the
documents, and the seeded random projections of the states (`capture.RandomProjection`). The
standard error covers both:

- **documents**: the delete-a-fold jackknife of the statistic as reported, recomputed with each
  of G folds of documents left out (`Spread.left_out`). It keeps the correlation between blocks
  and positions, which share the documents; combining their own errors as if independent makes
  a mean over L blocks too certain by up to sqrt(L). A bias-corrected value reuses the jackknife
  of the uncorrected one (its coverage is tested).
- **projections**: each block draws R independent projections, and the statistic is the sum over
  blocks of the mean of the block's R terms (`Spread.projections`), so its projection variance
  is the sum over blocks of the variance of the R terms divided by R, with Satterthwaite's
  degrees of freedom (L (R - 1) when the blocks' variances are equal).

The two variances add (an interaction of documents and projections is counted in both:
slightly conservative), and the degrees of freedom of the sum are Welch-Satterthwaite's, for the
t quantile of an interval. Estimators without folds (the trained bounds `infonce`, `smile`,
`mine`, `mine-paper`) have no per-fold values: their per-pair standard errors are combined in
quadrature, as if independent, and named so (`StandardError.method`). No torch here: the
records and the report use it too.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "JACKKNIFE",
    "NCheck",
    "QUADRATURE",
    "Spread",
    "StandardError",
    "jackknife_stderr",
    "n_check",
    "standard_error",
    "welch_dof",
]

#: How a standard error's documents part was computed.
JACKKNIFE = "jackknife"
QUADRATURE = "quadrature"


def jackknife_stderr(left_out: Sequence[float]) -> float:
    """Delete-a-group jackknife standard error from the G values with one group left out each:
    sqrt((G - 1) / G * sum (v_g - mean v)^2)."""
    g = len(left_out)
    if g < 2:
        raise ValueError(f"a jackknife needs at least 2 left-out values, got {g}")
    mean = math.fsum(left_out) / g
    return math.sqrt((g - 1) / g * math.fsum((v - mean) ** 2 for v in left_out))


def welch_dof(parts: Sequence[tuple[float, float]]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variances [(variance, dof), ...]."""
    total = math.fsum(v for v, _ in parts)
    denominator = math.fsum(v * v / d for v, d in parts if v > 0 and math.isfinite(d))
    return math.inf if denominator == 0 else total * total / denominator


@dataclass(frozen=True)
class Spread:
    """What the ± of one reported value is computed from.

    `left_out`: the value with each of G document folds left out (None: the estimator has no
    folds; `quadrature` then holds its per-pair errors combined as independent). `projections`:
    per block, its term under each of the R projections, the value being the sum over blocks of
    the mean over projections (None or R = 1: the projections' spread is not measured).
    """

    value: float
    left_out: tuple[float, ...] | None
    projections: tuple[tuple[float, ...], ...] | None
    quadrature: float | None = None

    def minus(self, other: Spread) -> Spread:
        """The paired difference self - other: the same documents, folds and projections (a
        model and its control), so fold and projection effects shared by both cancel."""
        if (self.left_out is None) != (other.left_out is None) or (
            self.left_out is not None and len(self.left_out) != len(other.left_out or ())
        ):
            raise ValueError("a paired difference needs both values on the same folds")
        left = None
        if self.left_out is not None and other.left_out is not None:
            left = tuple(a - b for a, b in zip(self.left_out, other.left_out, strict=True))
        projections = None
        if self.projections is not None and other.projections is not None:
            projections = tuple(
                tuple(a - b for a, b in zip(mine, theirs, strict=True))
                for mine, theirs in zip(self.projections, other.projections, strict=True)
            )
        quadrature = None
        if self.quadrature is not None and other.quadrature is not None:
            quadrature = math.hypot(self.quadrature, other.quadrature)
        return Spread(self.value - other.value, left, projections, quadrature)

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "left_out": None if self.left_out is None else list(self.left_out),
            "projections": None
            if self.projections is None
            else [list(block) for block in self.projections],
            "quadrature": self.quadrature,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Spread:
        left = data.get("left_out")
        projections = data.get("projections")
        return cls(
            value=float(data["value"]) if data.get("value") is not None else math.nan,
            left_out=None if left is None else tuple(float(v) for v in left),
            projections=None
            if projections is None
            else tuple(tuple(float(v) for v in block) for block in projections),
            quadrature=data.get("quadrature"),
        )


@dataclass(frozen=True)
class StandardError:
    """One value's standard error and its parts: `documents` (the jackknife over folds, or the
    quadrature of the estimators' own errors), `projections` (None where not measured: one
    projection, or none) and the effective degrees of freedom of the total (None: quadrature)."""

    total: float
    documents: float
    projections: float | None
    dof: float | None
    method: str


def _projection_variance(projections: Sequence[Sequence[float]]) -> tuple[float, float] | None:
    """(variance, Satterthwaite dof) of the sum over blocks of each block's mean over its R
    projection terms; None with fewer than 2 projections."""
    replicates = {len(block) for block in projections}
    if len(replicates) != 1:
        raise ValueError(f"every block needs the same number of projections, got {replicates}")
    r = replicates.pop()
    if r < 2:
        return None
    per_block = [statistics.variance(block) / r for block in projections]
    return math.fsum(per_block), welch_dof([(v, r - 1) for v in per_block])


def standard_error(spread: Spread) -> StandardError:
    """The standard error of `spread.value` over documents and projections (module docstring)."""
    parts: list[tuple[float, float]] = []
    if spread.left_out is not None:
        documents = jackknife_stderr(spread.left_out)
        method = JACKKNIFE
        parts.append((documents**2, len(spread.left_out) - 1))
    elif spread.quadrature is not None:
        documents, method = spread.quadrature, QUADRATURE
    else:
        raise ValueError("a spread needs left-out values or a quadrature error")
    projection = None
    if spread.projections is not None:
        measured = _projection_variance(spread.projections)
        if measured is not None:
            projection = math.sqrt(measured[0])
            parts.append(measured)
    total = math.sqrt(documents**2 + (projection or 0.0) ** 2)
    dof = welch_dof(parts) if method == JACKKNIFE else None
    return StandardError(total, documents, projection, dof, method)


#: A value may move from N/2 to N documents by this much before its N/2 check flags it, beside
#: two standard errors of the change (docs/method-notes.md): max(ALLOWANCE_BITS, ALLOWANCE_REL *
#: |value at N|).
ALLOWANCE_BITS = 0.05
ALLOWANCE_REL = 0.02


@dataclass(frozen=True)
class NCheck:
    """How a value moves from N/2 to N documents, read from half of the same folds (no second
    pass): the change, its jackknife standard error (the same folds, the projections held
    fixed: their spread of the levels cancels in the paired change) and the allowance; flagged
    when |change| exceeds the allowance plus two standard errors."""

    n: int
    n_half: int
    value_half: float
    change: float
    change_stderr: float
    allowance: float
    flagged: bool

    @property
    def bound(self) -> float:
        """What |change| may reach before the check flags it."""
        return self.allowance + 2 * self.change_stderr


def n_check(
    n: int, n_half: int, value: float, value_half: float, change_left_out: Sequence[float]
) -> NCheck:
    """The N/2 check of `value` (on n rows) against `value_half` (on the n_half rows of half of
    its folds), with the change's left-out values, fold by fold."""
    change = value - value_half
    stderr = jackknife_stderr(change_left_out)
    allowance = max(ALLOWANCE_BITS, ALLOWANCE_REL * abs(value))
    return NCheck(
        n=n,
        n_half=n_half,
        value_half=value_half,
        change=change,
        change_stderr=stderr,
        allowance=allowance,
        flagged=abs(change) > allowance + 2 * stderr,
    )
