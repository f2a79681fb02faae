"""Ground-truth MI cases: correlated Gaussians with closed-form MI, and invertible maps of them.

Used by the tests, ``studies/benchmarks/estimators.py`` and
``studies/benchmarks/bias_correction.py``. MI is invariant under invertible maps of either side,
so every variant keeps the closed-form value of the Gaussian it was made from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

NONLINEAR = ("none", "cubic", "coupling")


@dataclass(frozen=True)
class GaussianCase:
    """Samples x [n, d], y [n, d] and their true MI in bits."""

    x: torch.Tensor
    y: torch.Tensor
    true_bits: float


def gaussian_mi_bits(k: int, rho: float) -> float:
    """Closed-form MI of k coordinate pairs of correlation rho: -(k/2) log2(1 - rho^2)."""
    return -0.5 * k * math.log2(1.0 - rho * rho)


def rho_for_bits(bits: float, k: int) -> float:
    """The correlation that gives ``bits`` of MI spread over k coordinate pairs."""
    return math.sqrt(1.0 - 2.0 ** (-2.0 * bits / k))


def correlated_gaussian(
    n: int, d: int, *, k: int, bits: float, seed: int = 0, nonlinear: str = "none"
) -> GaussianCase:
    """x and y in d dimensions whose dependence lives in k randomly rotated coordinate pairs.

    ``nonlinear`` applies an invertible map to y: ``cubic`` acts on each coordinate
    (y + y^3 / 3), ``coupling`` mixes coordinates (an affine coupling layer).
    """
    if nonlinear not in NONLINEAR:
        raise ValueError(f"unknown nonlinear map {nonlinear!r}; choose one of {NONLINEAR}.")
    if not 0 < k <= d:
        raise ValueError(f"k must be in 1..d={d}, got {k}.")
    g = torch.Generator().manual_seed(seed)
    rho = rho_for_bits(bits, k) if bits > 0 else 0.0
    zx = torch.randn(n, d, generator=g)
    zy = torch.randn(n, d, generator=g)
    zy[:, :k] = rho * zx[:, :k] + math.sqrt(1.0 - rho * rho) * zy[:, :k]
    qx, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    qy, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    x, y = zx @ qx, zy @ qy
    if nonlinear == "cubic":
        y = y + y**3 / 3.0
    elif nonlinear == "coupling":
        half = d // 2
        a = torch.randn(half, d - half, generator=g) / math.sqrt(half)
        b = torch.randn(half, d - half, generator=g) / math.sqrt(half)
        ya, yb = y[:, :half], y[:, half:]
        yb = yb * torch.exp(0.5 * torch.tanh(ya @ a)) + torch.sin(2.0 * ya @ b)
        y = torch.cat([ya, yb], dim=1)
    return GaussianCase(x=x, y=y, true_bits=gaussian_mi_bits(k, rho))


def discrete_deterministic(n: int, d: int, *, n_symbols: int, seed: int = 0) -> GaussianCase:
    """A uniform symbol embedded in d dimensions (x) and a fixed nonlinear map of it (y).

    y is a deterministic function of x, as a transformer block's output is of its input, and x
    takes ``n_symbols`` values, as a token's state does when fed alone: I(x; y) = H(x) =
    log2(n_symbols) bits. Estimators that treat the data as continuous see an infinite MI here.
    """
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(n_symbols, d, generator=g)
    w = torch.randn(d, d, generator=g) / math.sqrt(d)
    symbols = torch.randint(0, n_symbols, (n,), generator=g)
    x = table[symbols]
    return GaussianCase(x=x, y=torch.tanh(x @ w) + x, true_bits=math.log2(n_symbols))


@dataclass(frozen=True)
class LinearGaussian:
    """x ~ N(0, I_k) and y = A x + noise / 2 (A seeded), both standardised: the joint
    correlation [2k, 2k] and the truths of the closed forms the bias corrections aim at."""

    k: int
    correlation: torch.Tensor  # float64

    @classmethod
    def of(cls, k: int, seed: int) -> LinearGaussian:
        g = torch.Generator().manual_seed(seed)
        a = torch.randn(k, k, generator=g, dtype=torch.float64) / math.sqrt(k)
        eye = torch.eye(k, dtype=torch.float64)
        cov = torch.cat([torch.cat([eye, a.T], 1), torch.cat([a, a @ a.T + 0.25 * eye], 1)])
        scale = cov.diagonal().rsqrt()
        return cls(k, cov * scale[:, None] * scale[None, :])

    def samples(self, n: int, reps: int, seed: int) -> list[torch.Tensor]:
        """`reps` seeded draws of n joint rows [n, 2k] (float32; x first)."""
        g = torch.Generator().manual_seed(seed)
        chol = torch.linalg.cholesky(self.correlation)
        d = 2 * self.k
        return [
            (torch.randn(n, d, generator=g, dtype=torch.float64) @ chol.T).float()
            for _ in range(reps)
        ]

    def floor_bits(self, kappa: float) -> float:
        """I(x + kappa z1; y + kappa z2) of the population (what gaussian-floor estimates)."""
        k = self.k
        c = self.correlation + kappa**2 * torch.eye(2 * k, dtype=torch.float64)
        logdet = lambda m: float(torch.linalg.slogdet(m)[1])  # noqa: E731
        return 0.5 * (logdet(c[:k, :k]) + logdet(c[k:, k:]) - logdet(c)) / math.log(2)

    def v_linear_bits(self, kappa: float) -> float:
        """Held-out log-likelihood gain of the population linear-Gaussian predictor with the
        covariance floor kappa^2 I (what v-linear estimates, without ridge)."""
        k, c = self.k, self.correlation
        sxx, sxy, syy = c[:k, :k], c[:k, k:], c[k:, k:]
        cond = syy - sxy.T @ torch.linalg.solve(sxx, sxy)
        floor = kappa**2 * torch.eye(k, dtype=torch.float64)

        def expected_logpdf(m: torch.Tensor) -> float:
            return -0.5 * float(
                torch.trace(torch.linalg.solve(m + floor, m)) + torch.logdet(m + floor)
            )

        return (expected_logpdf(cond) - expected_logpdf(syy)) / math.log(2)
