"""The gate tables of docs/validity.md, from the probe's JSON files (no model is run).

Each candidate gets one row per series with its gates: separation >= 5 combined stderr (the
smallest over the series' trained/control pairs), Spearman with accuracy >= 0.8 (point value;
its bootstrap interval is printed), the N/2 -> N change of every model <= max(0.05 bit, 2% of
that model's own value) (the largest change is printed), the seed CV <= 5% (selection series
only) and the macro term >= 1 bit below any ceiling. Then the pre-registered rule: the most
gates passed on the selection series, ties broken by the larger separation, then by the
smaller change.

    python -m studies.validity.tables RESULTS/probe_smollm2.json \
        --seeds RESULTS/seeds_smollm2.json RESULTS/seeds_smollm2_psi.json \
        --confirm RESULTS/probe_family.json RESULTS/probe_qwen.json

(RESULTS: studies/validity/results.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: Keys of probe files written before the spectral baselines, and their names since.
_RENAMED = {
    "ie_bits": "value",
    "ie_stderr_bits": "stderr",
    "ie_full_n_bits": "value_full_n",
    "ie_quarter_n_bits": "value_quarter_n",
    "max_macro_bits": "max_block_value",
    "ceiling_bits": "ceiling",
    "per_block_bits": "per_block",
    "per_block_stderr_bits": "per_block_stderr",
    "max_change_half_n_to_n_bits": "max_change_half_n_to_n",
    "min_ceiling_gap_bits": "min_ceiling_gap",
    "mean_bits": "mean",
}


def _renamed(value):
    """`value` (a probe file's JSON) with the old key names replaced by today's."""
    if isinstance(value, dict):
        return {_RENAMED.get(k, k): _renamed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v) for v in value]
    return value


def converges(entry: dict) -> bool:
    """The convergence gate of one model (one definition, every series and metric): its value
    moves from N/2 to N by at most max(0.05, 2% of its own |value at N/2|)."""
    return abs(entry["value_full_n"] - entry["value"]) <= max(0.05, 0.02 * abs(entry["value"]))


def gates(
    summary: dict, models: list[dict], cv: float | None, logprob_gate: bool = False
) -> dict[str, bool | None]:
    """Pass (True), fail (False) or not measured (None) for each gate of one candidate, read in
    its direction; convergence holds when every model of the series converges (`converges`).
    With `logprob_gate` (validity round 2) Spearman with logprob_correct is a gate too."""
    sep = summary.get("min_separation_se")
    gap = summary.get("min_ceiling_gap")
    name = summary["candidate"]
    sign = summary.get("direction", 1)
    return {
        "separation": None if sep is None else sep >= 5,
        "spearman": sign * summary["spearman_with_acc"] >= 0.8,
        "spearman logprob": (
            sign * summary["spearman_with_logprob"] >= 0.8 if logprob_gate else None
        ),
        "convergence": all(converges(m["candidates"][name]) for m in models),
        "seed CV": None if cv is None else cv <= 0.05,
        "ceiling": True if gap is None else gap >= 1.0,
    }


def mark(value: bool | None) -> str:
    return "–" if value is None else ("pass" if value else "**fail**")


def cost(record: dict, name: str) -> str:
    """Median over the models of the estimation seconds at N/2 against the forward seconds."""
    est = sorted(m["candidates"][name]["seconds_estimation"] for m in record["models"])
    fwd = sorted(m["seconds_forward"] for m in record["models"])
    return f"{est[len(est) // 2]:.1f} / {fwd[len(fwd) // 2]:.0f}"


def load(path: Path) -> dict:
    return _renamed(json.loads(path.read_text()))


def trained_label(record: dict) -> str:
    models = [m["model"] for m in record["models"]]
    return "trained" if "trained" in models else models[-1]


def _rho(summary: dict, key: str, ci_key: str) -> str:
    """A Spearman coefficient in the metric's direction, with its interval."""
    sign = summary.get("direction", 1)
    lo, hi = (v if v is None else sign * v for v in summary[ci_key])
    ci = "" if lo is None else f" [{min(lo, hi):.2f}, {max(lo, hi):.2f}]"
    return f"{sign * summary[key]:.2f}{ci}"


def table(
    record: dict, seeds: dict | None, title: str, logprob_gate: bool = False
) -> tuple[list[str], dict[str, tuple]]:
    """Markdown rows of one series and, per candidate, (gates passed, separation, change).

    Coefficients and separations are read in each metric's direction (a "-" after its name:
    lower reads as more ability); files with the continuous ability measure get its Spearman
    (reported, not a gate)."""
    cvs = {}
    for entry in (seeds or {}).get("seed_spread", []):
        cv = [entry[side]["cv"] for side in ("trained", "random init") if side in entry]
        cvs[entry["candidate"]] = max(cv)
    label = trained_label(record)
    by_model = {m["model"]: m for m in record["models"]}
    with_logprob = "spearman_with_logprob" in record["summary"][0]
    lines = [
        f"**{title}**",
        "",
        "| candidate | trained | min sep (se) | Spearman acc [95% CI] |"
        + (" Spearman logprob [95% CI] |" if with_logprob else "")
        + " N/2→N change | seed CV | ceiling gap | estimation s / forward s | gates passed |",
        "|---|---|---|---|" + ("---|" if with_logprob else "") + "---|---|---|---|---|",
    ]
    ranking = {}
    for s in record["summary"]:
        name = s["candidate"]
        shown = name + (" (−)" if s.get("direction", 1) < 0 else "")
        trained_value = by_model[label]["candidates"][name]["value"]
        cv = cvs.get(name) if seeds is not None else None
        g = gates(s, record["models"], cv, logprob_gate)
        passed = sum(1 for v in g.values() if v)
        measured = sum(1 for v in g.values() if v is not None)
        sep = s.get("min_separation_se")
        gap = s.get("min_ceiling_gap")
        logprob = (
            f" {_rho(s, 'spearman_with_logprob', 'spearman_logprob_ci95')}"
            + (f" ({mark(g['spearman logprob'])})" if logprob_gate else "")
            + " |"
            if with_logprob
            else ""
        )
        lines.append(
            f"| {shown} | {trained_value:.3f} | {'–' if sep is None else f'{sep:.1f}'} "
            f"({mark(g['separation'])}) | {_rho(s, 'spearman_with_acc', 'spearman_ci95')} "
            f"({mark(g['spearman'])}) |{logprob} {s['max_change_half_n_to_n']:.3f} "
            f"({mark(g['convergence'])}) "
            f"| {'–' if cv is None else f'{100 * cv:.1f}%'} ({mark(g['seed CV'])}) "
            f"| {'none' if gap is None else f'{gap:.2f}'} ({mark(g['ceiling'])}) "
            f"| {cost(record, name)} | {passed}/{measured} |"
        )
        ranking[name] = (passed, sep if sep is not None else float("-inf"), s)
    return lines, ranking


def per_block(record: dict, name: str) -> list[str]:
    """Spearman with accuracy and trained - control separation of each block alone, and of the
    early and late halves of the measured blocks (the choice of blocks averaged)."""
    from scipy import stats

    models = record["models"]
    acc = [m["acc"] for m in models]
    blocks = list(models[0]["candidates"][name]["per_block_bits"])
    groups = {f"block {b}": [b] for b in blocks}
    half = len(blocks) // 2
    groups |= {"early half": blocks[:half], "late half": blocks[half:], "all": blocks}
    by_model = {m["model"]: m["candidates"][name] for m in models}
    lines = [
        f"**{name}, by blocks averaged**",
        "",
        "| blocks | Spearman | trained − random (bits) | (se) |",
        "|---|---|---|---|",
    ]
    for label, members in groups.items():
        ie = [
            sum(m["candidates"][name]["per_block"][b] for b in members) / len(members)
            for m in models
        ]
        rho = stats.spearmanr(ie, acc).statistic
        t, r = by_model["trained"], by_model["random init"]
        diff = sum(t["per_block"][b] - r["per_block"][b] for b in members) / len(members)
        se = sum(
            t["per_block_stderr"][b] ** 2 + r["per_block_stderr"][b] ** 2 for b in members
        ) ** 0.5 / len(members)
        lines.append(f"| {label} | {rho:.2f} | {diff:+.3f} | {diff / se:.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("selection", type=Path)
    p.add_argument("--seeds", type=Path, nargs="*", default=[], help="seed-spread JSON files")
    p.add_argument("--confirm", type=Path, nargs="*", default=[])
    p.add_argument("--per-block", nargs="*", default=[], help="candidates to break down by block")
    p.add_argument(
        "--logprob-gate",
        action="store_true",
        help="Spearman with logprob_correct >= 0.8 as a gate (validity round 2)",
    )
    args = p.parse_args(argv)
    seeds = None
    if args.seeds:
        seeds = {"seed_spread": [e for path in args.seeds for e in load(path)["seed_spread"]]}
    lines, ranking = table(
        load(args.selection), seeds, f"Selection: {args.selection.name}", args.logprob_gate
    )
    print("\n".join(lines))
    best = sorted(
        ranking.items(),
        key=lambda kv: (-kv[1][0], -kv[1][1], kv[1][2]["max_change_half_n_to_n"]),
    )
    print("\nThe rule's order (gates passed, then separation, then change):")
    for name, (passed, sep, _) in best[:5]:
        print(f"- {name}: {passed} gates, separation {sep:.1f} se")
    for name in args.per_block:
        print()
        print("\n".join(per_block(load(args.selection), name)))
    for path in args.confirm:
        print()
        print(
            "\n".join(table(load(path), None, f"Confirmation: {path.name}", args.logprob_gate)[0])
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
