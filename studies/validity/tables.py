"""The gate tables of docs/validity.md, from the probe's JSON files (no model is run).

Each candidate gets one row per series with its gates: separation >= 5 combined stderr (the
smallest over the series' trained/control pairs), Spearman with accuracy >= 0.8 (point value;
its bootstrap interval is printed), the N/2 -> N change of every model <= max(0.05 bit, 2% of
that model's own value) (the largest change is printed), the seed CV <= 5% (selection series
only) and the macro term >= 1 bit below any ceiling. Then the pre-registered rule: the most
gates passed on the selection series, ties broken by the larger separation, then by the
smaller change.

With --seed-units (`table(..., ratios=...)`) the separation gate is read in seed units, since a
jackknife stderr leaves out the spread over seeds of data and projection: the gap over the
trained and control models' seed standard deviations combined where the seed spread was
measured (`seed_separations`), elsewhere the jackknife separation divided by the same
candidate's ratio of the two on the selection series (`seed_ratios`, "scaled"); a candidate
with neither gets no number, and fails only where the trained model scores below its control.
The jackknife separation is printed beside it.

    python -m studies.validity.tables RESULTS/probe_smollm2.json \
        --seeds RESULTS/seeds_smollm2.json RESULTS/seeds_smollm2_psi.json \
        --confirm RESULTS/probe_family.json RESULTS/probe_qwen.json --seed-units

(RESULTS: studies/validity/results.)
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

#: The separation gate: the trained model above its control by this many combined spreads.
SEPARATION_GATE = 5

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


def allowance(entry: dict) -> float:
    """How far one model's value may move from N/2 to N: max(0.05, 2% of its own |value|)."""
    return max(0.05, 0.02 * abs(entry["value"]))


def converges(entry: dict) -> bool:
    """The convergence gate of one model (one definition, every series and metric): its value
    moves from N/2 to N by at most `allowance`."""
    return abs(entry["value_full_n"] - entry["value"]) <= allowance(entry)


def seed_sd(side: dict) -> float:
    """One model's standard deviation over seeds in a seed-spread entry (std_bits or std)."""
    return side["std_bits"] if "std_bits" in side else side["std"]


def seed_separations(record: dict, seeds: dict) -> dict[str, float]:
    """Per candidate with a seed spread: the trained − random init gap of `record` over the two
    models' seed standard deviations combined, in the metric's direction (a side the seeds did
    not vary, Diff-eRank's control, adds nothing)."""
    by_model = {m["model"]: m["candidates"] for m in record["models"]}
    direction = {s["candidate"]: s.get("direction", 1) for s in record["summary"]}
    out = {}
    for entry in seeds.get("seed_spread", []):
        name = entry["candidate"]
        spread = math.hypot(*(seed_sd(entry[s]) for s in ("trained", "random init") if s in entry))
        gap = by_model["trained"][name]["value"] - by_model["random init"][name]["value"]
        out[name] = direction[name] * gap / spread
    return out


def seed_ratios(record: dict, seeds: dict) -> dict[str, float]:
    """Per candidate with a seed spread: its jackknife separation on `record` over its seed-unit
    one (the pair's combined seed sd over its combined jackknife stderr). Another series'
    jackknife separation divided by it is that series' separation in scaled seed units."""
    jackknife = {s["candidate"]: s["min_separation_se"] for s in record["summary"]}
    return {name: jackknife[name] / v for name, v in seed_separations(record, seeds).items()}


@dataclass(frozen=True)
class Separation:
    """A candidate's smallest trained/control separation in seed units, and the jackknife one."""

    value: float | None  # seed units; None: no seed spread and no ratio for this candidate
    scaled: bool  # jackknife separation / the selection series' ratio, not a measured spread
    jackknife: float | None

    @property
    def passes(self) -> bool | None:
        """The gate; without a number it fails only where the control scores above the model
        (a sign holds in any unit)."""
        if self.value is not None:
            return self.value >= SEPARATION_GATE
        return False if self.jackknife is not None and self.jackknife < 0 else None

    def cell(self) -> str:
        """The table's seed-unit cell with its gate."""
        if self.value is None:
            shown = "< 0" if self.passes is False else "–"
        else:
            shown = f"{self.value:.1f}" + (" scaled" if self.scaled else "")
        return f"{shown} ({mark(self.passes)})"


def separation(summary: dict, measured: dict[str, float], ratios: dict[str, float]) -> Separation:
    """One candidate's `Separation`: measured in seed units if `measured` holds it, else its
    jackknife separation scaled by `ratios`, else none."""
    name, jackknife = summary["candidate"], summary.get("min_separation_se")
    if name in measured:
        return Separation(measured[name], False, jackknife)
    if name in ratios and jackknife is not None:
        return Separation(jackknife / ratios[name], True, jackknife)
    return Separation(None, False, jackknife)


def gates(
    summary: dict,
    models: list[dict],
    cv: float | None,
    logprob_gate: bool = False,
    *,
    seed_units: Separation | None = None,
) -> dict[str, bool | None]:
    """Pass (True), fail (False) or not measured (None) for each gate of one candidate, read in
    its direction; convergence holds when every model of the series converges (`converges`).
    With `logprob_gate` (validity round 2) Spearman with logprob_correct is a gate too; with
    `seed_units` the separation gate is read in seed units instead of jackknife stderr."""
    sep = summary.get("min_separation_se")
    gap = summary.get("min_ceiling_gap")
    name = summary["candidate"]
    sign = summary.get("direction", 1)
    jackknife_gate = None if sep is None else sep >= SEPARATION_GATE
    return {
        "separation": jackknife_gate if seed_units is None else seed_units.passes,
        "spearman": sign * summary["spearman_with_acc"] >= 0.8,
        "spearman logprob": (
            sign * summary["spearman_with_logprob"] >= 0.8 if logprob_gate else None
        ),
        "convergence": all(converges(m["candidates"][name]) for m in models),
        "seed CV": None if cv is None else cv <= 0.05,
        "ceiling": True if gap is None else gap >= 1.0,
    }


def seed_cvs(seeds: dict | None) -> dict[str, float]:
    """Per candidate with a seed spread: the larger seed CV of the trained model and control."""
    return {
        e["candidate"]: max(e[side]["cv"] for side in ("trained", "random init") if side in e)
        for e in (seeds or {}).get("seed_spread", [])
    }


def row_gates(
    record: dict,
    seeds: dict | None,
    name: str,
    logprob_gate: bool = False,
    *,
    ratios: dict[str, float] | None = None,
) -> tuple[dict[str, bool | None], Separation | None]:
    """The gates of one candidate's row of `table` (same arguments) and, with `ratios`, its
    separation in seed units."""
    (s,) = [s for s in record["summary"] if s["candidate"] == name]
    honest = None
    if ratios is not None:
        honest = separation(s, seed_separations(record, seeds) if seeds else {}, ratios)
    cv = seed_cvs(seeds).get(name) if seeds is not None else None
    return gates(s, record["models"], cv, logprob_gate, seed_units=honest), honest


def mark(value: bool | None) -> str:
    return "–" if value is None else ("pass" if value else "**fail**")


def median_seconds(record: dict, name: str | None) -> float:
    """The median (upper, for an even count) over the models of a candidate's estimation
    seconds at N/2, or of the forward seconds (`name` None)."""
    seconds = sorted(
        m["seconds_forward"] if name is None else m["candidates"][name]["seconds_estimation"]
        for m in record["models"]
    )
    return seconds[len(seconds) // 2]


def cost(record: dict, name: str) -> str:
    """Median over the models of the estimation seconds at N/2 against the forward seconds."""
    return f"{median_seconds(record, name):.1f} / {median_seconds(record, None):.0f}"


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
    record: dict,
    seeds: dict | None,
    title: str,
    logprob_gate: bool = False,
    *,
    ratios: dict[str, float] | None = None,
) -> tuple[list[str], dict[str, tuple]]:
    """Markdown rows of one series and, per candidate, (gates passed, separation, change).

    Coefficients and separations are read in each metric's direction (a "-" after its name:
    lower reads as more ability); files with the continuous ability measure get its Spearman
    (reported, not a gate). With `ratios` (`seed_ratios` of the selection series) the
    separation and its gate are in seed units (`Separation`), measured from `seeds` where it
    holds the candidate, and the jackknife separation is a column beside it; the ranking's
    separation is then the seed-unit one."""
    in_seed_units = ratios is not None
    cvs = seed_cvs(seeds)
    label = trained_label(record)
    by_model = {m["model"]: m for m in record["models"]}
    with_logprob = "spearman_with_logprob" in record["summary"][0]
    separation_header = (
        " min sep (seed sd) | min sep (jackknife se) |" if in_seed_units else " min sep (se) |"
    )
    lines = [
        f"**{title}**",
        "",
        "| candidate | trained |"
        + separation_header
        + " Spearman acc [95% CI] |"
        + (" Spearman logprob [95% CI] |" if with_logprob else "")
        + " N/2→N change | seed CV | ceiling gap | estimation s / forward s | gates passed |",
        "|---|---|---|"
        + ("---|" if in_seed_units else "")
        + "---|"
        + ("---|" if with_logprob else "")
        + "---|---|---|---|---|",
    ]
    ranking = {}
    for s in record["summary"]:
        name = s["candidate"]
        shown = name + (" (−)" if s.get("direction", 1) < 0 else "")
        trained_value = by_model[label]["candidates"][name]["value"]
        cv = cvs.get(name) if seeds is not None else None
        g, honest = row_gates(record, seeds, name, logprob_gate, ratios=ratios)
        passed = sum(1 for v in g.values() if v)
        n_gates = sum(1 for v in g.values() if v is not None)
        sep = s.get("min_separation_se")
        jackknife = "–" if sep is None else f"{sep:.1f}"
        if honest is None:
            sep_cells = f"{jackknife} ({mark(g['separation'])})"
        else:
            sep_cells = f"{honest.cell()} | {jackknife}"
            sep = honest.value
        gap = s.get("min_ceiling_gap")
        logprob = (
            f" {_rho(s, 'spearman_with_logprob', 'spearman_logprob_ci95')}"
            + (f" ({mark(g['spearman logprob'])})" if logprob_gate else "")
            + " |"
            if with_logprob
            else ""
        )
        lines.append(
            f"| {shown} | {trained_value:.3f} | {sep_cells} "
            f"| {_rho(s, 'spearman_with_acc', 'spearman_ci95')} "
            f"({mark(g['spearman'])}) |{logprob} {s['max_change_half_n_to_n']:.3f} "
            f"({mark(g['convergence'])}) "
            f"| {'–' if cv is None else f'{100 * cv:.1f}%'} ({mark(g['seed CV'])}) "
            f"| {'none' if gap is None else f'{gap:.2f}'} ({mark(g['ceiling'])}) "
            f"| {cost(record, name)} | {passed}/{n_gates} |"
        )
        ranking[name] = (passed, sep if sep is not None else float("-inf"), s)
    return lines, ranking


def per_block_values(record: dict, name: str) -> dict[str, tuple[float, float, float]]:
    """Per group of blocks averaged (each block alone, the early and late halves of the measured
    blocks, all): (Spearman with accuracy, trained − random, that difference in jackknife se)."""
    from scipy import stats

    models = record["models"]
    acc = [m["acc"] for m in models]
    blocks = list(models[0]["candidates"][name]["per_block"])
    groups = {f"block {b}": [b] for b in blocks}
    half = len(blocks) // 2
    groups |= {"early half": blocks[:half], "late half": blocks[half:], "all": blocks}
    by_model = {m["model"]: m["candidates"][name] for m in models}
    out = {}
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
        out[label] = (rho, diff, diff / se)
    return out


def per_block(record: dict, name: str) -> list[str]:
    """Spearman with accuracy and trained - control separation of each block alone, and of the
    early and late halves of the measured blocks (the choice of blocks averaged)."""
    lines = [
        f"**{name}, by blocks averaged**",
        "",
        "| blocks | Spearman | trained − random (bits) | (se) |",
        "|---|---|---|---|",
    ]
    for label, (rho, diff, sep) in per_block_values(record, name).items():
        lines.append(f"| {label} | {rho:.2f} | {diff:+.3f} | {sep:.1f} |")
    return lines


def rule_order(ranking: dict[str, tuple]) -> list[str]:
    """The candidates of `table`'s ranking in the rule's order: most gates passed, then the
    larger separation, then the smaller N/2 -> N change."""
    return sorted(
        ranking,
        key=lambda n: (-ranking[n][0], -ranking[n][1], ranking[n][2]["max_change_half_n_to_n"]),
    )


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
    p.add_argument(
        "--seed-units",
        action="store_true",
        help="the separation gate in seed units (measured from --seeds on the selection series, "
        "scaled by its ratio to the jackknife on the others), the jackknife one beside it",
    )
    args = p.parse_args(argv)
    seeds = None
    if args.seeds:
        seeds = {"seed_spread": [e for path in args.seeds for e in load(path)["seed_spread"]]}
    if args.seed_units and seeds is None:
        p.error("--seed-units needs the selection series' --seeds")
    selection = load(args.selection)
    ratios = seed_ratios(selection, seeds) if args.seed_units else None
    unit = "seed sd" if args.seed_units else "se"
    lines, ranking = table(
        selection, seeds, f"Selection: {args.selection.name}", args.logprob_gate, ratios=ratios
    )
    print("\n".join(lines))
    print("\nThe rule's order (gates passed, then separation, then change):")
    for name in rule_order(ranking)[:5]:
        passed, sep, _ = ranking[name]
        print(f"- {name}: {passed} gates, separation {sep:.1f} {unit}")
    for name in args.per_block:
        print()
        print("\n".join(per_block(selection, name)))
    for path in args.confirm:
        title = f"Confirmation: {path.name}"
        print()
        print("\n".join(table(load(path), None, title, args.logprob_gate, ratios=ratios)[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
