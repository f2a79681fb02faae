"""Variational MI lower bounds (DV/MINE, SMILE, InfoNCE) trained with held-out early stopping.

The critics are trained on minibatches of the training rows; a validation slice of the training
data picks the checkpoint (early stopping); the reported value is the bound evaluated on the
held-out test rows at that checkpoint, so it is not inflated by the max over noisy training
estimates that the paper's read-out suffers from.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from .critic import ConcatCritic, GaussianAnchor, SeparableCritic, StackedAdam
from .registry import COMMON_OPTIONS, Outcome, Rows, held_out_rows, register_estimator


@dataclass(frozen=True)
class NeuralConfig:
    """Settings of the trained bounds; ``steps`` is a maximum: early stopping ends sooner."""

    bound: str
    critic: str = "separable"
    steps: int = 300
    batch_size: int = 256
    lr: float = 1e-3
    hidden: int = 64
    layers: int = 1
    embed: int = 32
    activation: str = "relu"
    eval_every: int = 25
    patience: int = 3
    tau: float = 5.0
    ema: float = 0.01
    weight_decay: float = 0.0
    anchor: bool = True
    anchor_ridge: float = 1e-3


def _offdiag_logmeanexp(scores: torch.Tensor) -> torch.Tensor:
    """Row-wise log mean_{j != i} exp(S_ij) of a [P, M, M] score stack: [P, M]."""
    m = scores.shape[-1]
    eye = torch.eye(m, dtype=torch.bool)
    masked = scores.masked_fill(eye, float("-inf"))
    return torch.logsumexp(masked, dim=-1) - math.log(m - 1)


def bound_terms(scores: torch.Tensor, bound: str, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The bound (nats, [P]) and its per-sample influence terms ([P, M]) from a score matrix.

    The diagonal holds the joint pairs and the off-diagonal the product of marginals. The
    influence terms give a delta-method standard error: std(terms) / sqrt(M).
    """
    m = scores.shape[-1]
    joint = scores.diagonal(dim1=-2, dim2=-1)
    if bound == "infonce":
        terms = joint - torch.logsumexp(scores, dim=-1) + math.log(m)
        return terms.mean(-1), terms
    marginal = scores.clamp(-tau, tau) if bound == "smile" else scores
    return _dv_terms(joint, _offdiag_logmeanexp(marginal))


def _dv_terms(joint: torch.Tensor, row_log_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """DV bound mean(joint) - log mean(b) and its influence terms, from [P, M] joint scores and
    each row's log mean exp of its marginal scores."""
    log_mean_b = torch.logsumexp(row_log_b, dim=-1, keepdim=True) - math.log(row_log_b.shape[-1])
    value = joint.mean(-1) - log_mean_b.squeeze(-1)
    return value, joint - torch.exp(row_log_b - log_mean_b)


def _training_loss(
    critic: SeparableCritic | ConcatCritic,
    x: torch.Tensor,
    y: torch.Tensor,
    config: NeuralConfig,
    ema: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair loss [P] for one minibatch and the updated MINE moving average."""
    if config.bound == "infonce":
        value, _ = bound_terms(critic.scores(x, y), "infonce", config.tau)
        return -value, ema
    if critic.kind == "separable":
        scores = critic.scores(x, y)
        joint = scores.diagonal(dim1=-2, dim2=-1)
        eye = torch.eye(scores.shape[-1], dtype=torch.bool)
        marginal = scores.masked_select(~eye).view(scores.shape[0], -1)
    else:
        perm = torch.randperm(x.shape[1], generator=generator)
        joint = critic.pairs(x, y)
        marginal = critic.pairs(x, y[:, perm])
    if config.bound == "smile":
        # the clipped DV is unbounded as a training objective (scores above tau get no push-back),
        # so the critic learns log p/q through the Jensen-Shannon objective, whose optimum that
        # is, and the clipped DV is only the read-out (the "SMILE + JS" variant of Song & Ermon)
        js = -F.softplus(-joint).mean(-1) - F.softplus(marginal).mean(-1)
        return -js, ema
    # MINE: DV bound with the moving-average correction of the biased log-mean-exp gradient
    mean_exp = torch.exp(marginal).mean(-1)
    ema = torch.where(
        torch.isfinite(ema),
        (1 - config.ema) * ema + config.ema * mean_exp.detach(),
        mean_exp.detach(),
    )
    surrogate = joint.mean(-1) - mean_exp / ema.clamp_min(1e-30)
    return -surrogate, ema


@torch.no_grad()
def evaluate_bound(
    critic: SeparableCritic | ConcatCritic,
    x: torch.Tensor,
    y: torch.Tensor,
    config: NeuralConfig,
    chunk: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The bound on all rows of [P, M, d] stacks, and its standard error, in nats: ([P], [P])."""
    values, errors = [], []
    for start in range(0, x.shape[0], chunk):
        sl = slice(start, start + chunk)
        sub = critic.subset(sl)
        if sub.kind == "concat" and config.bound != "infonce":
            value, terms = _shifted_bound_terms(sub, x[sl], y[sl], config)
        else:
            value, terms = bound_terms(sub.scores(x[sl], y[sl]), config.bound, config.tau)
        values.append(value)
        errors.append(terms.std(dim=-1) / math.sqrt(terms.shape[-1]))
    return torch.cat(values), torch.cat(errors)


def _shifted_bound_terms(
    critic: ConcatCritic, x: torch.Tensor, y: torch.Tensor, config: NeuralConfig, shifts: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """DV-type bound of a joint critic, its marginal term from cyclic shifts of the y rows."""
    joint = critic.pairs(x, y)
    m = x.shape[1]
    offsets = torch.linspace(1, m - 1, steps=min(shifts, m - 1)).round().long().unique()
    marginal = torch.stack([critic.pairs(x, y.roll(int(s), dims=1)) for s in offsets], dim=-1)
    if config.bound == "smile":
        marginal = marginal.clamp(-config.tau, config.tau)
    return _dv_terms(joint, torch.logsumexp(marginal, dim=-1) - math.log(marginal.shape[-1]))


def build_critic(
    n_pairs: int,
    dx: int,
    dy: int,
    config: NeuralConfig,
    generator: torch.Generator,
    anchor: GaussianAnchor | None = None,
) -> SeparableCritic | ConcatCritic:
    """The critic named by ``config.critic``, one per pair, optionally on a Gaussian anchor."""
    if config.critic == "separable":
        return SeparableCritic(
            n_pairs,
            dx,
            dy,
            hidden=config.hidden,
            layers=config.layers,
            embed=config.embed,
            generator=generator,
            activation=config.activation,
            anchor=anchor,
        )
    if config.critic == "concat":
        return ConcatCritic(
            n_pairs,
            dx,
            dy,
            widths=[config.hidden] * max(config.layers, 1),
            generator=generator,
            activation=config.activation,
            anchor=anchor,
        )
    raise ValueError(f"unknown critic {config.critic!r}; choose 'separable' or 'concat'.")


ANCHOR_SCALES = (0.0, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)


def _calibrate_anchor(
    critic: SeparableCritic | ConcatCritic,
    anchor: GaussianAnchor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    config: NeuralConfig,
) -> None:
    """Set each pair's anchor scale to the grid value with the best validation bound."""
    values = []
    for scale in ANCHOR_SCALES:
        anchor.scale = torch.full_like(anchor.scale, scale)
        values.append(evaluate_bound(critic, x_val, y_val, config)[0])
    table = torch.stack(values).nan_to_num(nan=-torch.inf)
    anchor.scale = torch.tensor(ANCHOR_SCALES)[table.argmax(dim=0)]


def train_and_estimate(
    x: torch.Tensor,
    y: torch.Tensor,
    train_idx: torch.Tensor,
    val_idx: torch.Tensor,
    test_idx: torch.Tensor,
    config: NeuralConfig,
    seed: int,
) -> Outcome:
    """Train one critic per pair of the [P, n, d] stacks; read the bound on the test rows."""
    n_pairs = x.shape[0]
    init_gen = torch.Generator().manual_seed(seed)
    batch_gen = torch.Generator().manual_seed(seed + 1)
    anchor = None
    if config.anchor:
        anchor = GaussianAnchor(x[:, train_idx], y[:, train_idx], config.anchor_ridge)
    critic = build_critic(n_pairs, x.shape[-1], y.shape[-1], config, init_gen, anchor)
    params = critic.parameters()
    optimizer = StackedAdam(params, lr=config.lr, weight_decay=config.weight_decay)
    x_val, y_val = x[:, val_idx], y[:, val_idx]
    if anchor is not None:
        _calibrate_anchor(critic, anchor, x_val, y_val, config)
    best = [p.detach().clone() for p in params]
    best_val, _ = evaluate_bound(critic, x_val, y_val, config)
    best_val = torch.where(
        torch.isfinite(best_val), best_val, torch.full_like(best_val, -torch.inf)
    )
    since_best = torch.zeros(n_pairs, dtype=torch.long)
    active = torch.ones(n_pairs, dtype=torch.bool)
    diverged = torch.zeros(n_pairs, dtype=torch.bool)
    steps_done = torch.zeros(n_pairs, dtype=torch.long)
    ema = torch.full((n_pairs,), float("nan"))
    batch = min(config.batch_size, len(train_idx))
    order = train_idx[torch.randperm(len(train_idx), generator=batch_gen)]
    cursor = 0
    for step in range(1, config.steps + 1):
        if cursor + batch > len(order):
            order = train_idx[torch.randperm(len(train_idx), generator=batch_gen)]
            cursor = 0
        idx = order[cursor : cursor + batch]
        cursor += batch
        loss, ema = _training_loss(critic, x[:, idx], y[:, idx], config, ema, batch_gen)
        finite = torch.isfinite(loss.detach())
        diverged |= active & ~finite
        active &= finite
        torch.where(finite, loss, torch.zeros_like(loss)).sum().backward()
        optimizer.step(active)
        steps_done += active.long()
        if step % config.eval_every == 0 or step == config.steps:
            val, _ = evaluate_bound(critic, x_val, y_val, config)
            improved = active & torch.isfinite(val) & (val > best_val)
            for b, p in zip(best, params, strict=True):
                b[improved] = p.detach()[improved]
            best_val = torch.where(improved, val, best_val)
            since_best = torch.where(improved, torch.zeros_like(since_best), since_best + 1)
            active &= since_best < config.patience
        if not active.any():
            break
    with torch.no_grad():
        for p, b in zip(params, best, strict=True):
            p.copy_(b)
    nats, stderr = evaluate_bound(critic, x[:, test_idx], y[:, test_idx], config)
    bad = ~torch.isfinite(nats)
    diverged |= bad | ~torch.isfinite(best_val)
    nats = torch.where(bad, torch.zeros_like(nats), nats)
    stderr = torch.where(torch.isfinite(stderr), stderr, torch.zeros_like(stderr))
    return Outcome(
        nats=nats,
        stderr_nats=stderr,
        diverged=diverged,
        steps=steps_done,
        ceiling_bits=math.log2(len(test_idx)),  # no lower bound certifies more than log2 m
    )


def _neural_rows(n: int, options: dict[str, Any], seed: int) -> Rows:
    """A supervised (CCA) reduction inflates the correlations of the rows it was fitted on: the
    critic then trains on other rows, so what it learns holds on held-out data too."""
    rows = held_out_rows(n, options, seed)
    if options["reduce"] != "cca":
        return rows
    half = len(rows.train) // 2
    return replace(rows, fit=rows.train[:half], train=rows.train[half:])


_CONFIG_FIELDS = [f.name for f in dataclasses.fields(NeuralConfig) if f.name != "bound"]
_NEURAL_OPTIONS = {
    **COMMON_OPTIONS,
    **{f.name: f.default for f in dataclasses.fields(NeuralConfig) if f.name != "bound"},
}


def _register_bound(name: str, bound: str, description: str) -> None:
    def estimate(
        x: torch.Tensor, y: torch.Tensor, rows: Rows, options: dict[str, Any], seed: int
    ) -> Outcome:
        config = NeuralConfig(bound=bound, **{k: options[k] for k in _CONFIG_FIELDS})
        return train_and_estimate(x, y, rows.train, rows.val, rows.test, config, seed)

    register_estimator(name, options=_NEURAL_OPTIONS, rows=_neural_rows, description=description)(
        estimate
    )


_register_bound("infonce", "infonce", "InfoNCE (contrastive) bound on a Gaussian-anchored critic")
_register_bound("smile", "smile", "SMILE (clipped DV) read-out of a JS-trained critic")
_register_bound("mine", "dv", "MINE: Donsker-Varadhan bound with the moving-average gradient")
