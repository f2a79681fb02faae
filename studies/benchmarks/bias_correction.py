"""The finite-sample bias of the closed forms, plug-in against corrected, on Gaussian data of
known MI (docs/performance.md, "Bias corrections"). Prints one Markdown table.

    python -m studies.benchmarks.bias_correction [--reps 5] \
        [--json studies/benchmarks/results/bias_correction.json]

`synthetic.LinearGaussian`: x ~ N(0, I_k), y = A x + noise / 2 (A seeded), standardised; the
truth is the closed form of the population. Errors are the mean over `reps` seeded draws minus
the truth, in bits, with the gate max(0.05 bit, 2% of the truth) of docs/validity.md beside them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lm_eval_emergence import estimate_mi  # noqa: E402
from studies.synthetic import LinearGaussian  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = p.parse_args(argv)
    rows = []
    print("| estimator | k | N | truth (bits) | gate | plug-in error | jackknife | analytic |")
    print("|---|---|---|---|---|---|---|---|")
    cases = [("gaussian-floor", 0.25, ("none", "jackknife", "analytic"), "floor_bits")]
    cases.append(("v-linear", 0.1, ("none", "jackknife"), "v_linear_bits"))
    for estimator, kappa, biases, truth_of in cases:
        for k in (8, 32, 64):
            case = LinearGaussian.of(k, seed=k)
            truth = getattr(case, truth_of)(kappa)
            for n in (256, 1024, 4096, 8192):
                errors = dict.fromkeys(biases, 0.0)
                for rep, z in enumerate(case.samples(n, args.reps, seed=n + k)):
                    for b in biases:
                        extra = {"ridge": 1e-6} if estimator == "v-linear" else {}
                        est = estimate_mi(
                            z[:, :k], z[:, k:], estimator=estimator, bias=b, seed=rep, **extra
                        )
                        errors[b] += (est.bits - truth) / args.reps
                gate = max(0.05, 0.02 * abs(truth))
                rows.append({"estimator": estimator, "kappa": kappa, "k": k, "n": n,
                             "truth": truth, "gate": gate, "errors": errors})  # fmt: skip
                cells = [
                    f"{errors[b]:+.3f}" + ("" if abs(errors[b]) <= gate else " ✗") for b in biases
                ]
                cells += ["–"] * (3 - len(cells))
                print(
                    f"| {estimator} (κ = {kappa}) | {k} | {n} | {truth:.3f} | {gate:.3f} | "
                    + " | ".join(cells)
                    + " |"
                )
    if args.json is not None:
        args.json.write_text(json.dumps({"reps": args.reps, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
