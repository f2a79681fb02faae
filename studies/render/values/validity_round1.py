"""The values of docs/validity.md's round-1 part (templates/validity/round1.md.j2).

Everything comes from the round-1 probe files (studies/validity/results/probe_*.json) and the
selection series' seed spread (seeds_smollm2.json, seeds_smollm2_psi.json). The gate tables are
studies.validity.tables.table's with the separation gate in seed units: measured where the seed
spread was (SmolLM2), elsewhere the jackknife separation scaled by SmolLM2's ratio of the two.
A claim the prose states in words (an order, "every", "none") is checked here: `_holds` stops
the rendering when the results no longer bear it out.
"""

from __future__ import annotations

import math
import statistics
from functools import cache
from types import SimpleNamespace

from studies.render.formatting import count, num
from studies.render.values.common import (
    FLOOR_UPDATE,
    PSI_UPDATE,
    changes,
    claim_holds,
    model,
    probe,
    seeds,
    summary,
)
from studies.validity.tables import (
    SEPARATION_GATE,
    allowance,
    converges,
    median_seconds,
    per_block_values,
    row_gates,
    rule_order,
    seed_cvs,
    seed_ratios,
    seed_sd,
    table,
)

#: The round-1 series and their probe files.
SERIES = {"selection": "probe_smollm2", "family": "probe_family", "qwen": "probe_qwen"}
SEEDS = ("seeds_smollm2", "seeds_smollm2_psi")
INFONCE = "infonce on y"
KAPPA1_Y = "gaussian-floor(kappa=1) on y"
KAPPA1_UPDATE = "gaussian-floor(kappa=1) on y-x"
KAPPA2_Y = "gaussian-floor(kappa=2) on y"
VLINEAR01_Y = "v-linear(kappa=0.1) on y"
VLINEAR01_UPDATE = "v-linear(kappa=0.1) on y-x"
VLINEAR1_UPDATE = "v-linear(kappa=1) on y-x"
PSI_ON_Y = "gaussian-floor(kappa=0.25) on y, psi"
FLOORS_ON_Y = [f"gaussian-floor(kappa={k}) on y" for k in ("0.25", "0.5", "1", "2")]
FLOORS_ON_UPDATE = [f"gaussian-floor(kappa={k}) on y-x" for k in ("0.25", "0.5", "1", "2")]
NOISE_REL = [f"infonce(noise_rel={r}) on {t}" for t in ("y", "y-x") for r in ("0.25", "1")]
#: The trained bounds and v-linear at κ = 0.1: the candidates that rise with N.
RISING = [INFONCE, *NOISE_REL, VLINEAR01_Y, VLINEAR01_UPDATE]
#: The candidates of the confirmation series' IE tables.
FAMILY_SHOWN = [INFONCE, FLOOR_UPDATE, KAPPA1_UPDATE, VLINEAR01_UPDATE, PSI_UPDATE]
QWEN_SHOWN = [INFONCE, FLOOR_UPDATE, KAPPA1_UPDATE, PSI_UPDATE]
#: A family checkpoint is on the accuracy plateau when it is past step 0 and below this.
PLATEAU_BELOW = 0.5
#: The selection series' gates (separation, Spearman, convergence, seed CV, ceiling).
SELECTION_GATES = 5

_WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def _holds(condition: bool, claim: str) -> None:
    claim_holds("docs/validity.md, round 1", condition, claim)


def _word(n: int) -> str:
    """A small count as the prose spells it: 5 -> 'five'."""
    return _WORDS[n]


def _and(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _code(names: list[str]) -> str:
    """Candidate names as code spans, joined with 'and'."""
    return _and([f"`{n}`" for n in names])


def record(series: str) -> dict:
    """The probe record of a round-1 series."""
    return probe(SERIES[series])


def spread(series: str) -> dict | None:
    """A series' seed spread (the selection series only)."""
    return seeds(*SEEDS) if series == "selection" else None


@cache
def ratios() -> dict[str, float]:
    """Per candidate with a seed spread: SmolLM2's jackknife separation over its seed-unit one."""
    return seed_ratios(record("selection"), spread("selection"))


@cache
def gate_table(series: str, seed_units: bool = True) -> tuple[list[str], dict[str, tuple]]:
    """A series' gate table (`table`'s lines) and ranking, the separation in seed units or, with
    `seed_units` False, in jackknife se (the reading before issue 29)."""
    return table(record(series), spread(series), "", ratios=ratios() if seed_units else None)


def sep(series: str, name: str) -> SimpleNamespace:
    """A candidate's smallest separation on a series: seed units (measured or scaled), whether
    scaled, the jackknife se, and the gate."""
    s = row_gates(record(series), spread(series), name, ratios=ratios())[1]
    return SimpleNamespace(seed=s.value, scaled=s.scaled, se=s.jackknife, passes=s.passes)


def gates_of(series: str, name: str) -> dict[str, bool | None]:
    """A candidate's gates on a series as its table reads them (separation in seed units)."""
    return row_gates(record(series), spread(series), name, ratios=ratios())[0]


def names(series: str) -> list[str]:
    """The candidates of a series, in its file's order."""
    return [s["candidate"] for s in record(series)["summary"]]


def rho(series: str, name: str) -> float:
    """A candidate's Spearman with accuracy."""
    return summary(record(series), name)["spearman_with_acc"]


def max_change(series: str, name: str) -> float:
    """The largest |IE(N) − IE(N/2)| over a series' models."""
    return summary(record(series), name)["max_change_half_n_to_n"]


def entry(series: str, name: str, model_name: str) -> dict:
    """One model's estimate of a candidate."""
    return model(record(series), model_name)["candidates"][name]


def change(series: str, name: str, model_name: str) -> float:
    """IE(N) − IE(N/2) of one model of a series."""
    e = entry(series, name, model_name)
    return e["value_full_n"] - e["value"]


def allowed(series: str, name: str, model_name: str) -> float:
    """The convergence gate's allowance of one model: max(0.05, 2% of its own |IE|)."""
    return allowance(entry(series, name, model_name))


def outside(series: str, name: str) -> list[str]:
    """The models of a series whose N/2 -> N change exceeds their allowance."""
    return [m["model"] for m in record(series)["models"] if not converges(m["candidates"][name])]


def ie_table(series: str, shown: list[str]) -> str:
    """The models' accuracy and IE of the `shown` candidates, a markdown table."""
    lines = ["| model | acc | " + " | ".join(shown) + " |", "|---|---|" + "---|" * len(shown)]
    for m in record(series)["models"]:
        values = " | ".join(f"{m['candidates'][n]['value']:.3f}" for n in shown)
        lines.append(f"| {m['model']} | {m['acc']:.3f} | {values} |")
    return "\n".join(lines)


def _verdict_cell(series: str, name: str) -> tuple[str, str]:
    """A verdict table's separation and Spearman cells of a candidate, failures marked."""
    s, g = sep(series, name), gates_of(series, name)
    separation_cell = f"{num(s.seed, 1)} seed sd" + (" scaled" if s.scaled else "")
    fail = " (fail)"
    return (
        separation_cell + ("" if g["separation"] else fail),
        num(rho(series, name), 2) + ("" if g["spearman"] else fail),
    )


def verdict_table() -> str:
    """The rule's own test: the default and the first reading's pick on every series."""
    labels = {
        "selection": f"selection, SmolLM2 ({len(record('selection')['models'])} models)",
        "qwen": (
            f"confirmation, Qwen2.5-0.5B ({len(record('qwen')['models'])} models, "
            f"N = {count(record('qwen')['settings']['n'] // 2)})"
        ),
        "family": f"confirmation, trained family ({len(record('family')['models'])} checkpoints)",
    }
    lines = [
        "| series | `floor-update`: separation | Spearman | `psi-update` (the first reading's "
        "pick): separation | Spearman |",
        "|---|---|---|---|---|",
    ]
    _holds(
        all(sep(s, FLOOR_UPDATE).passes for s in labels),
        "floor-update separates every trained model from its init on all three series",
    )
    both = [
        n
        for n in names("qwen")
        if n in names("family")
        and all(
            gates_of(s, n)["separation"] and gates_of(s, n)["spearman"] for s in ("qwen", "family")
        )
    ]
    _holds(not both, "no candidate passes separation and Spearman on both confirmation series")
    for series, label in labels.items():
        cells = [*_verdict_cell(series, FLOOR_UPDATE), *_verdict_cell(series, PSI_UPDATE)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables() -> SimpleNamespace:
    """The gate tables (header and rows), the IE tables and the verdict table."""
    return SimpleNamespace(
        selection="\n".join(gate_table("selection")[0][2:]),
        family="\n".join(gate_table("family")[0][2:]),
        qwen="\n".join(gate_table("qwen")[0][2:]),
        family_ie=ie_table("family", FAMILY_SHOWN),
        qwen_ie=ie_table("qwen", QWEN_SHOWN),
        verdict=verdict_table(),
    )


def plan() -> SimpleNamespace:
    """The family's first run, on country lists only: the accuracy its checkpoints pile up at
    (the most common one above zero), which a fixed guess of a country scores."""
    acc = [round(m["acc"], 3) for m in probe("probe_family_country_only")["models"]]
    guess = statistics.mode(a for a in acc if a > 0)
    return SimpleNamespace(fixed_guess=guess, at_guess=acc.count(guess))


def why() -> SimpleNamespace:
    """InfoNCE's drift in N, measured again on the selection series."""
    return SimpleNamespace(infonce_change=max_change("selection", INFONCE))


def honest() -> SimpleNamespace:
    """Seed units: the seed spread against the jackknife stderr, and what the gate loses."""
    trained = model(record("selection"), "trained")["candidates"]
    sd = {e["candidate"]: seed_sd(e["trained"]) for e in spread("selection")["seed_spread"]}
    times = {n: sd[n] / trained[n]["stderr"] for n in sd}
    n_seeds = probe(SEEDS[0])["settings"]["seed_spread"]
    flips = []
    for series, label in (("selection", "SmolLM2"), ("family", "the family"), ("qwen", "Qwen")):
        old, new = gate_table(series, seed_units=False)[1], gate_table(series)[1]
        _holds(old.keys() == new.keys(), "the two readings rank the same candidates")
        for name in names(series):
            jackknife = summary(record(series), name)["min_separation_se"] >= SEPARATION_GATE
            if jackknife and sep(series, name).passes is False:
                flips.append(f"`{name}` on {label}")
    no_number = [n for n in names("selection") if sep("selection", n).seed is None]
    return SimpleNamespace(
        closed_form_times=[t for n, t in times.items() if n.startswith("gaussian-floor")],
        floor_update=SimpleNamespace(
            sd=sd[FLOOR_UPDATE], se=trained[FLOOR_UPDATE]["stderr"], times=times[FLOOR_UPDATE]
        ),
        kappa1=SimpleNamespace(
            sd=sd[KAPPA1_UPDATE], se=trained[KAPPA1_UPDATE]["stderr"], times=times[KAPPA1_UPDATE]
        ),
        n_seeds=n_seeds,
        sd_uncertainty=1 / math.sqrt(2 * (n_seeds - 1)),
        flips=_and(flips) if flips else "none",
        n_no_number=len(no_number),
    )


def _measured(series: str, name: str) -> int:
    """How many gates a candidate's row of a series' table measures (its "/n")."""
    return sum(v is not None for v in gates_of(series, name).values())


def selection() -> SimpleNamespace:
    """The selection series: accuracy, convergence, what each kind of candidate does."""
    sel = "selection"
    acc = {m["model"]: m["acc"] for m in record(sel)["models"]}
    binomial = math.sqrt(acc["trained"] * (1 - acc["trained"]) / record(sel)["settings"]["n"])
    first_three = [acc[m] for m in ("trained", "weight noise 0.01", "weight noise 0.03")]
    _holds(max(first_three) - min(first_three) < 2 * binomial, "the first three are tied")
    ranking = gate_table(sel)[1]
    cv = seed_cvs(spread(sel))
    floor_changes = changes(record(sel), FLOOR_UPDATE)
    _holds(max(floor_changes) < 0, "the closed-form floor falls as N grows")
    _holds(outside(sel, FLOOR_UPDATE) == ["weight noise 0.3"], "only the noise-0.3 copy fails")
    rising = [c for n in RISING for c in changes(record(sel), n)]
    _holds(min(rising) > 0, "InfoNCE and v-linear at κ = 0.1 rise with N")
    k1 = [entry(sel, KAPPA1_Y, m)["value"] for m in ("trained", "weight noise 0.1")]
    _holds(k1[1] > k1[0], "the floor on y rises as weight noise destroys accuracy")
    update = FLOORS_ON_UPDATE[:3]
    _holds(
        all(sep(sel, n).passes for n in update) and not sep(sel, FLOORS_ON_UPDATE[3]).passes,
        "the floor on y − x separates at κ = 0.25 to 1, not at 2",
    )
    _holds(
        entry(sel, FLOOR_UPDATE, "random init")["value"]
        > entry(sel, FLOOR_UPDATE, "weight noise 0.3")["value"],
        "the floor on y − x puts the random init above the noise-0.3 copy",
    )
    converging = [n for n in FLOORS_ON_UPDATE if not outside(sel, n)]
    _holds(converging == FLOORS_ON_UPDATE[3:], "on y − x only κ = 2 converges")
    _holds(outside(sel, KAPPA1_UPDATE) == ["weight noise 0.3"], "κ = 1 misses on noise 0.3")
    noise3 = "weight noise 0.3"
    kappa1_miss = abs(change(sel, KAPPA1_UPDATE, noise3)) - allowed(sel, KAPPA1_UPDATE, noise3)
    _holds(outside(sel, PSI_UPDATE) == [noise3], "psi-update fails convergence on noise 0.3")
    first_reading = 0.02 * entry(sel, PSI_UPDATE, "trained")["value"]
    _holds(max_change(sel, PSI_UPDATE) <= first_reading, "psi passed under the first reading")
    blocks = per_block_values(record(sel), FLOOR_UPDATE)
    single = {k: v[0] for k, v in blocks.items() if k.startswith("block ")}
    follows = [v for v in single.values() if v >= 0.8]
    _holds(
        blocks["all"][0] >= max(blocks["early half"][0], blocks["late half"][0]) - 1e-12,
        "averaging all blocks is as good as the best half",
    )
    closed = [
        round(median_seconds(record(sel), n), 1)
        for n in names(sel)
        if n.startswith(("gaussian-floor", "v-linear"))
    ]
    return SimpleNamespace(
        acc=acc,
        binomial=binomial,
        floor=SimpleNamespace(
            changes=floor_changes,
            random=change(sel, FLOOR_UPDATE, "random init"),
            trained=change(sel, FLOOR_UPDATE, "trained"),
            noise3=change(sel, FLOOR_UPDATE, noise3),
            noise3_allowance=allowed(sel, FLOOR_UPDATE, noise3),
            sep=sep(sel, FLOOR_UPDATE),
            rho=rho(sel, FLOOR_UPDATE),
            cv=cv[FLOOR_UPDATE],
            falls=max_change(sel, FLOOR_UPDATE),
        ),
        rising=rising,
        infonce=SimpleNamespace(
            sep=sep(sel, INFONCE),
            rho=rho(sel, INFONCE),
            change=max_change(sel, INFONCE),
            failed=_measured(sel, INFONCE) - ranking[INFONCE][0],
            gates=_measured(sel, INFONCE),
        ),
        kappa1_y=k1,
        floor_y_rho=max(rho(sel, n) for n in FLOORS_ON_Y),
        update_seeds=[sep(sel, n).seed for n in update],
        kappa1_miss=kappa1_miss,
        converging_rhos=[rho(sel, n) for n in FLOORS_ON_UPDATE[2:]],
        noise_rel_seps=[sep(sel, n).se for n in NOISE_REL],
        noise_rel_changes=[max_change(sel, n) for n in NOISE_REL],
        psi=SimpleNamespace(
            passed=ranking[PSI_UPDATE][0],
            gates=_measured(sel, PSI_UPDATE),
            passed_word=_word(ranking[PSI_UPDATE][0]),
            gates_word=_word(_measured(sel, PSI_UPDATE)),
            sep=sep(sel, PSI_UPDATE),
            rho=rho(sel, PSI_UPDATE),
            cv=cv[PSI_UPDATE],
            noise3=change(sel, PSI_UPDATE, noise3),
            noise3_allowance=allowed(sel, PSI_UPDATE, noise3),
            first_reading=first_reading,
            change=max_change(sel, PSI_UPDATE),
            on_y=rho(sel, PSI_ON_Y),
        ),
        blocks=len(single),
        blocks_follow=len(follows),
        blocks_follow_rho=follows,
        blocks_other=", ".join(f"{num(v, 2)} at {k}" for k, v in single.items() if v < 0.8),
        closed_form_seconds=closed,
        infonce_seconds=median_seconds(record(sel), INFONCE),
        forward_seconds=[m["seconds_forward"] for m in record(sel)["models"]],
    )


def rule() -> SimpleNamespace:
    """The rule applied to the selection series, in seed units and in jackknife se."""
    new, old = gate_table("selection")[1], gate_table("selection", seed_units=False)[1]
    order, old_order = rule_order(new), rule_order(old)
    most = new[order[0]][0]
    top = [n for n in order if new[n][0] == most]
    old_top = [n for n in old_order if old[n][0] == most]
    _holds(most < SELECTION_GATES, "no candidate passes every selection gate")
    _holds(order[0] == FLOOR_UPDATE == old_order[0], "the rule picks floor-update either way")
    _holds(set(top) == set(old_top), "the same candidates pass the most gates either way")
    return SimpleNamespace(
        most=most,
        most_word=_word(most),
        gates=SELECTION_GATES,
        n_top=_word(len(top)).capitalize(),
        pick=sep("selection", FLOOR_UPDATE),
        same_order=top == old_top,
        order=_code(top[1:]),
        old_order=_code(old_top[1:]),
    )


def family() -> SimpleNamespace:
    """The family trained from scratch: accuracy over training and what the gates show."""
    fam = "family"
    rec = record(fam)
    acc = {m["model"]: m["acc"] for m in rec["models"]}
    widths, last = rec["settings"]["widths"], rec["settings"]["checkpoints"][-1]
    end = [acc[f"width {w} step {last}"] for w in widths]
    _holds(end != sorted(end), "accuracy at the last step is not monotone in width")
    plateau = [m["acc"] for m in rec["models"] if m["step"] > 0 and m["acc"] < PLATEAU_BELOW]
    rhos = {n: rho(fam, n) for n in names(fam)}
    _holds(max(rhos, key=rhos.get) == VLINEAR1_UPDATE, "the largest ρ is v-linear κ = 1 on y − x")
    on_y = [s for s in rec["summary"] if s["candidate"].endswith((" on y", " on y, psi"))]
    below = [s["candidate"] for s in on_y if max(s["separation_se"]) < 0]
    mixed = [s["candidate"] for s in on_y if s["candidate"] not in below]
    _holds(mixed == [KAPPA2_Y, VLINEAR01_Y], "the other two are κ = 2 and v-linear κ = 0.1")
    _holds(VLINEAR01_Y not in ratios(), "v-linear κ = 0.1 on y has no seed ratio")
    r = ratios()
    per_width = {s["candidate"]: s["separation_se"] for s in rec["summary"]}
    below_scaled = [v / r[n] for n in below if n in r for v in per_width[n]]
    update = [
        n for n in (*FLOORS_ON_UPDATE, VLINEAR01_UPDATE, VLINEAR1_UPDATE) if sep(fam, n).se > 0
    ]
    _holds(
        update == [*FLOORS_ON_UPDATE[:3], VLINEAR01_UPDATE, VLINEAR1_UPDATE],
        "on y − x the floor at κ = 0.25 to 1 and v-linear separate",
    )
    floors = FLOORS_ON_UPDATE[:3]
    fu = {m["model"]: m["candidates"][FLOOR_UPDATE]["value"] for m in rec["models"]}
    for w in widths:
        _holds(fu[f"width {w} step 0"] < 0, "floor-update is below zero at initialisation")
        _holds(fu[f"width {w} step 200"] < fu[f"width {w} step 0"], "it falls in 200 steps")
        _holds(fu[f"width {w} step {last}"] > 0, "it turns positive later")
    psi = {m["model"]: m["candidates"][PSI_UPDATE]["value"] for m in rec["models"]}
    return SimpleNamespace(
        start=[acc[f"width {w} step 0"] for w in widths],
        end=end,
        plateau=statistics.mean(plateau),
        best_rho=rhos[VLINEAR1_UPDATE],
        n_on_y=len(on_y),
        n_below=len(below),
        below_jackknife=[v for n in below for v in per_width[n]],
        below_scaled=below_scaled,
        n_below_scaled=_word(len([n for n in below if n in r])),
        below_none=_code([n for n in below if n not in r]),
        kappa2_up=[v / r[KAPPA2_Y] for v in per_width[KAPPA2_Y] if v > 0],
        vlinear_up=[v for v in per_width[VLINEAR01_Y] if v > 0],
        update_floor=[sep(fam, n).seed for n in floors],
        update_floor_failing=_code([n for n in floors if not sep(fam, n).passes]),
        update_vlinear=[sep(fam, n).se for n in update[3:]],
        update_rhos=[rhos[n] for n in update],
        psi_init=[psi[f"width {w} step 0"] for w in widths],
        psi_end=[psi[f"width {w} step {last}"] for w in widths],
        psi_sep=sep(fam, PSI_UPDATE),
        psi_rho=rhos[PSI_UPDATE],
        floor=SimpleNamespace(
            sep=sep(fam, FLOOR_UPDATE),
            rho=rhos[FLOOR_UPDATE],
            ci=summary(rec, FLOOR_UPDATE)["spearman_ci95"],
        ),
    )


def qwen() -> SimpleNamespace:
    """Qwen2.5-Coder-0.5B: accuracy under noise and the gates."""
    q = "qwen"
    acc = {m["model"]: m["acc"] for m in record(q)["models"]}
    _holds(acc["weight noise 0.1"] > acc["trained"], "noise 0.1 raises the accuracy")
    ranking = gate_table(q)[1]
    measured = {n: sum(v is not None for v in gates_of(q, n).values()) for n in ranking}
    every = [n for n in names(q) if ranking[n][0] == measured[n]]
    _holds(
        every
        == [KAPPA1_Y, "gaussian-floor(kappa=2) on y-x", "gaussian-floor(kappa=1) on y-x, psi"],
        "κ = 1 on y, κ = 2 on y − x and psi κ = 1 on y − x pass every gate measured on Qwen",
    )
    selection_ranking = gate_table("selection")[1]
    _holds(all(selection_ranking[n][0] < SELECTION_GATES for n in every), "they failed on SmolLM2")
    _holds(sep(q, VLINEAR1_UPDATE).seed is None, "v-linear κ = 1 on y − x has no seed ratio")
    psi_gates = gates_of(q, PSI_UPDATE)
    _holds(not psi_gates["spearman"] and not psi_gates["convergence"], "psi fails both")
    return SimpleNamespace(
        acc=acc,
        floor=SimpleNamespace(
            sep=sep(q, FLOOR_UPDATE),
            rho=rho(q, FLOOR_UPDATE),
            changes=changes(record(q), FLOOR_UPDATE),
            trained=change(q, FLOOR_UPDATE, "trained"),
            random=change(q, FLOOR_UPDATE, "random init"),
            n_outside=_word(len(outside(q, FLOOR_UPDATE))),
        ),
        n_models=_word(len(record(q)["models"])),
        psi=SimpleNamespace(sep=sep(q, PSI_UPDATE), rho=rho(q, PSI_UPDATE)),
        top_rho=max(rho(q, n) for n in names(q)),
    )


def values() -> dict:
    return {
        "round1": SimpleNamespace(
            tables=tables(),
            plan=plan(),
            why=why(),
            honest=honest(),
            selection=selection(),
            rule=rule(),
            family=family(),
            qwen=qwen(),
        )
    }
