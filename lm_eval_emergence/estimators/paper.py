"""The paper's MINE configuration, reproduced exactly as a reference point (arXiv 2405.12617).

A joint critic 2d -> 768 -> 384 -> ... -> 3 -> 1 (LeakyReLU, Xavier-normal weights, zero biases)
on the first 768 channels of each side, the Donsker-Varadhan bound with a fresh permutation for
the product of marginals at every step, Adam at lr 1e-4 with 5 warm-up steps and a cubic
polynomial decay to 1e-8, one full batch of all N pairs per step, and as the result the maximum
over all steps of the training-batch estimate. That read-out is biased upward and may exceed
log2(N); it is kept because it is what the paper reports.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from .critic import ConcatCritic, StackedAdam
from .registry import UNSPLIT_OPTIONS, Outcome, Rows, all_rows, register_estimator

PAPER_WIDTHS = (768, 384, 192, 96, 48, 24, 12, 6, 3)


@dataclass(frozen=True)
class PaperConfig:
    steps: int = 10_000
    lr: float = 1e-4
    lr_end: float = 1e-8
    warmup: int = 5
    power: float = 3.0
    channels: int = 768
    device: str = "cpu"


def paper_lr(step: int, config: PaperConfig) -> float:
    """Learning rate at ``step`` (1-based): linear warm-up, then polynomial decay to lr_end."""
    if step <= config.warmup:
        return config.lr * step / max(config.warmup, 1)
    remaining = max(config.steps - config.warmup, 1)
    progress = min((step - config.warmup) / remaining, 1.0)
    return (config.lr - config.lr_end) * (1 - progress) ** config.power + config.lr_end


def train_paper(x: torch.Tensor, y: torch.Tensor, config: PaperConfig, seed: int) -> Outcome:
    """Max-over-steps DV estimate per pair of [P, n, d] stacks, in nats.

    ``stderr_nats`` is the spread (standard deviation) of the training estimate over the last
    100 steps: the paper reports none, and this is the noise its max is taken over.
    """
    device = torch.device(config.device)
    x = x[..., : config.channels].to(device)
    y = y[..., : config.channels].to(device)
    n_pairs, n = x.shape[0], x.shape[1]
    init_gen = torch.Generator(device=device).manual_seed(seed)
    perm_gen = torch.Generator(device=device).manual_seed(seed + 1)
    critic = ConcatCritic(
        n_pairs,
        x.shape[-1],
        y.shape[-1],
        widths=PAPER_WIDTHS,
        generator=init_gen,
        activation="leaky_relu",
    )
    optimizer = StackedAdam(critic.parameters(), lr=config.lr)
    best = torch.full((n_pairs,), float("-inf"), device=device)
    recent: list[torch.Tensor] = []
    active = torch.ones(n_pairs, dtype=torch.bool, device=device)
    log_n = math.log(n)
    for step in range(1, config.steps + 1):
        perm = torch.randperm(n, generator=perm_gen, device=device)
        joint = critic.pairs(x, y)
        marginal = critic.pairs(x, y[:, perm])
        value = joint.mean(-1) - (torch.logsumexp(marginal, dim=-1) - log_n)
        finite = torch.isfinite(value.detach())
        active &= finite
        (-torch.where(finite, value, torch.zeros_like(value))).sum().backward()
        optimizer.step(active, lr=paper_lr(step, config))
        detached = torch.where(finite, value.detach(), torch.full_like(best, float("-inf")))
        best = torch.maximum(best, detached)
        recent = (recent + [value.detach()])[-100:]
        if not active.any():
            break
    spread = torch.stack(recent).std(dim=0) if len(recent) > 1 else torch.zeros_like(best)
    diverged = ~active | ~torch.isfinite(best)
    nats = torch.where(torch.isfinite(best), best, torch.zeros_like(best))
    spread = torch.where(torch.isfinite(spread), spread, torch.zeros_like(spread))
    return Outcome(
        nats=nats.cpu(),
        stderr_nats=spread.cpu(),
        diverged=diverged.cpu(),
        steps=torch.full((n_pairs,), config.steps),
        ceiling_bits=math.log2(n),  # the training batch is all n rows
    )


_PAPER_FIELDS = [f.name for f in dataclasses.fields(PaperConfig)]


@register_estimator(
    "mine-paper",
    options={**UNSPLIT_OPTIONS, **{f.name: f.default for f in dataclasses.fields(PaperConfig)}},
    rows=all_rows,  # the paper holds nothing out
)
def mine_paper(
    x: torch.Tensor, y: torch.Tensor, rows: Rows, options: dict[str, Any], seed: int
) -> Outcome:
    """The paper's MINE: max over full-batch training steps of the DV bound (biased upward)."""
    return train_paper(x, y, PaperConfig(**{k: options[k] for k in _PAPER_FIELDS}), seed)
