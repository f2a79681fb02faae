"""The finite-sample bias of the closed forms, plug-in against corrected, on Gaussian data of
known MI (docs/performance.md, "Bias corrections"). Prints one Markdown table.

    python benchmarks/bias_correction.py [--reps 5]

x ~ N(0, I_k), y = A x + noise / 2 (A seeded), standardised: the truth is the closed form of the
population. Errors are the mean over `reps` seeded draws minus the truth, in bits, with the gate
max(0.05 bit, 2% of the truth) of docs/validity.md beside them.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from lm_eval_emergence import estimate_mi  # noqa: E402


def joint_correlation(k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(k, k, generator=g, dtype=torch.float64) / math.sqrt(k)
    eye = torch.eye(k, dtype=torch.float64)
    cov = torch.cat([torch.cat([eye, a.T], 1), torch.cat([a, a @ a.T + 0.25 * eye], 1)])
    scale = cov.diagonal().rsqrt()
    return cov * scale[:, None] * scale[None, :]


def floor_truth(corr: torch.Tensor, k: int, kappa: float) -> float:
    c = corr + kappa**2 * torch.eye(2 * k, dtype=torch.float64)
    logdet = lambda m: float(torch.linalg.slogdet(m)[1])  # noqa: E731
    return 0.5 * (logdet(c[:k, :k]) + logdet(c[k:, k:]) - logdet(c)) / math.log(2)


def v_linear_truth(corr: torch.Tensor, k: int, kappa: float) -> float:
    sxx, sxy, syy = corr[:k, :k], corr[:k, k:], corr[k:, k:]
    cond = syy - sxy.T @ torch.linalg.solve(sxx, sxy)
    floor = kappa**2 * torch.eye(k, dtype=torch.float64)

    def expected(c: torch.Tensor) -> float:
        return -0.5 * float(torch.trace(torch.linalg.solve(c + floor, c)) + torch.logdet(c + floor))

    return (expected(cond) - expected(syy)) / math.log(2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args(argv)
    print("| estimator | k | N | truth (bits) | gate | plug-in error | jackknife | analytic |")
    print("|---|---|---|---|---|---|---|---|")
    cases = [("gaussian-floor", 0.25, ("none", "jackknife", "analytic"), floor_truth)]
    cases.append(("v-linear", 0.1, ("none", "jackknife"), v_linear_truth))
    for estimator, kappa, biases, truth_of in cases:
        for k in (8, 32, 64):
            corr = joint_correlation(k, seed=k)
            truth = truth_of(corr, k, kappa)
            chol = torch.linalg.cholesky(corr)
            for n in (256, 1024, 4096, 8192):
                g = torch.Generator().manual_seed(n + k)
                errors = dict.fromkeys(biases, 0.0)
                for rep in range(args.reps):
                    z = (torch.randn(n, 2 * k, generator=g, dtype=torch.float64) @ chol.T).float()
                    for b in biases:
                        extra = {"ridge": 1e-6} if estimator == "v-linear" else {}
                        est = estimate_mi(
                            z[:, :k], z[:, k:], estimator=estimator, bias=b, seed=rep, **extra
                        )
                        errors[b] += (est.bits - truth) / args.reps
                gate = max(0.05, 0.02 * abs(truth))
                cells = [
                    f"{errors[b]:+.3f}" + ("" if abs(errors[b]) <= gate else " ✗") for b in biases
                ]
                cells += ["–"] * (3 - len(cells))
                print(
                    f"| {estimator} (κ = {kappa}) | {k} | {n} | {truth:.3f} | {gate:.3f} | "
                    + " | ".join(cells)
                    + " |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
