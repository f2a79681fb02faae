"""Does a candidate IE tell a model that learned from one that did not? A first probe.

The selection half of docs/validity.md: SmolLM2-135M-Instruct, copies of it with Gaussian noise
on every weight (scale `a` times each tensor's own standard deviation, seeded) and its
random-weights control (the architecture built from its config, seeded). Each model is captured
once on N country lists (k = 4) with its greedy next token, so the ICL accuracy comes from the
same forward passes; every candidate is then estimated on the same states:

- `infonce` (today's default), on the block's output y;
- `gaussian-floor` at several noise floors kappa, on y and on the block's update y - x (the skip
  path makes y close to x where a block does little, as at random init);
- `v-linear`, the usable information of a held-out linear-Gaussian predictor, at two
  covariance floors, on y and on y - x.

For each candidate, at N/2 (the lm-eval tasks' default N when --n is 4096): IE per model with
its stderr, the separation of the trained model from its random control in combined standard
errors, the Spearman correlation of IE with accuracy over the series, and the change of IE from
N/2 to N and from N/4 to N/2 (the same lists' prefixes).

    python benchmarks/validity_probe.py --json docs/validity/probe_smollm2.json
    python benchmarks/validity_probe.py --seed-spread 5 --json docs/validity/seeds_smollm2.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

import torch  # noqa: E402
from scipy import stats  # noqa: E402

from lm_eval_emergence.capture import Capture, TokenTable, capture_states, plan_capture  # noqa: E402
from lm_eval_emergence.controls import random_weights_copy  # noqa: E402
from lm_eval_emergence.data.icl import build_icl_lists, next_entity_ids  # noqa: E402
from lm_eval_emergence.default_model import load_default_model  # noqa: E402
from lm_eval_emergence.emergence import emergence_from_states  # noqa: E402
from lm_eval_emergence.settings import CaptureSettings, EstimationSettings  # noqa: E402


def degraded(model: torch.nn.Module, scale: float, seed: int) -> torch.nn.Module:
    """`model` with N(0, (scale * std(W))^2) noise added to every weight tensor W, in place."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() > 1:
                p.add_(torch.randn(p.shape, generator=gen) * (scale * float(p.std())))
    return model


def update_capture(capture: Capture) -> Capture:
    """The same capture with each block's output replaced by its update, output - input."""
    micro = capture.micro
    table = TokenTable(
        micro.token_ids, micro.inputs, micro.outputs.float() - micro.inputs.float(), micro.layers
    )
    return replace(capture, macro_outputs=capture.macro_outputs - capture.macro_inputs, micro=table)


CANDIDATES = (
    [("infonce", {}, "y")]
    + [("gaussian-floor", {"kappa": k}, t) for t in ("y", "y-x") for k in (0.25, 0.5, 1, 2)]
    + [("v-linear", {"kappa": k}, t) for t in ("y", "y-x") for k in (0.1, 1)]
)


def name_of(estimator: str, options: dict, target: str) -> str:
    opts = ",".join(f"{k}={v}" for k, v in options.items())
    return f"{estimator}({opts}) on {target}" if opts else f"{estimator} on {target}"


def probe_model(label: str, model, tok, args) -> dict:
    """Capture once; every candidate at N/4, N/2 and N."""
    built = build_icl_lists(tok, "country", 4, args.n, seed=args.data_seed)
    ok = next_entity_ids(tok, built, "country")
    settings = CaptureSettings(layers=tuple(args.layers), projection_dim=64, seed=args.seed)
    t0 = time.perf_counter()
    captured = capture_states(
        model, built.sequences, plan_capture(model, tok, settings), next_token=True
    )
    seconds_forward = time.perf_counter() - t0
    greedy = captured.greedy_next_ids.tolist()
    acc = sum(g in set(o) for g, o in zip(greedy, ok, strict=True)) / len(ok)
    out = {"model": label, "acc": acc, "seconds_forward": seconds_forward, "candidates": {}}
    variants = {"y": captured, "y-x": update_capture(captured)}
    for estimator, options, target in CANDIDATES:
        states = variants[target]
        estimation = EstimationSettings(estimator, options, seed=args.seed)
        quarter = emergence_from_states(states.subset(n=args.n // 4), estimation)
        t = time.perf_counter()
        half = emergence_from_states(states.subset(n=args.n // 2), estimation)
        seconds = time.perf_counter() - t
        full = emergence_from_states(states, estimation)
        mean = lambda rows, key: sum(getattr(r, key) for r in rows) / len(rows)  # noqa: E731
        out["candidates"][name_of(estimator, options, target)] = {
            "n": args.n // 2,
            "ie_bits": half.ie_bits,
            "ie_stderr_bits": half.ie_stderr_bits,
            "macro_bits": mean(half.per_layer, "macro_bits"),
            "micro_bits": mean(half.per_layer, "micro_bits"),
            "ceiling_bits": half.ceiling_bits,
            "ie_quarter_n_bits": quarter.ie_bits,
            "ie_full_n_bits": full.ie_bits,
            "flagged_blocks": half.flagged_layers,
            "seconds_estimation": seconds,
        }
    print(f"{label}: acc {acc:.3f}, forward {seconds_forward:.0f} s", flush=True)
    return out


def seed_spread(model, control, tok, args) -> list[dict]:
    """IE of the trained model and its control over `--seed-spread` seeds of the data sampling
    and the projection (the control's weights stay those of --seed), at N/2 lists."""
    by_seed = []
    for seed in range(args.seed_spread):
        built = build_icl_lists(tok, "country", 4, args.n // 2, seed=args.data_seed + seed)
        settings = CaptureSettings(layers=tuple(args.layers), projection_dim=64, seed=seed)
        row = {"seed": seed}
        for label, m in (("trained", model), ("random init", control)):
            captured = capture_states(m, built.sequences, plan_capture(m, tok, settings))
            variants = {"y": captured, "y-x": update_capture(captured)}
            for estimator, options, target in CANDIDATES:
                est = EstimationSettings(estimator, options, seed=seed)
                result = emergence_from_states(variants[target], est)
                row[f"{label}: {name_of(estimator, options, target)}"] = result.ie_bits
        by_seed.append(row)
        print(f"seed {seed} done", flush=True)
    out = []
    for estimator, options, target in CANDIDATES:
        name = name_of(estimator, options, target)
        entry = {"candidate": name}
        for label in ("trained", "random init"):
            values = torch.tensor([r[f"{label}: {name}"] for r in by_seed], dtype=torch.float64)
            entry[label] = {
                "mean_bits": float(values.mean()),
                "std_bits": float(values.std()),
                "cv": float(values.std() / values.mean().abs()),
            }
        out.append(entry)
    return out


def summarise(rows: list[dict]) -> list[dict]:
    """Per candidate: separation from the random control, Spearman with acc, N/2 -> N change."""
    trained = rows[0]
    control = next(r for r in rows if r["model"] == "random init")
    out = []
    for name in trained["candidates"]:
        a, b = trained["candidates"][name], control["candidates"][name]
        se = (a["ie_stderr_bits"] ** 2 + b["ie_stderr_bits"] ** 2) ** 0.5
        ie = [r["candidates"][name]["ie_bits"] for r in rows]
        rho = stats.spearmanr(ie, [r["acc"] for r in rows]).statistic
        per_model = [r["candidates"][name] for r in rows]
        change = max(abs(c["ie_full_n_bits"] - c["ie_bits"]) for c in per_model)
        change_low = max(abs(c["ie_bits"] - c["ie_quarter_n_bits"]) for c in per_model)
        out.append(
            {
                "candidate": name,
                "trained_minus_random_bits": a["ie_bits"] - b["ie_bits"],
                "separation_se": (a["ie_bits"] - b["ie_bits"]) / se if se > 0 else None,
                "spearman_with_acc": rho,
                "max_change_half_n_to_n_bits": change,
                "max_change_quarter_n_to_half_n_bits": change_low,
                "ie_by_model": dict(zip([r["model"] for r in rows], ie, strict=True)),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the probe, print its table and write the JSON; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4096, help="lists captured; IE is read at n/2")
    p.add_argument("--layers", type=int, nargs="+", default=[0, 4, 8, 12, 16, 20, 24, 29])
    p.add_argument("--noise", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3])
    p.add_argument("--seed", type=int, default=0, help="projection, estimators, weight noise")
    p.add_argument("--data-seed", type=int, default=1234)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--seed-spread",
        type=int,
        default=0,
        help="only the seed gate: IE of the trained model and its control over this many seeds",
    )
    args = p.parse_args(argv)
    if args.seed_spread:
        model, tok = load_default_model("cpu")
        spread = seed_spread(model, random_weights_copy(model, args.seed), tok, args)
        print(f"\n{'candidate':<36} {'trained mean':>12} {'CV':>7} {'random mean':>12} {'CV':>7}")
        for e in spread:
            t, r = e["trained"], e["random init"]
            print(
                f"{e['candidate']:<36} {t['mean_bits']:>12.3f} {t['cv']:>7.4f} "
                f"{r['mean_bits']:>12.3f} {r['cv']:>7.4f}"
            )
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            settings = vars(args) | {"json": str(args.json)}
            record = {"settings": settings, "seed_spread": spread}
            args.json.write_text(json.dumps(record, indent=1) + "\n")
        return 0
    torch.manual_seed(args.seed)
    model, tok = load_default_model("cpu")
    rows = [probe_model("trained", model, tok, args)]
    for scale in args.noise:
        noisy, _ = load_default_model("cpu")
        rows.append(
            probe_model(f"weight noise {scale}", degraded(noisy, scale, args.seed), tok, args)
        )
        del noisy
    rows.append(probe_model("random init", random_weights_copy(model, args.seed), tok, args))
    summary = summarise(rows)
    print(f"\n{'candidate':<36} {'trained-random':>15} {'sep (se)':>9} {'rho(acc)':>9} {'dN':>6}")
    print("(dN: the largest change of IE from N/2 to N over the models)")
    for s in summary:
        sep = "n/a" if s["separation_se"] is None else f"{s['separation_se']:.1f}"
        print(
            f"{s['candidate']:<36} {s['trained_minus_random_bits']:>15.3f} {sep:>9} "
            f"{s['spearman_with_acc']:>9.2f} {s['max_change_half_n_to_n_bits']:>6.3f}"
        )
    print("\nIE by model (bits); acc: " + ", ".join(f"{r['model']} {r['acc']:.3f}" for r in rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "settings": vars(args) | {"json": str(args.json)},
            "models": rows,
            "summary": summary,
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
