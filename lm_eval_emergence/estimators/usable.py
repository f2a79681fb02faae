"""Usable (V-)information with a held-out linear-Gaussian predictor (Xu et al., ICLR 2020).

I_V(X -> Y) = H_V(Y) - H_V(Y | X) for the predictor family V: here y | x ~ N(W x + b, S) and
y ~ N(m, S_y), fitted on the training rows (ridge-regularised W, each covariance given a floor
kappa^2 I, in units of each standardised coordinate), and scored on held-out rows as the mean
log-likelihood gain log q(y | x) - log q(y). Unlike Shannon MI it can be created by computation
and depends on what a restricted predictor can extract, which is why it can depend on the model;
it is finite on deterministic maps because of the floor and the held-out read-out, and it can be
negative when the fitted predictor does not generalise.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .gaussian import sample_covariance
from .moments import (
    DEFAULT_FOLDS,
    jackknife_bias_corrected,
    jackknife_fold_count,
    jackknife_fold_ids,
)
from .registry import (
    COMMON_OPTIONS,
    Outcome,
    Rows,
    held_out_rows,
    register_estimator,
    require_choice,
    require_positive,
)

__all__ = ["jackknife_terms", "usable_information_terms"]


def _gaussian_logpdf(resid: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """log N(resid; 0, cov) per row of [P, m, d] residuals with [P, d, d] covariances."""
    chol = torch.linalg.cholesky(cov)
    z = torch.linalg.solve_triangular(chol, resid.transpose(1, 2), upper=False)  # [P, d, m]
    logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1, keepdim=True)
    d = resid.shape[-1]
    return -0.5 * ((z * z).sum(1) + logdet + d * math.log(2 * math.pi))


def usable_information_terms(
    x: torch.Tensor, y: torch.Tensor, rows: Rows, ridge: float, kappa: float
) -> torch.Tensor:
    """Per held-out row log q(y | x) - log q(y), in nats, for [P, n, d] stacks: [P, n_test]."""
    return _terms(x.double(), y.double(), rows.train, rows.test, ridge, kappa)


def _terms(
    x: torch.Tensor,
    y: torch.Tensor,
    train: torch.Tensor,
    test: torch.Tensor,
    ridge: float,
    kappa: float,
) -> torch.Tensor:
    """`usable_information_terms` of the predictor fitted on the rows `train`, read on `test`."""
    xt, yt = x[:, train], y[:, train]
    x_mean, y_mean = xt.mean(1, keepdim=True), yt.mean(1, keepdim=True)
    xc, yc = xt - x_mean, yt - y_mean
    gram = xc.transpose(1, 2) @ xc
    scale = gram.diagonal(dim1=-2, dim2=-1).mean(-1)[:, None, None]
    eye_x = torch.eye(x.shape[-1], dtype=x.dtype)
    weights = torch.linalg.solve(gram + ridge * scale * eye_x, xc.transpose(1, 2) @ yc)
    eye_y = kappa**2 * torch.eye(y.shape[-1], dtype=y.dtype)
    cov_cond = sample_covariance(yc - xc @ weights) + eye_y  # the residuals' mean is 0
    cov_marg = sample_covariance(yc) + eye_y
    xs, ys = x[:, test] - x_mean, y[:, test] - y_mean
    return _gaussian_logpdf(ys - xs @ weights, cov_cond) - _gaussian_logpdf(ys, cov_marg)


def jackknife_terms(
    x: torch.Tensor,
    y: torch.Tensor,
    rows: Rows,
    ridge: float,
    kappa: float,
    folds: int,
    seed: int,
) -> torch.Tensor:
    """Per held-out row terms with the bias of fitting on finitely many rows removed: the
    predictor is refitted with each of `folds` seeded folds of the training rows left out and the
    1 / n_train term of the held-out gain fitted and removed (`jackknife_bias_corrected`), row
    by row, so the corrected terms' spread gives the stderr: [P, n_test]."""
    x, y = x.double(), y.double()
    full = _terms(x, y, rows.train, rows.test, ridge, kappa)
    fold_of = jackknife_fold_ids(len(rows.train), folds, seed)
    kept = [rows.train[fold_of != f] for f in range(jackknife_fold_count(len(rows.train), folds))]
    left_out = [_terms(x, y, train, rows.test, ridge, kappa) for train in kept]
    counts = torch.tensor([len(rows.train), *map(len, kept)], dtype=torch.float64)
    return jackknife_bias_corrected(torch.stack([full, *left_out]), counts)


def _check(options: dict[str, Any]) -> None:
    require_positive(
        options, "kappa", "the covariance floor, in units of each coordinate's standard deviation"
    )
    require_choice(options, "bias", ("none", "jackknife"), "the finite-sample correction")


@register_estimator(
    "v-linear",
    # bias "none" until the validity study's rule picks the correction
    options={
        **COMMON_OPTIONS,
        "reduce": "none",
        "kappa": 0.1,
        "bias": "none",
        "folds": DEFAULT_FOLDS,
    },
    rows=held_out_rows,
    check=_check,
)
def v_linear(
    x: torch.Tensor, y: torch.Tensor, rows: Rows, options: dict[str, Any], seed: int
) -> Outcome:
    """Usable information of a linear-Gaussian predictor, fitted on train rows, read held out."""
    ridge, kappa = float(options["ridge"]), float(options["kappa"])
    if options["bias"] == "jackknife":
        terms = jackknife_terms(x, y, rows, ridge, kappa, int(options["folds"]), seed)
    else:
        terms = usable_information_terms(x, y, rows, ridge, kappa)
    nats = terms.mean(-1)
    stderr = terms.std(-1) / math.sqrt(terms.shape[-1])
    return Outcome(
        nats=nats.float(),
        stderr_nats=stderr.float(),
        diverged=~torch.isfinite(nats),
        steps=torch.zeros(x.shape[0]),
        ceiling_bits=None,
    )
