"""The record every MI estimate is returned as: the value plus what is needed to judge it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

LOG2E = 1.0 / math.log(2.0)


@dataclass(frozen=True)
class MIEstimate:
    """One mutual-information estimate, in bits, with its provenance.

    ``ceiling_bits`` is what bounds the estimator: log2 of the held-out sample count for the
    sample-based neural bounds (no distribution-free lower bound can certify more), log2 of the
    training batch for ``mine-paper``, and ``None`` for the closed-form Gaussian, which has none.
    ``diverged`` marks an estimate whose training did not produce a finite bound; its ``bits`` is
    then the best finite value seen (possibly the 0 of an untrained critic) and must not be trusted.
    ``n_train`` counts every row used to fit anything (reduction, critic, validation) and
    ``n_test`` the held-out rows the value is read on; ``mine-paper`` uses all n for both.
    ``left_out_bits``: see the field.
    """

    bits: float
    stderr_bits: float
    ceiling_bits: float | None
    estimator: str
    n: int
    seed: int
    seconds: float
    diverged: bool = False
    n_train: int = 0
    n_test: int = 0
    steps: int = 0
    null_bits: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: the plug-in estimate with each jackknife fold of rows left out (estimators with folds):
    #: what `stderr_bits` is the jackknife of, kept so that a statistic of several estimates on
    #: the same rows gets its own jackknife instead of assuming them independent
    left_out_bits: tuple[float, ...] | None = None

    @property
    def nats(self) -> float:
        return self.bits / LOG2E

    @property
    def stderr_nats(self) -> float:
        return self.stderr_bits / LOG2E

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``nats`` included)."""
        record = asdict(self)
        record["nats"] = self.nats
        return record
