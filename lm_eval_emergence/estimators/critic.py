"""Critics for the neural MI bounds, stacked so that P independent critics train as one batch.

Every weight has a leading pair dimension P and every layer is one batched matrix product, so
the grid of (layer, position) pairs of an emergence profile costs one training run, not P.
All P critics start from the same seeded draw: pair p's trajectory does not depend on which
other pairs share the batch, so a single estimate and a batched one agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

ACTIVATIONS = {"relu": F.relu, "leaky_relu": F.leaky_relu, "gelu": F.gelu}


class StackedMLP:
    """P independent MLPs with the given layer widths, applied to [P, B, in] stacks."""

    def __init__(
        self,
        n_pairs: int,
        widths: Sequence[int],
        *,
        generator: torch.Generator,
        activation: str = "relu",
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; choose one of {list(ACTIVATIONS)}."
            )
        self.activation = ACTIVATIONS[activation]
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            std = (2.0 / (fan_in + fan_out)) ** 0.5  # Xavier-normal
            w = torch.randn(fan_in, fan_out, generator=generator) * std
            self.weights.append(w.expand(n_pairs, -1, -1).clone().requires_grad_(True))
            self.biases.append(torch.zeros(n_pairs, 1, fan_out, requires_grad=True))

    def parameters(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = self.activation(x)
        return x


class SeparableCritic:
    """T(x, y) = f(x) . g(y): one pass per side gives the scores of all B x B pairings."""

    kind = "separable"

    def __init__(
        self,
        n_pairs: int,
        dx: int,
        dy: int,
        *,
        hidden: int,
        layers: int,
        embed: int,
        generator: torch.Generator,
        activation: str = "relu",
    ) -> None:
        self.f = StackedMLP(
            n_pairs, [dx, *[hidden] * layers, embed], generator=generator, activation=activation
        )
        self.g = StackedMLP(
            n_pairs, [dy, *[hidden] * layers, embed], generator=generator, activation=activation
        )

    def parameters(self) -> list[torch.Tensor]:
        return [*self.f.parameters(), *self.g.parameters()]

    def scores(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[P, Bx, By] scores of every x row against every y row."""
        return self.f(x) @ self.g(y).transpose(1, 2)


class ConcatCritic:
    """T(x, y) = MLP([x; y]), the joint critic of MINE: one pass per (x, y) pairing."""

    kind = "concat"

    def __init__(
        self,
        n_pairs: int,
        dx: int,
        dy: int,
        *,
        widths: Sequence[int],
        generator: torch.Generator,
        activation: str = "leaky_relu",
    ) -> None:
        self.net = StackedMLP(
            n_pairs, [dx + dy, *widths, 1], generator=generator, activation=activation
        )

    def parameters(self) -> list[torch.Tensor]:
        return self.net.parameters()

    def pairs(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[P, B] scores of row i of x against row i of y."""
        return self.net(torch.cat([x, y], dim=-1)).squeeze(-1)

    def scores(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[P, Bx, By] scores of every pairing (Bx * By critic passes: use on small batches)."""
        p, bx, by = x.shape[0], x.shape[1], y.shape[1]
        xx = x[:, :, None, :].expand(p, bx, by, x.shape[-1])
        yy = y[:, None, :, :].expand(p, bx, by, y.shape[-1])
        joint = torch.cat([xx, yy], dim=-1).reshape(p, bx * by, -1)
        return self.net(joint).reshape(p, bx, by)


class StackedAdam:
    """Adam over stacked parameters, with a per-pair mask that freezes finished pairs exactly."""

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = params
        self.lr = lr
        self.betas = betas
        self.eps = eps
        n_pairs = params[0].shape[0]
        self.steps = torch.zeros(n_pairs)
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, active: torch.Tensor, lr: float | None = None) -> None:
        lr = self.lr if lr is None else lr
        b1, b2 = self.betas
        self.steps += active.float()
        t = self.steps.clamp_min(1.0)
        c1 = 1 - b1**t
        c2 = 1 - b2**t
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            shape = (-1,) + (1,) * (p.dim() - 1)
            mask = active.view(shape)
            g = p.grad
            m.copy_(torch.where(mask, b1 * m + (1 - b1) * g, m))
            v.copy_(torch.where(mask, b2 * v + (1 - b2) * g * g, v))
            update = (m / c1.view(shape)) / ((v / c2.view(shape)).sqrt() + self.eps)
            p.sub_(torch.where(mask, lr * update, torch.zeros_like(update)))
            p.grad = None
