"""Variational MI lower bounds (DV/MINE, SMILE, InfoNCE) trained with held-out early stopping.

The critics are trained on minibatches of the training rows; a validation slice of the training
data picks the checkpoint (early stopping); the reported value is the bound evaluated on the
held-out test rows at that checkpoint, so it is not inflated by the max over noisy training
estimates that the paper's read-out suffers from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .critic import ConcatCritic, SeparableCritic, StackedAdam

BOUNDS = ("dv", "smile", "infonce")


@dataclass(frozen=True)
class NeuralConfig:
    """Settings of the trained bounds. ``steps`` is the maximum; early stopping usually ends sooner."""

    bound: str
    critic: str = "separable"
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    hidden: int = 64
    layers: int = 1
    embed: int = 32
    activation: str = "relu"
    eval_every: int = 50
    patience: int = 4
    tau: float = 5.0
    ema: float = 0.01


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
    row_log_b = _offdiag_logmeanexp(marginal)
    log_mean_b = torch.logsumexp(row_log_b, dim=-1, keepdim=True) - math.log(m)
    value = joint.mean(-1) - log_mean_b.squeeze(-1)
    terms = joint - torch.exp(row_log_b - log_mean_b)
    return value, terms


def _training_loss(
    critic: SeparableCritic | ConcatCritic,
    x: torch.Tensor,
    y: torch.Tensor,
    config: NeuralConfig,
    ema: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair loss [P] for one minibatch and the updated MINE moving average."""
    if critic.kind == "separable" or config.bound == "infonce":
        scores = critic.scores(x, y)
        joint = scores.diagonal(dim1=-2, dim2=-1)
        eye = torch.eye(scores.shape[-1], dtype=torch.bool)
        marginal = scores.masked_select(~eye).view(scores.shape[0], -1)
    else:
        perm = torch.randperm(x.shape[1], generator=generator)
        joint = critic.pairs(x, y)
        marginal = critic.pairs(x, y[:, perm])
    if config.bound == "infonce":
        value, _ = bound_terms(scores, "infonce", config.tau)
        return -value, ema
    if config.bound == "smile":
        marginal = marginal.clamp(-config.tau, config.tau)
        log_mean_exp = torch.logsumexp(marginal, -1) - math.log(marginal.shape[-1])
        return -(joint.mean(-1) - log_mean_exp), ema
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
        sub = _subset(critic, sl)
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
    row_log_b = torch.logsumexp(marginal, dim=-1) - math.log(marginal.shape[-1])
    log_mean_b = torch.logsumexp(row_log_b, dim=-1, keepdim=True) - math.log(m)
    value = joint.mean(-1) - log_mean_b.squeeze(-1)
    return value, joint - torch.exp(row_log_b - log_mean_b)


def _subset(critic: SeparableCritic | ConcatCritic, sl: slice) -> SeparableCritic | ConcatCritic:
    """A view of the critic restricted to the pairs in ``sl`` (shares storage, no copy)."""
    view = object.__new__(type(critic))
    view.__dict__.update(critic.__dict__)
    nets = ("f", "g") if critic.kind == "separable" else ("net",)
    for name in nets:
        net = getattr(critic, name)
        sub = object.__new__(type(net))
        sub.__dict__.update(net.__dict__)
        sub.weights = [w[sl] for w in net.weights]
        sub.biases = [b[sl] for b in net.biases]
        setattr(view, name, sub)
    return view


def build_critic(
    n_pairs: int, dx: int, dy: int, config: NeuralConfig, generator: torch.Generator
) -> SeparableCritic | ConcatCritic:
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
        )
    if config.critic == "concat":
        return ConcatCritic(
            n_pairs,
            dx,
            dy,
            widths=[config.hidden] * max(config.layers, 1),
            generator=generator,
            activation=config.activation,
        )
    raise ValueError(f"unknown critic {config.critic!r}; choose 'separable' or 'concat'.")


@dataclass
class TrainOutcome:
    """Held-out bound per pair (nats), its standard error, steps trained and a divergence flag."""

    nats: torch.Tensor
    stderr_nats: torch.Tensor
    steps: torch.Tensor
    diverged: torch.Tensor


def train_and_estimate(
    x: torch.Tensor,
    y: torch.Tensor,
    train_idx: torch.Tensor,
    val_idx: torch.Tensor,
    test_idx: torch.Tensor,
    config: NeuralConfig,
    seed: int,
) -> TrainOutcome:
    """Train one critic per pair of the [P, n, d] stacks; read the bound on the test rows."""
    n_pairs = x.shape[0]
    init_gen = torch.Generator().manual_seed(seed)
    batch_gen = torch.Generator().manual_seed(seed + 1)
    critic = build_critic(n_pairs, x.shape[-1], y.shape[-1], config, init_gen)
    params = critic.parameters()
    optimizer = StackedAdam(params, lr=config.lr)
    best = [p.detach().clone() for p in params]
    best_val = torch.full((n_pairs,), float("-inf"))
    since_best = torch.zeros(n_pairs, dtype=torch.long)
    active = torch.ones(n_pairs, dtype=torch.bool)
    diverged = torch.zeros(n_pairs, dtype=torch.bool)
    steps_done = torch.zeros(n_pairs, dtype=torch.long)
    ema = torch.full((n_pairs,), float("nan"))
    batch = min(config.batch_size, len(train_idx))
    order = train_idx[torch.randperm(len(train_idx), generator=batch_gen)]
    cursor = 0
    x_val, y_val = x[:, val_idx], y[:, val_idx]
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
    return TrainOutcome(nats=nats, stderr_nats=stderr, steps=steps_done, diverged=diverged)
