"""Does a candidate IE tell a model that learned from one that did not? The validity probe.

docs/validity.md. Three series whose answer is known, each model captured once on N country
lists (k = 4) with its greedy next token, so the ICL accuracy comes from the same forward
passes; every candidate is then estimated on the same states:

- `--series smollm2` (the selection series): SmolLM2-135M-Instruct, copies with Gaussian noise
  on every weight (scale `a` times each tensor's own standard deviation, seeded) and its
  random-weights control (the architecture built from its config, seeded);
- `--series qwen` (confirmation): the same for Qwen2.5-Coder-0.5B-Instruct, the shipped model
  (`python -m studies.models qwen2.5-coder-0.5b-instruct`), or the GGUF file given by `--gguf`;
- `--series family` (confirmation): the family trained here from scratch (`family.py`), every
  width at every checkpoint; each width's step 0 is its own random control.

Candidates (`CANDIDATES`): `infonce` (the default before `floor-update`); `gaussian-floor` at
several noise floors kappa; `v-linear` (usable information of a held-out linear-Gaussian predictor);
`infonce` with relative noise (`noise_rel`); each on the block's output y or its update y - x,
and the closed-form floor also in the psi form (token alone in, sequence output in context).
Beside them, the spectral baselines of the same states (`spectral.py`, `BASELINES`): erank and
matrix entropy of the block outputs, and Diff-eRank against each model's control. Accuracy and
`logprob_correct` (the log-probability mass on the correct next tokens) come from the same
passes.

For each candidate, at N/2: its value per model with its stderr, the separation of each
trained model from its control in combined standard errors, the Spearman correlation with
accuracy over the series (and with logprob_correct) with bootstrap 95% intervals, the change
from N/2 to N and from N/4 to N/2 (the same lists' prefixes), and the largest block's distance
from the ceiling; a metric read as "lower is more ability" (`DIRECTION`) is compared with its sign
turned.

    python -m studies.validity.probe --json RESULTS/probe_smollm2.json
    python -m studies.validity.probe --seed-spread 5 --json RESULTS/seeds_smollm2.json
    python -m studies.validity.probe --series family --json RESULTS/probe_family.json

(RESULTS: studies/validity/results; `make validity` runs them.)
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch  # noqa: E402
from scipy import stats  # noqa: E402

from lm_eval_emergence.capture import capture_states, plan_capture  # noqa: E402
from lm_eval_emergence.controls import random_weights_copy  # noqa: E402
from lm_eval_emergence.data.icl import build_icl_lists, next_entity_ids  # noqa: E402
from lm_eval_emergence.default_model import (  # noqa: E402
    default_model_dir,
    load_default_model,
    load_gguf_model,
)
from lm_eval_emergence.metrics.emergence import emergence_from_states  # noqa: E402
from lm_eval_emergence.metrics.spectral import erank, matrix_entropy  # noqa: E402
from lm_eval_emergence.metrics.table import direction  # noqa: E402
from lm_eval_emergence.settings import CaptureSettings, EstimationSettings  # noqa: E402
from lm_eval_emergence.uncertainty import Spread, standard_error  # noqa: E402
from studies.family import (  # noqa: E402
    ListData,
    build_family_model,
    list_data_from_icl,
    train_checkpoints,
)
from studies.models import load as load_study_model
from studies.validity.tables import converges  # noqa: E402  (benchmarks/, beside this script)

#: (estimator, options, target, form) of every candidate; "update" is the block's update y - x,
#: "psi" pairs each token alone with the sequence's output (`protocols.FORMS`).
CANDIDATES = (
    [("infonce", {}, "output", "ie")]
    + [
        ("gaussian-floor", {"kappa": k}, t, "ie")
        for t in ("output", "update")
        for k in (0.25, 0.5, 1, 2)
    ]
    + [("v-linear", {"kappa": k}, t, "ie") for t in ("output", "update") for k in (0.1, 1)]
    + [("infonce", {"noise_rel": k}, t, "ie") for t in ("output", "update") for k in (0.25, 1)]
    + [("gaussian-floor", {"kappa": k}, t, "psi") for t in ("output", "update") for k in (0.25, 1)]
    # validity round 2 (issue 20): the bias-corrected closed forms beside their plug-in rows
    + [
        ("gaussian-floor", {"kappa": k, "bias": "jackknife"}, "update", "ie")
        for k in (0.25, 0.5, 1)
    ]
    + [("gaussian-floor", {"kappa": 1, "bias": "jackknife"}, "output", "ie")]
    + [("gaussian-floor", {"kappa": 0.25, "bias": "jackknife"}, "update", "psi")]
    + [("v-linear", {"kappa": 1, "bias": "jackknife"}, "update", "ie")]
)
#: The round-2 candidates (docs/validity.md, "Validity round 2"): each plug-in with its corrected
#: twin, selected by these names with --candidates.
ROUND2 = (
    "gaussian-floor(kappa=0.25) on y-x",
    "gaussian-floor(kappa=0.5) on y-x",
    "gaussian-floor(kappa=1) on y-x",
    "gaussian-floor(kappa=1) on y",
    "v-linear(kappa=1) on y-x",
    "gaussian-floor(kappa=0.25,bias=jackknife) on y-x",
    "gaussian-floor(kappa=0.5,bias=jackknife) on y-x",
    "gaussian-floor(kappa=1,bias=jackknife) on y-x",
    "gaussian-floor(kappa=1,bias=jackknife) on y",
    "v-linear(kappa=1,bias=jackknife) on y-x",
    "gaussian-floor(kappa=0.25) on y-x, psi",
    "gaussian-floor(kappa=0.25,bias=jackknife) on y-x, psi",
)
TARGET_LABEL = {"output": "y", "update": "y-x"}


def name_of(estimator: str, options: dict, target: str, form: str = "ie") -> str:
    opts = ",".join(f"{k}={v}" for k, v in options.items())
    on = TARGET_LABEL[target] + (", psi" if form == "psi" else "")
    return f"{estimator}({opts}) on {on}" if opts else f"{estimator} on {on}"


def settings_of(candidate: tuple, seed: int) -> EstimationSettings:
    estimator, options, target, form = candidate
    return EstimationSettings(estimator, options, seed=seed, target=target, form=form)


def selected(patterns: list[str] | None) -> list[tuple[str, dict, str, str]]:
    """The candidates whose name contains one of `patterns` (None: all; []: none, the
    baselines alone; "round2": exactly `ROUND2`)."""
    if patterns is None:
        return list(CANDIDATES)
    if patterns == ["round2"]:
        return [c for c in CANDIDATES if name_of(*c) in ROUND2]
    return [c for c in CANDIDATES if any(p in name_of(*c) for p in patterns)]


#: The spectral baselines (`spectral.py`) measured beside every IE candidate, with Diff-eRank
#: (erank of a model's control minus its own), added once a series' controls are measured.
BASELINES = ("erank on y", "matrix entropy on y")
DIFF_ERANK = "Diff-eRank"
#: The sign with which each metric is read as ability, fixed before the baselines' results
#: (docs/validity.md, "Intrinsic baselines"): IE higher; erank and matrix entropy lower, as
#: their papers read a trained model's; Diff-eRank higher. Gates use value * direction.
DIRECTION = {"erank on y": direction("erank"), "matrix entropy on y": direction("matrix_entropy")}


def _ie_entry(result) -> dict:
    """One IE estimate's numbers, in the keys every candidate shares."""
    return {
        "n": result.n,
        "value": result.ie_bits,
        "stderr": result.ie_stderr_bits,
        "macro_bits": sum(r.macro_bits for r in result.per_layer) / len(result.per_layer),
        "micro_bits": sum(r.micro_bits for r in result.per_layer) / len(result.per_layer),
        "max_block_value": max(r.macro_bits for r in result.per_layer),
        "ceiling": result.ceiling_bits,
        "flagged_blocks": result.flagged_layers,
        "per_block": {r.layer: r.emergence_bits for r in result.per_layer},
        "per_block_stderr": {r.layer: r.stderr_bits for r in result.per_layer},
    }


def _statistic_entry(stat, ceiling: float) -> dict:
    """One state statistic's numbers (`StateStatistic`); `ceiling` is what k channels allow."""
    rows = stat.per_layer
    return {
        "n": stat.n,
        "seconds_estimation": stat.seconds,
        "value": stat.value,
        "stderr": stat.stderr,
        "spread": stat.spread,
        "max_block_value": max(r.value for r in rows),
        "ceiling": ceiling,
        "per_block": {r.layer: r.value for r in rows},
        "per_block_stderr": {r.layer: r.stderr for r in rows},
    }


def _spectral_entries(captured, seed: int) -> dict[str, dict]:
    """The baselines' numbers on one capture (erank <= k, entropy <= log2 k bits)."""
    rank = erank(captured, seed=seed)
    entropy = matrix_entropy(captured, seed=seed)
    return {
        BASELINES[0]: _statistic_entry(rank, float(rank.state_dim)),
        BASELINES[1]: _statistic_entry(entropy, math.log2(entropy.state_dim)),
    }


def measure_candidates(captured, args, seed: int) -> dict[str, dict]:
    """Every selected IE candidate and the baselines on one capture."""
    out = {}
    for candidate in selected(args.candidates):
        t = time.perf_counter()
        result = emergence_from_states(captured, settings_of(candidate, seed))
        out[name_of(*candidate)] = _ie_entry(result) | {
            "seconds_estimation": time.perf_counter() - t
        }
    if args.baselines:
        # the spectrum's default folds are the default protocol's
        out |= _spectral_entries(captured, seed)
    return out


def probe_model(label: str, model, tok, ids, correct_next, settings, args) -> dict:
    """Capture once (with the next token's greedy choice and the log-probability of the
    correct ones); every candidate at N/4, N/2 and N (prefixes of the same lists)."""
    t0 = time.perf_counter()
    plan = plan_capture(model, tok, settings)
    oks = [sorted(o) for o in correct_next]
    captured = capture_states(model, ids, plan, next_token=True, score_ids=oks)
    seconds_forward = time.perf_counter() - t0
    greedy = captured.greedy_next_ids.tolist()
    acc = sum(g in set(o) for g, o in zip(greedy, correct_next, strict=True)) / len(greedy)
    n = captured.token_ids.shape[0]
    out = {
        "model": label,
        "acc": acc,
        # over the lists IE is read on (the first N/2), and over all N
        "logprob_correct": float(captured.next_logprobs[: n // 2].mean()),
        "logprob_correct_full_n": float(captured.next_logprobs.mean()),
        "seconds_forward": seconds_forward,
        "candidates": {},
    }
    quarter = measure_candidates(captured.subset(n=n // 4), args, args.seed)
    half = measure_candidates(captured.subset(n=n // 2), args, args.seed)
    full = measure_candidates(captured, args, args.seed)
    for name, entry in half.items():
        entry["value_quarter_n"] = quarter[name]["value"]
        entry["value_full_n"] = full[name]["value"]
        out["candidates"][name] = entry
    print(
        f"{label}: acc {acc:.3f}, logprob {out['logprob_correct']:.3f}, "
        f"forward {seconds_forward:.0f} s",
        flush=True,
    )
    return out


def add_diff_erank(rows: list[dict], control_of: dict[str, str]) -> None:
    """Diff-eRank of every model against its control (`control_of[label]`), at each N; its
    stderr is the paired one (the same lists, folds and projections)."""
    by_label = {r["model"]: r for r in rows}
    for row in rows:
        own = row["candidates"].get(BASELINES[0])
        if own is None:
            return
        ctrl = by_label[control_of[row["model"]]]["candidates"][BASELINES[0]]
        difference = Spread.from_dict(ctrl["spread"]).minus(Spread.from_dict(own["spread"]))
        row["candidates"][DIFF_ERANK] = {
            "n": own["n"],
            "value": difference.value,
            "stderr": standard_error(difference).total,
            "value_quarter_n": ctrl["value_quarter_n"] - own["value_quarter_n"],
            "value_full_n": ctrl["value_full_n"] - own["value_full_n"],
            "max_block_value": None,
            "ceiling": None,
            "per_block": {b: ctrl["per_block"][b] - v for b, v in own["per_block"].items()},
            "per_block_stderr": None,
            "seconds_estimation": own["seconds_estimation"],
        }


# ------------------------------------------------------------------------------ the series


def degraded(model: torch.nn.Module, scale: float, seed: int) -> torch.nn.Module:
    """`model` with N(0, (scale * std(W))^2) noise added to every weight tensor W, in place."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() > 1:
                p.add_(torch.randn(p.shape, generator=gen) * (scale * float(p.std())))
    return model


def country_lists(tok, n: int, seed: int):
    built = build_icl_lists(tok, "country", 4, n, seed=seed)
    return built.sequences, next_entity_ids(tok, built, "country")[0]


def pretrained_series(load, args) -> list[dict]:
    """A pretrained model, its weight-noise copies and its random-weights control."""
    torch.manual_seed(args.seed)
    model, tok = load()
    ids, ok = country_lists(tok, args.n, args.data_seed)
    settings = CaptureSettings(
        layers=tuple(args.layers), projection_dim=args.projection_dim, seed=args.seed
    )
    rows = [probe_model("trained", model, tok, ids, ok, settings, args)]
    for scale in args.noise:
        noisy, _ = load()
        noisy = degraded(noisy, scale, args.seed)
        rows.append(probe_model(f"weight noise {scale}", noisy, tok, ids, ok, settings, args))
        del noisy
    control = random_weights_copy(model, args.seed)
    for t in args.interpolate:
        blend, _ = load()
        blend = interpolated(blend, control, t)
        rows.append(probe_model(f"interpolation t={t}", blend, tok, ids, ok, settings, args))
        del blend
    rows.append(probe_model("random init", control, tok, ids, ok, settings, args))
    return rows


def interpolated(model: torch.nn.Module, control: torch.nn.Module, t: float) -> torch.nn.Module:
    """`model` with every weight W replaced by (1 - t) W + t W_random, in place: a path from
    the trained model (t = 0) to its random-weights control (t = 1)."""
    random_state = control.state_dict()
    seen = set()  # tied weights (embedding and output layer) share storage: blend them once
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if p.is_floating_point() and p.data_ptr() not in seen:
                seen.add(p.data_ptr())
                p.mul_(1 - t).add_(random_state[name].to(p.dtype), alpha=t)
    return model


def _family_token_lists(args) -> tuple[list, list, list, list]:
    """The family's training lists and held-out lists in SmolLM2's token ids, with their correct
    next ids: the three categories, held-out lists mixed (on lists of one category a model that
    always names one of its entities would score high without reading the context)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(default_model_dir()))
    train_ids, train_ok = [], []
    for category in ("country", "animal", "color"):
        built = build_icl_lists(tok, category, 4, args.family_lists, seed=args.data_seed + 1)
        train_ids += built.sequences
        train_ok += next_entity_ids(tok, built, category)[0]
    ids, ok = [], []
    for category in ("country", "animal", "color"):
        built = build_icl_lists(tok, category, 4, args.n // 3 + 1, seed=args.data_seed)
        ids += built.sequences
        ok += next_entity_ids(tok, built, category)[0]
    order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(args.data_seed))
    ids, ok = [ids[i] for i in order[: args.n]], [ok[i] for i in order[: args.n]]
    return train_ids, train_ok, ids, ok


def family_lists(args) -> tuple[ListData, ListData]:
    """The first family's training and held-out lists in the compact vocabulary of both."""
    train_ids, train_ok, ids, ok = _family_token_lists(args)
    vocab = sorted({t for seq in train_ids + ids for t in seq} | {t for o in train_ok for t in o})
    return list_data_from_icl(train_ids, train_ok, vocab), list_data_from_icl(ids, ok, vocab)


def corpus_family_lists(args) -> tuple[ListData, ListData]:
    """The second family's data: half of the first family's training lists, the other half
    windows of the shipped natural-language corpus of the lists' length, one compact vocabulary
    (SmolLM2's tokens of both); held out: the first family's lists."""
    from transformers import AutoTokenizer

    from lm_eval_emergence.data.windows import corpus_sentences

    train_ids, train_ok, ids, ok = _family_token_lists(args)
    tok = AutoTokenizer.from_pretrained(str(default_model_dir()))
    length = len(ids[0])
    half = len(train_ids) // 2
    windows = []
    for sentence in corpus_sentences():
        tokens = tok(sentence, add_special_tokens=False)["input_ids"]
        windows += [tokens[i : i + length] for i in range(0, len(tokens) - length + 1, length)]
        if len(windows) >= 4 * half:
            break
    gen = torch.Generator().manual_seed(args.data_seed)
    windows = [windows[i] for i in torch.randperm(len(windows), generator=gen)[:half]]
    keep = torch.randperm(len(train_ids), generator=gen)[: len(train_ids) - len(windows)]
    train = [train_ids[i] for i in keep] + windows
    train_correct = [train_ok[i] for i in keep] + [[] for _ in windows]
    vocab = sorted({t for seq in train + ids for t in seq} | {t for o in train_ok for t in o})
    return list_data_from_icl(train, train_correct, vocab), list_data_from_icl(ids, ok, vocab)


def family_series(args) -> list[dict]:
    """A family trained here (`family.py`): every width at every checkpoint, measured on the
    held-out lists of `family_lists` (`--series family2`: trained on lists and corpus windows,
    `corpus_family_lists`)."""
    train, test = (corpus_family_lists if args.series == "family2" else family_lists)(args)
    settings = CaptureSettings(projection_dim=args.projection_dim, seed=args.seed, bos=None)
    rows = []
    for width in args.widths:
        model = build_family_model(test.vocab_size, width, args.family_layers, seed=args.seed)
        n_parameters = sum(p.numel() for p in model.parameters())
        t0 = time.perf_counter()
        for step, checkpoint in train_checkpoints(model, train, args.checkpoints, seed=args.seed):
            label = f"width {width} step {step}"
            row = probe_model(label, checkpoint, None, test.ids, test.correct_next, settings, args)
            rows.append(row | {"width": width, "step": step, "n_parameters": n_parameters})
        print(f"width {width}: trained and probed in {time.perf_counter() - t0:.0f} s")
    return rows


# ------------------------------------------------------------------------------ the gates


def bootstrap_spearman(ie: list[float], acc: list[float], resamples: int, seed: int) -> list:
    """Percentile 95% interval of Spearman's rho over models resampled with replacement
    (resamples in which either variable is constant are skipped)."""
    gen = torch.Generator().manual_seed(seed)
    n = len(ie)
    rhos = []
    for _ in range(resamples):
        pick = torch.randint(0, n, (n,), generator=gen).tolist()
        a, b = [ie[i] for i in pick], [acc[i] for i in pick]
        if len(set(a)) > 1 and len(set(b)) > 1:
            rhos.append(float(stats.spearmanr(a, b).statistic))
    if not rhos:
        return [None, None]
    rhos.sort()
    return [rhos[int(0.025 * (len(rhos) - 1))], rhos[int(0.975 * (len(rhos) - 1))]]


def summarise(rows: list[dict], pairs: list[tuple[str, str]], args) -> list[dict]:
    """Per candidate, read in its direction (`DIRECTION`): separation of each (trained,
    control) pair in combined stderr (the smallest is the gate's), Spearman with acc and with
    logprob_correct with bootstrap intervals, the N/2 -> N change (largest, and whether every
    model passes against its own value) and the largest block's distance from the ceiling."""
    by_label = {r["model"]: r for r in rows}
    out = []
    for name in rows[0]["candidates"]:
        sign = DIRECTION.get(name, 1)
        seps, diffs = [], []
        for trained, control in pairs:
            a, b = by_label[trained]["candidates"][name], by_label[control]["candidates"][name]
            se = (a["stderr"] ** 2 + b["stderr"] ** 2) ** 0.5
            diffs.append(a["value"] - b["value"])
            seps.append(sign * (a["value"] - b["value"]) / se if se > 0 else None)
        values = [r["candidates"][name]["value"] for r in rows]
        acc = [r["acc"] for r in rows]
        logprob = [r["logprob_correct"] for r in rows]
        per_model = [r["candidates"][name] for r in rows]
        gaps = [
            c["ceiling"] - c["max_block_value"]
            for c in per_model
            if c.get("ceiling") is not None and c.get("max_block_value") is not None
        ]
        out.append(
            {
                "candidate": name,
                "direction": sign,
                "trained_minus_random": diffs,
                "separation_se": seps,
                "min_separation_se": min((v for v in seps if v is not None), default=None),
                "spearman_with_acc": float(stats.spearmanr(values, acc).statistic),
                "spearman_ci95": bootstrap_spearman(values, acc, args.bootstrap, args.seed),
                "spearman_with_logprob": float(stats.spearmanr(values, logprob).statistic),
                "spearman_logprob_ci95": bootstrap_spearman(
                    values, logprob, args.bootstrap, args.seed
                ),
                "max_change_half_n_to_n": max(
                    abs(c["value_full_n"] - c["value"]) for c in per_model
                ),
                "max_change_quarter_n_to_half_n": max(
                    abs(c["value"] - c["value_quarter_n"]) for c in per_model
                ),
                "converges_per_model": {r["model"]: converges(r["candidates"][name]) for r in rows},
                "min_ceiling_gap": min(gaps) if gaps else None,
                "value_by_model": dict(zip([r["model"] for r in rows], values, strict=True)),
            }
        )
    return out


def seed_spread(model, control, tok, args) -> list[dict]:
    """Every candidate on the trained model and its control over `--seed-spread` seeds of the
    data sampling and the projection (the control's weights stay those of --seed), at N/2
    lists; Diff-eRank from the pair at each seed."""
    by_seed = []
    for seed in range(args.seed_spread):
        ids, _ = country_lists(tok, args.n // 2, args.data_seed + seed)
        settings = CaptureSettings(
            layers=tuple(args.layers), projection_dim=args.projection_dim, seed=seed
        )
        row = {"seed": seed}
        for label, m in (("trained", model), ("random init", control)):
            captured = capture_states(m, ids, plan_capture(m, tok, settings))
            for name, entry in measure_candidates(captured, args, seed).items():
                row[f"{label}: {name}"] = entry["value"]
        if args.baselines:
            diff = row[f"random init: {BASELINES[0]}"] - row[f"trained: {BASELINES[0]}"]
            row[f"trained: {DIFF_ERANK}"] = diff
        by_seed.append(row)
        print(f"seed {seed} done", flush=True)
    out = []
    names = sorted({key.split(": ", 1)[1] for key in by_seed[0] if key != "seed"})
    for name in names:
        entry = {"candidate": name}
        for label in ("trained", "random init"):
            if f"{label}: {name}" not in by_seed[0]:
                continue
            values = torch.tensor([r[f"{label}: {name}"] for r in by_seed], dtype=torch.float64)
            entry[label] = {
                "mean": float(values.mean()),
                "std": float(values.std()),
                "cv": float(values.std() / values.mean().abs()),
            }
        out.append(entry)
    return out


def print_summary(summary: list[dict]) -> None:
    print(
        f"\n{'candidate':<40} {'min sep (se)':>12} {'rho(acc)':>9} {'95% CI':>14} "
        f"{'rho(lp)':>8} {'dN':>6} {'conv':>5} {'ceil gap':>8}"
    )
    print("(read in each metric's direction; dN: the largest change from N/2 to N over the models)")
    for s in summary:
        sep = "n/a" if s["min_separation_se"] is None else f"{s['min_separation_se']:.1f}"
        lo, hi = (
            (None, None)
            if s["spearman_ci95"][0] is None
            else sorted(s["direction"] * v for v in s["spearman_ci95"])
        )
        ci = "n/a" if lo is None else f"[{lo:.2f}, {hi:.2f}]"
        gap = "none" if s["min_ceiling_gap"] is None else f"{s['min_ceiling_gap']:.2f}"
        conv = "yes" if all(s["converges_per_model"].values()) else "no"
        print(
            f"{s['candidate']:<40} {sep:>12} {s['direction'] * s['spearman_with_acc']:>9.2f} "
            f"{ci:>14} {s['direction'] * s['spearman_with_logprob']:>8.2f} "
            f"{s['max_change_half_n_to_n']:>6.3f} {conv:>5} {gap:>8}"
        )


def write_json(path: Path | None, record: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the probe on one series, print its table and write the JSON; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", choices=("smollm2", "qwen", "family", "family2"), default="smollm2")
    p.add_argument(
        "--gguf",
        type=Path,
        help="a Qwen2.5-Coder-0.5B-Instruct GGUF file (--series qwen; default: the shipped model)",
    )
    p.add_argument("--n", type=int, default=4096, help="lists captured; IE is read at n/2")
    p.add_argument("--layers", type=int, nargs="+", default=None, help="default: 8 spread blocks")
    p.add_argument("--noise", type=float, nargs="*", default=[0.01, 0.03, 0.1, 0.3])
    p.add_argument(
        "--interpolate",
        type=float,
        nargs="*",
        default=[],
        help="also models on the path (1 - t) W + t W_random for these t (pass --noise alone "
        "for an interpolation series without noise copies)",
    )
    p.add_argument(
        "--projection-dim",
        type=lambda v: None if v == "none" else int(v),
        default=64,
        help="capture width ('none': the model's hidden size)",
    )
    p.add_argument(
        "--no-baselines",
        dest="baselines",
        action="store_false",
        help="leave out the spectral baselines (erank, matrix entropy, Diff-eRank)",
    )
    p.add_argument("--seed", type=int, default=0, help="projection, estimators, weight noise")
    p.add_argument("--data-seed", type=int, default=1234)
    p.add_argument(
        "--candidates",
        nargs="*",
        default=None,
        help="only IE candidates whose name has one of these (none given: the baselines alone)",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples for rho's interval")
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128], help="family")
    p.add_argument("--family-layers", type=int, default=None, help="default 4 (family2: 8)")
    p.add_argument("--family-lists", type=int, default=20000, help="training lists a category")
    p.add_argument("--checkpoints", type=int, nargs="+", default=[0, 200, 400, 800, 1600, 3000])
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--seed-spread",
        type=int,
        default=0,
        help="only the seed gate: IE of the trained model and its control over this many seeds",
    )
    args = p.parse_args(argv)
    if args.layers is None:
        args.layers = {
            "smollm2": [0, 4, 8, 12, 16, 20, 24, 29],
            "qwen": [0, 3, 6, 9, 12, 15, 18, 23],
        }.get(args.series, [])
    if args.series != "qwen":
        load = lambda: load_default_model("cpu")  # noqa: E731
    elif args.gguf is not None:
        load = lambda: load_gguf_model(args.gguf)  # noqa: E731
    else:
        load = lambda: load_study_model("qwen2.5-coder-0.5b-instruct")  # noqa: E731
    if args.family_layers is None:
        args.family_layers = 8 if args.series == "family2" else 4
    settings_record = vars(args) | {"json": str(args.json), "gguf": str(args.gguf)}
    if args.seed_spread:
        model, tok = load()
        spread = seed_spread(model, random_weights_copy(model, args.seed), tok, args)
        print(f"\n{'candidate':<40} {'trained mean':>12} {'CV':>7} {'random mean':>12} {'CV':>7}")
        for e in spread:
            t, r = e["trained"], e.get("random init", {"mean": math.nan, "cv": math.nan})
            print(
                f"{e['candidate']:<40} {t['mean']:>12.3f} {t['cv']:>7.4f} "
                f"{r['mean']:>12.3f} {r['cv']:>7.4f}"
            )
        write_json(args.json, {"settings": settings_record, "seed_spread": spread})
        return 0
    if args.series in ("family", "family2"):
        rows = family_series(args)
        last = max(args.checkpoints)
        pairs = [(f"width {w} step {last}", f"width {w} step 0") for w in args.widths]
        control_of = {r["model"]: f"width {r['width']} step 0" for r in rows}
    else:
        rows = pretrained_series(load, args)
        pairs = [("trained", "random init")]
        control_of = {r["model"]: "random init" for r in rows}
    add_diff_erank(rows, control_of)
    summary = summarise(rows, pairs, args)
    print_summary(summary)
    print("\nacc: " + ", ".join(f"{r['model']} {r['acc']:.3f}" for r in rows))
    print("logprob: " + ", ".join(f"{r['model']} {r['logprob_correct']:.3f}" for r in rows))
    write_json(args.json, {"settings": settings_record, "models": rows, "summary": summary})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
