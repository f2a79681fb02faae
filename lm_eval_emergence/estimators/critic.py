"""Critics for the neural MI bounds, stacked so that P independent critics train as one batch.

Every weight has a leading pair dimension P and every layer is one batched matrix product, so
the grid of (layer, position) pairs of an emergence profile costs one training run, not P.
All P critics start from the same seeded draw: pair p's trajectory does not depend on which
other pairs share the batch, so a single estimate and a batched one agree.

A critic may carry a Gaussian anchor: the log density ratio log p(y|x)/p(y) of the Gaussian
fitted to the training rows. The network then learns only what the Gaussian misses, starting
from zero, and early stopping can never end below the anchor's own held-out value.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .gaussian import sample_covariance

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
        zero_last: bool = False,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; choose one of {list(ACTIVATIONS)}."
            )
        self.activation = ACTIVATIONS[activation]
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        pairs = list(zip(widths[:-1], widths[1:], strict=True))
        for i, (fan_in, fan_out) in enumerate(pairs):
            std = (2.0 / (fan_in + fan_out)) ** 0.5  # Xavier-normal
            w = torch.randn(fan_in, fan_out, generator=generator, device=generator.device) * std
            if zero_last and i == len(pairs) - 1:
                w = torch.zeros_like(w)
            self.weights.append(w.expand(n_pairs, -1, -1).clone().requires_grad_(True))
            bias = torch.zeros(n_pairs, 1, fan_out, device=generator.device)
            self.biases.append(bias.requires_grad_(True))

    def parameters(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def subset(self, sl: slice) -> StackedMLP:
        """The MLPs of the pairs in ``sl`` (views: no copy)."""
        view = object.__new__(StackedMLP)
        view.activation = self.activation
        view.weights = [w[sl] for w in self.weights]
        view.biases = [b[sl] for b in self.biases]
        return view

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = self.activation(x)
        return x


class GaussianAnchor:
    """log p(y|x) - log p(y) of a Gaussian fitted to standardised training rows, per pair.

    An anchor that believes in the chance correlations of its training rows is punished on
    held-out data (it pulls the estimate of an independent pair below zero), so its log ratio is
    multiplied by a per-pair ``scale`` in [0, 1] that the trainer calibrates on validation rows.

    Written as a bilinear term plus one term in x alone and one in y alone, so all B x B
    pairings cost one matrix product. ``ridge`` keeps the conditional covariance invertible when
    y is (nearly) a deterministic function of x, as a block's output is of its input.
    """

    def __init__(self, x_fit: torch.Tensor, y_fit: torch.Tensor, ridge: float) -> None:
        dx = x_fit.shape[-1]
        cov = sample_covariance(torch.cat([x_fit, y_fit], dim=-1))
        cov = cov + ridge * torch.eye(cov.shape[-1], dtype=cov.dtype)
        cxx, cyy, cxy = cov[:, :dx, :dx], cov[:, dx:, dx:], cov[:, :dx, dx:]
        a = torch.linalg.solve(cxx, cxy).transpose(1, 2)  # E[y|x] = A x, [P, dy, dx]
        cond = cyy - a @ cxy  # Cov(y|x)
        cond_inv = torch.linalg.inv(cond)
        self.bilinear = (a.transpose(1, 2) @ cond_inv).float()  # x^T B y, [P, dx, dy]
        self.quad_x = (a.transpose(1, 2) @ cond_inv @ a).float()
        self.quad_y = (cond_inv - torch.linalg.inv(cyy)).float()
        logdet = torch.linalg.slogdet(cyy)[1] - torch.linalg.slogdet(cond)[1]
        self.const = (0.5 * logdet).float()
        self.scale = torch.ones(x_fit.shape[0])

    def subset(self, sl: slice) -> GaussianAnchor:
        view = object.__new__(GaussianAnchor)
        for name in ("bilinear", "quad_x", "quad_y", "const", "scale"):
            setattr(view, name, getattr(self, name)[sl])
        return view

    def _row(self, x: torch.Tensor) -> torch.Tensor:
        return -0.5 * ((x @ self.quad_x) * x).sum(-1)

    def _col(self, y: torch.Tensor) -> torch.Tensor:
        return -0.5 * ((y @ self.quad_y) * y).sum(-1)

    def scores(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        bil = (x @ self.bilinear) @ y.transpose(1, 2)
        s = bil + self._row(x)[:, :, None] + self._col(y)[:, None, :] + self.const[:, None, None]
        return self.scale[:, None, None] * s

    def pairs(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        bil = ((x @ self.bilinear) * y).sum(-1)
        return self.scale[:, None] * (bil + self._row(x) + self._col(y) + self.const[:, None])


class SeparableCritic:
    """T(x, y) = f(x) . g(y) (+ anchor): one pass per side scores all B x B pairings."""

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
        anchor: GaussianAnchor | None = None,
    ) -> None:
        self.anchor = anchor
        self.f = StackedMLP(
            n_pairs, [dx, *[hidden] * layers, embed], generator=generator, activation=activation
        )
        self.g = StackedMLP(
            n_pairs,
            [dy, *[hidden] * layers, embed],
            generator=generator,
            activation=activation,
            zero_last=anchor is not None,
        )

    def parameters(self) -> list[torch.Tensor]:
        return [*self.f.parameters(), *self.g.parameters()]

    def subset(self, sl: slice) -> SeparableCritic:
        view = object.__new__(SeparableCritic)
        view.f, view.g = self.f.subset(sl), self.g.subset(sl)
        view.anchor = None if self.anchor is None else self.anchor.subset(sl)
        return view

    def scores(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[P, Bx, By] scores of every x row against every y row."""
        s = self.f(x) @ self.g(y).transpose(1, 2)
        return s if self.anchor is None else s + self.anchor.scores(x, y)


class ConcatCritic:
    """T(x, y) = MLP([x; y]) (+ anchor), the joint critic of MINE: one pass per pairing."""

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
        anchor: GaussianAnchor | None = None,
    ) -> None:
        self.anchor = anchor
        self.net = StackedMLP(
            n_pairs,
            [dx + dy, *widths, 1],
            generator=generator,
            activation=activation,
            zero_last=anchor is not None,
        )

    def parameters(self) -> list[torch.Tensor]:
        return self.net.parameters()

    def subset(self, sl: slice) -> ConcatCritic:
        view = object.__new__(ConcatCritic)
        view.net = self.net.subset(sl)
        view.anchor = None if self.anchor is None else self.anchor.subset(sl)
        return view

    def pairs(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[P, B] scores of row i of x against row i of y."""
        s = self.net(torch.cat([x, y], dim=-1)).squeeze(-1)
        return s if self.anchor is None else s + self.anchor.pairs(x, y)

    def scores(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[P, Bx, By] scores of every pairing (Bx * By critic passes: use on small batches)."""
        p, bx, by = x.shape[0], x.shape[1], y.shape[1]
        xx = x[:, :, None, :].expand(p, bx, by, x.shape[-1])
        yy = y[:, None, :, :].expand(p, bx, by, y.shape[-1])
        joint = torch.cat([xx, yy], dim=-1).reshape(p, bx * by, -1)
        s = self.net(joint).reshape(p, bx, by)
        return s if self.anchor is None else s + self.anchor.scores(x, y)


class StackedAdam:
    """Adam(W) over stacked parameters, with a per-pair mask that freezes finished pairs exactly."""

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = params
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        n_pairs = params[0].shape[0]
        self.steps = torch.zeros(n_pairs, device=params[0].device)
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
            if self.weight_decay:
                update = update + self.weight_decay * p
            p.sub_(torch.where(mask, lr * update, torch.zeros_like(update)))
            p.grad = None
