"""The gate tables of docs/validity.md, from the probe's JSON files (no model is run).

Each candidate gets one row per series with its gates: separation >= 5 combined stderr (the
smallest over the series' trained/control pairs), Spearman with accuracy >= 0.8 (point value;
its bootstrap interval is printed), the N/2 -> N change <= max(0.05 bit, 2% of the trained
IE), the seed CV <= 5% (selection series only) and the macro term >= 1 bit below any ceiling.
Then the pre-registered rule: the most gates passed on the selection series, ties broken by the
larger separation, then by the smaller change.

    python benchmarks/validity_tables.py docs/validity/probe_smollm2.json \
        --seeds docs/validity/seeds_smollm2.json docs/validity/seeds_smollm2_psi.json \
        --confirm docs/validity/probe_family.json docs/validity/probe_qwen.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def gates(summary: dict, trained_ie: float, cv: float | None) -> dict[str, bool | None]:
    """Pass (True), fail (False) or not measured (None) for each gate of one candidate."""
    sep = summary.get("min_separation_se")
    gap = summary.get("min_ceiling_gap_bits")
    return {
        "separation": None if sep is None else sep >= 5,
        "spearman": summary["spearman_with_acc"] >= 0.8,
        "convergence": summary["max_change_half_n_to_n_bits"] <= max(0.05, 0.02 * abs(trained_ie)),
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
    return json.loads(path.read_text())


def trained_label(record: dict) -> str:
    models = [m["model"] for m in record["models"]]
    return "trained" if "trained" in models else models[-1]


def table(record: dict, seeds: dict | None, title: str) -> tuple[list[str], dict[str, tuple]]:
    """Markdown rows of one series and, per candidate, (gates passed, separation, change)."""
    cvs = {}
    for entry in (seeds or {}).get("seed_spread", []):
        cvs[entry["candidate"]] = max(entry["trained"]["cv"], entry["random init"]["cv"])
    label = trained_label(record)
    by_model = {m["model"]: m for m in record["models"]}
    lines = [
        f"**{title}**",
        "",
        "| candidate | IE trained | min sep (se) | Spearman [95% CI] | N/2→N change | seed CV "
        "| ceiling gap | estimation s / forward s | gates passed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ranking = {}
    for s in record["summary"]:
        name = s["candidate"]
        trained_ie = by_model[label]["candidates"][name]["ie_bits"]
        cv = cvs.get(name) if seeds is not None else None
        g = gates(s, trained_ie, cv)
        passed = sum(1 for v in g.values() if v)
        measured = sum(1 for v in g.values() if v is not None)
        lo, hi = s["spearman_ci95"]
        ci = "" if lo is None else f" [{lo:.2f}, {hi:.2f}]"
        sep = s.get("min_separation_se")
        gap = s.get("min_ceiling_gap_bits")
        lines.append(
            f"| {name} | {trained_ie:.3f} | {'–' if sep is None else f'{sep:.1f}'} "
            f"({mark(g['separation'])}) | {s['spearman_with_acc']:.2f}{ci} ({mark(g['spearman'])}) "
            f"| {s['max_change_half_n_to_n_bits']:.3f} ({mark(g['convergence'])}) "
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
            sum(m["candidates"][name]["per_block_bits"][b] for b in members) / len(members)
            for m in models
        ]
        rho = stats.spearmanr(ie, acc).statistic
        t, r = by_model["trained"], by_model["random init"]
        diff = sum(t["per_block_bits"][b] - r["per_block_bits"][b] for b in members) / len(members)
        se = sum(
            t["per_block_stderr_bits"][b] ** 2 + r["per_block_stderr_bits"][b] ** 2 for b in members
        ) ** 0.5 / len(members)
        lines.append(f"| {label} | {rho:.2f} | {diff:+.3f} | {diff / se:.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("selection", type=Path)
    p.add_argument("--seeds", type=Path, nargs="*", default=[], help="seed-spread JSON files")
    p.add_argument("--confirm", type=Path, nargs="*", default=[])
    p.add_argument("--per-block", nargs="*", default=[], help="candidates to break down by block")
    args = p.parse_args(argv)
    seeds = None
    if args.seeds:
        seeds = {"seed_spread": [e for path in args.seeds for e in load(path)["seed_spread"]]}
    lines, ranking = table(load(args.selection), seeds, f"Selection: {args.selection.name}")
    print("\n".join(lines))
    best = sorted(
        ranking.items(),
        key=lambda kv: (-kv[1][0], -kv[1][1], kv[1][2]["max_change_half_n_to_n_bits"]),
    )
    print("\nThe rule's order (gates passed, then separation, then change):")
    for name, (passed, sep, _) in best[:5]:
        print(f"- {name}: {passed} gates, separation {sep:.1f} se")
    for name in args.per_block:
        print()
        print("\n".join(per_block(load(args.selection), name)))
    for path in args.confirm:
        print()
        print("\n".join(table(load(path), None, f"Confirmation: {path.name}")[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
