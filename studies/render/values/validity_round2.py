"""The values of docs/validity.md's round-2 part (templates/validity/round2.md.j2).

Everything comes from the round-2 probe files (studies/validity/results/round2_*.json), their
seed spread (seeds_round2_smollm2.json) and three earlier files the text compares them with
(baselines_seeds_smollm2.json, baselines_family.json, probe_qwen.json).
Separations the prose quotes are given in seed units where the seed spread measured them
(SmolLM2) and scaled by SmolLM2's ratio of seed spread to jackknife stderr elsewhere.
A claim the prose states in words (an order, "every", "none") is checked here: `_holds` stops
the rendering when the results no longer bear it out.
"""

from __future__ import annotations

from types import SimpleNamespace

from studies.render.values.common import (
    FLOOR_UPDATE,
    FLOOR_UPDATE_JACKKNIFE,
    changes,
    claim_holds,
    model,
    probe,
    summary,
)
from studies.validity.tables import (
    converges,
    gates,
    rule_order,
    seed_ratios,
    seed_separations,
    table,
)

#: The round-2 series, by the name the values use, and their probe files.
SERIES = {
    "selection": "round2_smollm2",
    "interp": "round2_interp_smollm2",
    "family": "round2_family",
    "family2": "round2_family2",
    "qwen": "round2_qwen",
    "interp_qwen": "round2_interp_qwen",
}
SEEDS = "seeds_round2_smollm2"
PICK = FLOOR_UPDATE_JACKKNIFE
PSI = "gaussian-floor(kappa=0.25) on y-x, psi"
PSI_JACKKNIFE = "gaussian-floor(kappa=0.25,bias=jackknife) on y-x, psi"
KAPPA_HALF_JACKKNIFE = "gaussian-floor(kappa=0.5,bias=jackknife) on y-x"
KAPPA1_Y_JACKKNIFE = "gaussian-floor(kappa=1,bias=jackknife) on y"
KAPPA1 = "gaussian-floor(kappa=1) on y-x"
KAPPA1_JACKKNIFE = "gaussian-floor(kappa=1,bias=jackknife) on y-x"
VLINEAR = "v-linear(kappa=1) on y-x"
VLINEAR_JACKKNIFE = "v-linear(kappa=1,bias=jackknife) on y-x"
BASELINES = ("erank on y", "matrix entropy on y", "Diff-eRank")
MATRIX_ENTROPY = "matrix entropy on y"
#: A model's forward pass counts as slowed by a shared machine above this many times the
#: fastest model of its series.
SLOWED = 1.5

_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()  # noqa: SIM905
_ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth".split()  # noqa: SIM905


def _holds(condition: bool, claim: str) -> None:
    claim_holds("docs/validity.md, round 2", condition, claim)


def _word(n: int) -> str:
    """A small count as the prose spells it: 5 -> 'five'."""
    return _WORDS[n]


def _and(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _called(name: str) -> str:
    """A model as the prose calls it: 'weight noise 0.3' -> 'the noise-0.3 copy'."""
    if name.startswith("weight noise "):
        return f"the noise-{name.removeprefix('weight noise ')} copy"
    return {"trained": "the trained model", "random init": "the random init"}.get(name, name)


def record(series: str) -> dict:
    """The probe record of a round-2 series."""
    return probe(SERIES[series])


def candidates(series: str) -> list[str]:
    """The IE candidates of a series (the spectral baselines left out)."""
    return [s["candidate"] for s in record(series)["summary"] if s["candidate"] not in BASELINES]


def twins() -> dict[str, str]:
    """Each corrected candidate and its plug-in twin."""
    return {
        name: name.replace(",bias=jackknife", "")
        for name in candidates("selection")
        if "bias=jackknife" in name
    }


def rho(series: str, name: str, key: str = "spearman_with_acc") -> float:
    """A Spearman coefficient of a candidate, read in its direction (as the tables print it)."""
    s = summary(record(series), name)
    return s.get("direction", 1) * s[key]


def gate(series: str, name: str) -> dict[str, bool | None]:
    """The round-2 gates of a candidate on a series (no seed CV outside the selection)."""
    rec = record(series)
    return gates(summary(rec, name), rec["models"], None, logprob_gate=True)


def separation(series: str, name: str) -> float:
    """The smallest trained/control separation in jackknife se (the gate's)."""
    return summary(record(series), name)["min_separation_se"]


def max_change(series: str, name: str) -> float:
    """The largest |IE(N) − IE(N/2)| over a series' models."""
    return summary(record(series), name)["max_change_half_n_to_n"]


# --- seed units -------------------------------------------------------------------------------


def seed_units(name: str) -> float:
    """SmolLM2's trained − random gap in seed units (studies.validity.tables.seed_separations)."""
    return seed_separations(record("selection"), probe(SEEDS))[name]


def seed_ratio(name: str) -> float:
    """SmolLM2's jackknife separation over its seed-unit one (tables.seed_ratios): how many
    times the pair's seed spread exceeds its jackknife stderr."""
    return ratios()[name]


def ratios() -> dict[str, float]:
    """Every candidate's seed ratio on SmolLM2, which scales the other series' separations."""
    return seed_ratios(record("selection"), probe(SEEDS))


def scaled(series: str, name: str) -> float:
    """A series' smallest separation in scaled seed units: jackknife se / SmolLM2's ratio."""
    return separation(series, name) / seed_ratio(name)


# --- the parts of the text ----------------------------------------------------------------------


def gate_table(series: str, in_seed_units: bool = True) -> tuple[list[str], dict[str, tuple]]:
    """A series' gate table and ranking (studies.validity.tables.table), its separation gate in
    seed units, or in jackknife se as the plan had it (`in_seed_units` False)."""
    seeds = probe(SEEDS) if series == "selection" else None
    return table(record(series), seeds, "", True, ratios=ratios() if in_seed_units else None)


def tables() -> SimpleNamespace:
    """Each series' gate table (header and rows), separations in seed units."""
    return SimpleNamespace(**{s: "\n".join(gate_table(s)[0][2:]) for s in SERIES})


def _slowed(series: str) -> tuple[list[int], list[float], list[float]]:
    """Positions of the models whose forward pass was slowed, their seconds, the others'."""
    seconds = [m["seconds_forward"] for m in record(series)["models"]]
    fastest = min(seconds)
    slow = [i for i, s in enumerate(seconds) if s > SLOWED * fastest]
    return slow, [seconds[i] for i in slow], [s for i, s in enumerate(seconds) if i not in slow]


def runs() -> SimpleNamespace:
    """The runs themselves: which models shared the cores, the forward-pass seconds."""
    slow, slow_s, other_s = _slowed("selection")
    names = [record("selection")["models"][i]["model"] for i in slow]
    qwen = [m["seconds_forward"] for s in ("qwen", "interp_qwen") for m in record(s)["models"]]
    qwen_other = _slowed("qwen")[2] + _slowed("interp_qwen")[2]
    shared = probe("baselines_seeds_smollm2")["seed_spread"]
    mine = {e["candidate"]: e for e in probe(SEEDS)["seed_spread"]}
    identical = [e for e in shared if mine.get(e["candidate"]) == e]
    _holds(len(identical) == len(shared), "the shared seed-spread rows are bit-identical")
    return SimpleNamespace(
        smollm2_slowed=_and([_ORDINALS[i] for i in slow]),
        smollm2_slowed_models=_and([_called(n) for n in names]),
        smollm2_slowed_seconds=slow_s,
        smollm2_other_seconds=other_s,
        qwen_seconds=qwen,
        qwen_unslowed=_word(len(qwen_other)),
        qwen_models=_word(len(qwen)),
        qwen_unslowed_seconds=qwen_other,
        seed_rows_identical=_word(len(identical)),
    )


def rule() -> SimpleNamespace:
    """The rule applied to the selection series, and why its pick is not the default."""
    rec, seeds = record("selection"), probe(SEEDS)
    ranking = gate_table("selection", in_seed_units=False)[1]
    most = max(r[0] for n, r in ranking.items() if n not in BASELINES)
    top = [n for n in rule_order(ranking) if n not in BASELINES and ranking[n][0] == most]
    honest = gate_table("selection")[1]
    honest_top = [n for n in rule_order(honest) if n not in BASELINES and honest[n][0] == most]
    _holds(
        honest_top == [FLOOR_UPDATE, PICK, KAPPA_HALF_JACKKNIFE, PSI]
        and honest[PSI_JACKKNIFE][0] == ranking[PSI_JACKKNIFE][0] - 1,
        "in seed units the corrected psi form loses the separation gate and floor-update leads",
    )
    cvs = {
        e["candidate"]: max(e[s]["cv"] for s in ("trained", "random init") if s in e)
        for e in seeds["seed_spread"]
    }
    measured = sum(
        v is not None for v in gates(summary(rec, PICK), rec["models"], cvs[PICK], True).values()
    )
    _holds(most < measured, "no candidate passes every gate")
    _holds(
        top == [PICK, FLOOR_UPDATE, KAPPA_HALF_JACKKNIFE, PSI, PSI_JACKKNIFE],
        "the rule picks floor-update with bias=jackknife, ahead of floor-update, κ = 0.5 with "
        "the jackknife and the psi pair, which pass as many gates",
    )
    matrix = gates(summary(rec, MATRIX_ENTROPY), rec["models"], cvs[MATRIX_ENTROPY], True)
    _holds(
        [k for k, v in matrix.items() if v is False] == ["spearman logprob", "seed CV"],
        "matrix entropy fails the logprob gate and the seed CV, nothing else",
    )
    noise3 = model(rec, "weight noise 0.3")["candidates"][PICK]
    _holds(not converges(noise3), "the pick fails convergence on the noise-0.3 copy")
    both = {"spearman", "spearman logprob"}
    failed = {s: {k for k, v in gate(s, PICK).items() if v is False} for s in SERIES}
    _holds(
        both <= failed["interp"]
        and both | {"convergence"} <= failed["family"]
        and both <= failed["qwen"]
        and "spearman" in failed["interp_qwen"]
        and "spearman logprob" not in failed["interp_qwen"],
        "the pick's failures on the confirmation series",
    )
    family2 = summary(record("family2"), PICK)
    _holds(max(family2["separation_se"]) < 0, "family2 scores every initialisation higher")
    qwen = summary(record("qwen"), PICK)["value_by_model"]
    _holds(
        qwen["weight noise 0.01"] > qwen["trained"] > qwen["weight noise 0.1"],
        "on Qwen the pick ranks noise 0.01 over trained over noise 0.1",
    )
    acc = {m["model"]: m["acc"] for m in record("qwen")["models"]}
    _holds(max(acc, key=acc.get) == "weight noise 0.1", "Qwen's noise-0.1 copy is most accurate")

    def sep(name: str) -> SimpleNamespace:
        return SimpleNamespace(seed=seed_units(name), se=separation("selection", name))

    return SimpleNamespace(
        gates=measured,
        n_top=_word(len(top)).capitalize(),
        top_passed=most,
        pick=sep(PICK),
        floor_update=sep(FLOOR_UPDATE),
        kappa_half=sep(KAPPA_HALF_JACKKNIFE),
        psi=sep(PSI),
        psi_jackknife=sep(PSI_JACKKNIFE),
        matrix=sep(MATRIX_ENTROPY),
        matrix_passed=ranking[MATRIX_ENTROPY][0],
        matrix_cv=cvs[MATRIX_ENTROPY],
        matrix_logprob=rho("selection", MATRIX_ENTROPY, "spearman_with_logprob"),
        ie_cv_pct=[100 * cvs[n] for n in candidates("selection")],
        pick_change=noise3["value_full_n"] - noise3["value"],
        pick_allowance=max(0.05, 0.02 * abs(noise3["value"])),
        interp=_rhos("interp", PICK),
        family=_rhos("family", PICK),
        family2_se=separation("family2", PICK),
        family2_scaled=scaled("family2", PICK),
        qwen=_rhos("qwen", PICK),
        qwen_acc_noise=acc["weight noise 0.1"],
        qwen_acc_trained=acc["trained"],
        interp_qwen=_rhos("interp_qwen", PICK),
        honest_top=_word(len(honest_top)),
        honest_psi_passed=honest[PSI_JACKKNIFE][0],
        default_change=max_change("selection", FLOOR_UPDATE),
    )


def _rhos(series: str, name: str) -> SimpleNamespace:
    """A candidate's two Spearman coefficients on a series."""
    return SimpleNamespace(
        acc=rho(series, name), logprob=rho(series, name, "spearman_with_logprob")
    )


def _change(series: str, name: str, model_name: str) -> float:
    """IE(N) − IE(N/2) of one model of a series."""
    rec = record(series)
    models = [m["model"] for m in rec["models"]]
    return changes(rec, name)[models.index(model_name)]


def _worst(series: str, name: str) -> dict:
    """The model of a series whose N/2 → N change exceeds its allowance the most."""
    rows = []
    for m in record(series)["models"]:
        c = m["candidates"][name]
        allowance = max(0.05, 0.02 * abs(c["value"]))
        change = c["value_full_n"] - c["value"]
        rows.append(
            {
                "miss": abs(change) - allowance,
                "model": _called(m["model"]),
                "change": change,
                "allowance": allowance,
                "value": c["value"],
            }
        )
    return max(rows, key=lambda r: r["miss"])


def correction() -> SimpleNamespace:
    """What bias=jackknife does: the drift in N, the coefficients, the separations."""
    sel = "selection"
    _holds(
        all(converges(m["candidates"][KAPPA_HALF_JACKKNIFE]) for m in record(sel)["models"])
        and gate(sel, KAPPA_HALF_JACKKNIFE)["spearman"]
        and not gate(sel, KAPPA_HALF_JACKKNIFE)["spearman logprob"],
        "κ = 0.5 corrected converges, passes Spearman with accuracy, not with logprob",
    )
    deltas = {s: _rho_deltas(s) for s in SERIES}
    _holds(not any(_rho_flips(s) for s in SERIES), "no corrected coefficient changes sign")
    _holds(
        {n for n, d in deltas[sel].items() if d > 0}
        == {KAPPA1_Y_JACKKNIFE, KAPPA_HALF_JACKKNIFE, KAPPA1_JACKKNIFE}
        and {n for n, d in deltas[sel].items() if d < 0} == {PSI_JACKKNIFE},
        "on SmolLM2 κ = 1 on y and κ = 0.5 and 1 on y − x rise, the psi form falls",
    )
    _holds(
        all(d == 0 for s in ("interp", "qwen") for d in deltas[s].values()),
        "no corrected coefficient moves on the SmolLM2 interpolation and Qwen at equal N",
    )
    moved = max(deltas["interp_qwen"], key=lambda n: abs(deltas["interp_qwen"][n]))
    moved_acc = (rho("interp_qwen", twins()[moved]), rho("interp_qwen", moved))
    _holds(
        moved == KAPPA1_Y_JACKKNIFE
        and abs(moved_acc[1] - moved_acc[0]) == abs(deltas["interp_qwen"][moved]),
        "on the Qwen interpolation κ = 1 on y moves most, with accuracy",
    )
    ratios = {s: [separation(s, c) / separation(s, p) for c, p in twins().items()] for s in SERIES}
    qwen_worst = max(record("qwen")["models"], key=lambda m: _abs_change(m, PICK))
    qwen_plug_worst = max(record("qwen")["models"], key=lambda m: _abs_change(m, FLOOR_UPDATE))
    vlinear = (max_change("qwen", VLINEAR_JACKKNIFE), max_change("qwen", VLINEAR))
    kappa1 = (max_change("qwen", KAPPA1_JACKKNIFE), max_change("qwen", KAPPA1))
    _holds(
        vlinear[0] > vlinear[1] and kappa1[0] > kappa1[1],
        "on Qwen two corrections move more than their plug-ins",
    )
    return SimpleNamespace(
        trained=(_change(sel, FLOOR_UPDATE, "trained"), _change(sel, PICK, "trained")),
        noise3=(
            _change(sel, FLOOR_UPDATE, "weight noise 0.3"),
            _change(sel, PICK, "weight noise 0.3"),
        ),
        random=(_change(sel, FLOOR_UPDATE, "random init"), _change(sel, PICK, "random init")),
        kappa_half_change=max_change(sel, KAPPA_HALF_JACKKNIFE),
        kappa_half=_rhos(sel, KAPPA_HALF_JACKKNIFE),
        families_jackknife=[max_change(s, PICK) for s in ("family", "family2")],
        families_plug_in=[max_change(s, FLOOR_UPDATE) for s in ("family", "family2")],
        qwen_jackknife=max_change("qwen", PICK),
        qwen_jackknife_model=_called(qwen_worst["model"]),
        qwen_jackknife_allowance=max(0.05, 0.02 * abs(qwen_worst["candidates"][PICK]["value"])),
        qwen_plug_in=max_change("qwen", FLOOR_UPDATE),
        qwen_plug_in_model=_called(qwen_plug_worst["model"]),
        qwen_vlinear=vlinear,
        qwen_kappa1=kappa1,
        rho_selection=max(abs(d) for d in deltas[sel].values()),
        rho_family=max(abs(d) for d in deltas["family"].values()),
        rho_family2=max(abs(d) for d in deltas["family2"].values()),
        rho_interp_qwen=abs(deltas["interp_qwen"][moved]),
        interp_qwen_twin=moved_acc,
        ratio_smollm2_family=[
            r for s in ("selection", "interp", "family", "family2") for r in ratios[s]
        ],
        ratio_qwen=[r for s in ("qwen", "interp_qwen") for r in ratios[s]],
        ratio_seed_units=[seed_units(c) / seed_units(p) for c, p in twins().items()],
    )


def _abs_change(m: dict, name: str) -> float:
    """|IE(N) − IE(N/2)| of one model's candidate."""
    c = m["candidates"][name]
    return abs(c["value_full_n"] - c["value"])


def _rho_deltas(series: str) -> dict[str, float]:
    """Per corrected candidate, its coefficients' largest move from its twin's (signed)."""
    out = {}
    for corrected, plug_in in twins().items():
        moves = [
            rho(series, corrected, key) - rho(series, plug_in, key)
            for key in ("spearman_with_acc", "spearman_with_logprob")
        ]
        out[corrected] = max(moves, key=abs)
    return out


def _rho_flips(series: str) -> list[str]:
    """The corrected candidates whose coefficient has the other sign than the twin's."""
    return [
        corrected
        for corrected, plug_in in twins().items()
        for key in ("spearman_with_acc", "spearman_with_logprob")
        if rho(series, corrected, key) * rho(series, plug_in, key) < 0
    ]


def default() -> SimpleNamespace:
    """The default's (floor-update's) N/2 → N change against its allowance, per series."""
    worst = {s: _worst(s, FLOOR_UPDATE) for s in SERIES}
    corrected = {s: _worst(s, PICK)["miss"] for s in SERIES}
    _holds(
        all(corrected[s] > 0 for s in ("selection", "interp", "family"))
        and all(corrected[s] <= 0 for s in ("family2", "qwen", "interp_qwen")),
        "with bias=jackknife only SmolLM2, its interpolation and the first family miss",
    )
    _holds(
        worst["interp_qwen"]["model"] == worst["qwen"]["model"] == "the random init",
        "the Qwen interpolation's worst model is the random init again",
    )
    trained = {}
    for s in ("selection", "qwen"):
        c = model(record(s), "trained")["candidates"][FLOOR_UPDATE]
        trained[s] = SimpleNamespace(
            change=c["value_full_n"] - c["value"], allowance=max(0.05, 0.02 * abs(c["value"]))
        )
        _holds(converges(c), "the trained model passes convergence")
    return SimpleNamespace(
        **{s: SimpleNamespace(**w) for s, w in worst.items()},
        trained_selection=trained["selection"],
        trained_qwen=trained["qwen"],
        corrected=[corrected[s] for s in ("selection", "interp", "family")],
    )


def interpolations() -> SimpleNamespace:
    """The two interpolation series: accuracy, logprob_correct and IE along the path."""
    smol, qwen = record("interp")["models"], record("interp_qwen")["models"]
    acc = [m["acc"] for m in smol]
    logprob = [m["logprob_correct"] for m in smol]
    _holds(acc[1] == 0 and all(a == 0 for a in acc[1:]), "SmolLM2's accuracy is 0 from t = 0.1")
    _holds(
        logprob.index(min(logprob)) == 1 and logprob[1:5] == sorted(logprob[1:5]),
        "SmolLM2's logprob_correct is lowest at t = 0.1 and rises up to t = 0.75",
    )
    _holds(
        not any(
            gate("interp", s["candidate"])["spearman"]
            or gate("interp", s["candidate"])["spearman logprob"]
            for s in record("interp")["summary"]
        ),
        "on the SmolLM2 interpolation nothing passes either Spearman gate",
    )
    q_acc = [m["acc"] for m in qwen]
    q_logprob = [m["logprob_correct"] for m in qwen]
    _holds(q_acc[1] > q_acc[0], "Qwen's accuracy rises at t = 0.1")
    _holds(q_logprob == sorted(q_logprob, reverse=True), "Qwen's logprob_correct falls")
    passing = [
        s["candidate"]
        for s in record("interp_qwen")["summary"]
        if gate("interp_qwen", s["candidate"])["spearman logprob"]
    ]
    ie_pass = [n for n in passing if n not in BASELINES]
    _holds(
        sorted(ie_pass)
        == sorted([FLOOR_UPDATE, PICK, PSI, PSI_JACKKNIFE] + [VLINEAR, VLINEAR_JACKKNIFE])
        and len({round(rho("interp_qwen", n, "spearman_with_logprob"), 2) for n in ie_pass}) == 1
        and passing == ie_pass + [MATRIX_ENTROPY],
        "on the Qwen path both floor-updates, the psi forms and v-linear pass with one ρ",
    )
    q_ie = [m["candidates"][FLOOR_UPDATE]["value"] for m in qwen]
    return SimpleNamespace(
        acc_trained=acc[0],
        acc_first=acc[1],
        logprob_first=logprob[1],
        logprob_random=logprob[-1],
        logprob_highest=logprob[4],
        ie=[m["candidates"][FLOOR_UPDATE]["value"] for m in smol],
        zero_acc=_word(sum(a == 0 for a in acc)),
        models=_word(len(acc)),
        qwen_acc_first=q_acc[1],
        qwen_acc_trained=q_acc[0],
        qwen_acc_after=max(q_acc[2:]),
        qwen_logprob=q_logprob,
        qwen_ie=(q_ie[0], q_ie[1]),
        qwen_logprob_rho=rho("interp_qwen", FLOOR_UPDATE, "spearman_with_logprob"),
        qwen_matrix_rho=rho("interp_qwen", MATRIX_ENTROPY, "spearman_with_logprob"),
    )


def family2() -> SimpleNamespace:
    """The second family: its accuracy, and IE's and the baselines' separations there."""
    models = record("family2")["models"]
    ie, baselines = candidates("family2"), list(BASELINES)
    widths = record("family2")["settings"]["widths"]
    right_way = [
        (n, width, v)
        for n in ie
        for width, v in zip(widths, summary(record("family2"), n)["separation_se"], strict=True)
        if v >= 0
    ]
    _holds(
        [(n, w) for n, w, _ in right_way] == [(n, min(widths)) for n in (KAPPA1, KAPPA1_JACKKNIFE)],
        "every IE candidate scores each initialisation above its model, but κ = 1 on y − x "
        "at the smallest width",
    )
    rhos = [
        rho("family2", n, k) for n in ie for k in ("spearman_with_acc", "spearman_with_logprob")
    ]
    _holds(max(rhos) < 0, "every IE candidate's Spearman is negative on the second family")
    _holds(
        min(separation("family2", n) for n in baselines) > 0, "the baselines separate the right way"
    )
    _holds(separation("family", FLOOR_UPDATE) > 0, "the first family's floor-update separates")
    return SimpleNamespace(
        right_way=[v for _, _, v in right_way],
        right_way_scaled=[v / seed_ratio(n) for n, _, v in right_way],
        acc_end=[m["acc"] for m in models if m["step"] == max(x["step"] for x in models)],
        ie_se=_extremes([separation("family2", n) for n in ie]),
        ie_scaled=_extremes([scaled("family2", n) for n in ie]),
        ie_rhos=_extremes(rhos),
        baselines_se=[separation("family2", n) for n in baselines],
        baselines_scaled=[scaled("family2", n) for n in baselines],
        baselines_rho=max(
            rho("family2", n, k)
            for n in baselines
            for k in ("spearman_with_acc", "spearman_with_logprob")
        ),
        parameters=[m["n_parameters"] / 1e6 for m in models],
    )


def notes() -> SimpleNamespace:
    """The departures: Qwen's accuracy order, the first family against its earlier file."""
    acc = {m["model"]: m["acc"] for m in record("qwen")["models"]}
    round1 = {m["model"]: m["acc"] for m in probe("probe_qwen")["models"]}
    _holds(sorted(acc, key=acc.get) == sorted(round1, key=round1.get), "round 1's order")
    first = max(acc, key=acc.get)
    family, earlier = record("family"), probe("baselines_family")
    difference = max(
        abs(m["candidates"][n][key] - e["candidates"][n][key])
        for m, e in zip(family["models"], earlier["models"], strict=True)
        for n in set(m["candidates"]) & set(e["candidates"])
        for key in ("value", "value_full_n", "value_quarter_n", "stderr")
    )
    _holds(difference < 1e-9, "the first family reproduces baselines_family.json")
    interval = summary(record("interp"), FLOOR_UPDATE)["spearman_ci95"]
    _holds(
        not min(interval) <= rho("interp", FLOOR_UPDATE) <= max(interval),
        "the interpolation's bootstrap interval misses its point value",
    )
    return SimpleNamespace(
        qwen_most_accurate=_called(first),
        qwen_acc_first=acc[first],
        qwen_acc_trained=acc["trained"],
        family_se=separation("family", FLOOR_UPDATE),
        family_scaled=scaled("family", FLOOR_UPDATE),
        family_rho=rho("family", FLOOR_UPDATE),
    )


def units() -> SimpleNamespace:
    """SmolLM2's ratios of seed spread to jackknife stderr, which scale the other series."""
    return SimpleNamespace(
        ratios=[seed_ratio(n) for n in candidates("selection")],
        baseline_ratios=[seed_ratio(n) for n in BASELINES],
    )


def _extremes(values: list[float]) -> tuple[float, float]:
    """(largest, smallest): a negative range as the prose reads it, −99.5 to −744."""
    return max(values), min(values)


def values() -> dict:
    return {
        "round2": SimpleNamespace(
            tables=tables(),
            units=units(),
            runs=runs(),
            rule=rule(),
            correction=correction(),
            default=default(),
            interpolations=interpolations(),
            family2=family2(),
            notes=notes(),
        )
    }
