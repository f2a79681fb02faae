"""The values of docs/validity.md's intrinsic-baselines part (templates/validity/baselines.md.j2).

Everything comes from the baselines' probe files (studies/validity/results/baselines_*.json),
their seed spread (baselines_seeds_smollm2.json), the projection check, the two lm-eval runs of
baselines_harness/ and, for the comparison with round 1, probe_smollm2.json and probe_qwen.json.
Separations are in seed units: measured on SmolLM2, elsewhere the jackknife separation scaled by
SmolLM2's ratio of the two (studies.validity.tables). A claim the prose states in words is
checked here: `_holds` stops the rendering when the results no longer bear it out.
"""

from __future__ import annotations

import statistics
from functools import cache
from types import SimpleNamespace

from studies.render.formatting import num
from studies.render.values.common import (
    FLOOR_UPDATE,
    PSI_UPDATE,
    VALIDITY,
    claim_holds,
    json_file,
    model,
    probe,
    summary,
)
from studies.validity.tables import (
    allowance,
    converges,
    median_seconds,
    row_gates,
    seed_cvs,
    seed_ratios,
    table,
)

#: The three series of the baselines round and their files.
SERIES = {"smollm2": "baselines_smollm2", "family": "baselines_family", "qwen": "baselines_qwen"}
SEEDS = "baselines_seeds_smollm2"
PROJECTION = "baselines_projection_smollm2"
ERANK, MATRIX, DIFF = "erank on y", "matrix entropy on y", "Diff-eRank"
#: The cheaper metrics, in the reading table's order.
BASELINES = (ERANK, DIFF, MATRIX)
SHOWN = {ERANK: "erank", DIFF: "Diff-eRank", MATRIX: "matrix entropy"}
LABELS = {"smollm2": "SmolLM2", "family": "family", "qwen": "Qwen"}
#: A family checkpoint is on the accuracy plateau when it is past step 0 and below this.
PLATEAU_BELOW = 0.5
#: Accuracy above which the text reads a family checkpoint as past the plateau.
PAST_PLATEAU = 0.75


def _holds(condition: bool, claim: str) -> None:
    claim_holds("docs/validity.md, baselines", condition, claim)


def record(series: str) -> dict:
    """The probe record of a baselines series."""
    return probe(SERIES[series])


def spread(series: str) -> dict | None:
    """A series' seed spread (SmolLM2 only)."""
    return probe(SEEDS) if series == "smollm2" else None


@cache
def ratios() -> dict[str, float]:
    """Per metric: SmolLM2's jackknife separation over its seed-unit one."""
    return seed_ratios(record("smollm2"), spread("smollm2"))


@cache
def gate_table(series: str) -> tuple[list[str], dict[str, tuple]]:
    """A series' gate table (`table`'s lines) and ranking, the separation in seed units."""
    return table(record(series), spread(series), "", ratios=ratios())


def sep(series: str, name: str) -> SimpleNamespace:
    """A metric's smallest separation: seed units (measured or scaled), the jackknife se."""
    s = row_gates(record(series), spread(series), name, ratios=ratios())[1]
    return SimpleNamespace(seed=s.value, scaled=s.scaled, se=s.jackknife, passes=s.passes)


def rho(series: str, name: str, key: str = "spearman_with_acc") -> float:
    """A metric's Spearman coefficient read in its direction (as the tables print it)."""
    s = summary(record(series), name)
    return s.get("direction", 1) * s[key]


def measured(series: str, name: str) -> int:
    """How many gates a metric's row measures (its "/n")."""
    g = row_gates(record(series), spread(series), name, ratios=ratios())[0]
    return sum(v is not None for v in g.values())


def entry(series: str, name: str, model_name: str) -> dict:
    """One model's estimate of a metric."""
    return model(record(series), model_name)["candidates"][name]


def tables() -> SimpleNamespace:
    """The three gate tables (header and rows)."""
    return SimpleNamespace(**{s: "\n".join(gate_table(s)[0][2:]) for s in SERIES})


def _pair(m: dict) -> str:
    """A model's accuracy and logprob_correct as the text pairs them: 0.657 / −0.545."""
    return f"{num(m['acc'], 3)} / {num(m['logprob_correct'], 3)}"


def ability() -> SimpleNamespace:
    """Accuracy and logprob_correct of the pretrained series, and the family's plateau."""
    pairs = {s: [_pair(m) for m in record(s)["models"]] for s in ("smollm2", "qwen")}
    fam = record("family")["models"]
    plateau_steps = (200, 400)
    plateau = [m for m in fam if m["step"] in plateau_steps and m["acc"] < PLATEAU_BELOW]
    left = [m["model"] for m in fam if m["step"] in plateau_steps and m not in plateau]
    initial = [m["logprob_correct"] for m in fam if m["step"] == 0]
    past = [m["logprob_correct"] for m in fam if m["acc"] > PAST_PLATEAU]
    _holds(
        max(m["logprob_correct"] for m in plateau) < min(initial),
        "on the plateau logprob_correct is below its initial value",
    )
    w32 = next(m for m in fam if m["width"] == 32 and m["step"] == 800)
    return SimpleNamespace(
        smollm2_trained=pairs["smollm2"][0],
        smollm2_copies=", ".join(pairs["smollm2"][1:-1]),
        smollm2_random=pairs["smollm2"][-1],
        qwen_trained=pairs["qwen"][0],
        qwen_copies=", ".join(pairs["qwen"][1:-1]),
        qwen_random=pairs["qwen"][-1],
        plateau_acc=[m["acc"] for m in plateau],
        plateau_left=", ".join(left),
        plateau_logprob=[m["logprob_correct"] for m in plateau],
        initial_logprob=initial,
        past_logprob=past,
        w32_step800=w32,
    )


def beats(series: str, a: str, b: str) -> bool:
    """The planned reading: `a` beats `b` if it passes more gates, ties to the larger ρ."""
    ranking = gate_table(series)[1]
    if ranking[a][0] != ranking[b][0]:
        return ranking[a][0] > ranking[b][0]
    return rho(series, a) > rho(series, b)


def _cell(series: str, name: str, tied: bool, beats_ie: bool) -> str:
    """A reading-table cell: gates passed/measured, ρ where a tie needs it, "(beats IE)"."""
    passed = gate_table(series)[1][name][0]
    text = f"{passed}/{measured(series, name)}"
    if tied:
        text += f", ρ {num(rho(series, name), 2)}"
    return text + (" (beats IE)" if beats_ie else "")


def reading() -> SimpleNamespace:
    """The planned reading on each series and over the three, as a table and in numbers."""
    lines = [
        "| series | IE `floor-update` | erank | Diff-eRank | matrix entropy "
        "| IE beats every cheaper metric? |",
        "|---|---|---|---|---|---|",
    ]
    wins = {b: 0 for b in BASELINES}
    beaten_by = {}
    for series, label in LABELS.items():
        ranking = gate_table(series)[1]
        tied = [b for b in BASELINES if ranking[b][0] == ranking[FLOOR_UPDATE][0]]
        beaten_by[series] = [b for b in BASELINES if not beats(series, FLOOR_UPDATE, b)]
        for b in BASELINES:
            wins[b] += beats(series, FLOOR_UPDATE, b)
        cells = [_cell(series, FLOOR_UPDATE, bool(tied), False)]
        cells += [_cell(series, b, b in tied, b in beaten_by[series]) for b in BASELINES]
        if beaten_by[series]:
            answer = "no"
        elif tied:
            answer = "yes (" + " and ".join(SHOWN[b] for b in tied) + " on the tie-break)"
        else:
            answer = "yes"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {answer} |")
    totals = {n: sum(gate_table(s)[1][n][0] for s in SERIES) for n in (FLOOR_UPDATE, *BASELINES)}
    gates_total = {n: sum(measured(s, n) for s in SERIES) for n in totals}
    _holds(len(set(gates_total.values())) == 1, "every metric is held to as many gates")
    total = gates_total[FLOOR_UPDATE]
    lines.append(
        "| gates over the three series | "
        + " | ".join(f"{totals[n]}/{total}" for n in totals)
        + " | |"
    )
    _holds(
        [s for s, b in beaten_by.items() if not b] == ["smollm2"],
        "IE beats all three only on the selection series",
    )
    _holds(
        set(beaten_by["family"]) == {DIFF, ERANK} and beaten_by["qwen"] == [MATRIX],
        "Diff-eRank and erank beat IE on the family, matrix entropy on Qwen",
    )
    _holds(all(w == 2 for w in wins.values()), "IE wins two series of three against each")
    _holds(totals[MATRIX] == totals[FLOOR_UPDATE], "matrix entropy passes as many gates in all")
    return SimpleNamespace(
        table="\n".join(lines),
        ie_total=totals[FLOOR_UPDATE],
        matrix_total=totals[MATRIX],
        gates_total=total,
    )


def matrix() -> SimpleNamespace:
    """Matrix entropy: its separations, values, coefficients, drift, seed CV and ceiling."""
    pretrained = ("smollm2", "qwen")
    for s in pretrained:
        _holds(sep(s, MATRIX).passes, "matrix entropy separates every pretrained model")
    changes = [
        abs(m["candidates"][MATRIX]["value_full_n"] - m["candidates"][MATRIX]["value"])
        for s in pretrained
        for m in record(s)["models"]
    ]
    cv = seed_cvs(probe(SEEDS))[MATRIX]
    gap = summary(record("qwen"), MATRIX)["min_ceiling_gap"]
    return SimpleNamespace(
        seeds=[sep(s, MATRIX).seed for s in pretrained],
        jackknife=[sep(s, MATRIX).se for s in pretrained],
        random=[entry(s, MATRIX, "random init")["value"] for s in pretrained],
        trained=[entry(s, MATRIX, "trained")["value"] for s in pretrained],
        rhos=[rho(s, MATRIX) for s in pretrained],
        change=max(changes),
        family=sep("family", MATRIX),
        family_rho=rho("family", MATRIX),
        cv=cv,
        qwen_gap=gap,
        qwen_short=1 - gap,
    )


def erank() -> SimpleNamespace:
    """erank and Diff-eRank: SmolLM2's values, the separations, Diff-eRank's drift in N."""
    trained, random = (entry("smollm2", ERANK, m)["value"] for m in ("trained", "random init"))
    _holds(trained > random, "SmolLM2's erank is above its random init's")
    _holds(
        num(rho("smollm2", ERANK), 2) == num(rho("smollm2", DIFF), 2),
        "erank and Diff-eRank have the same ρ on SmolLM2",
    )
    diff = entry("smollm2", DIFF, "trained")
    moves = {
        m["model"]: (
            m["candidates"][DIFF]["value_full_n"] - m["candidates"][DIFF]["value"],
            allowance(m["candidates"][DIFF]),
            converges(m["candidates"][DIFF]),
        )
        for m in record("smollm2")["models"]
    }
    near = ("trained", "weight noise 0.01", "weight noise 0.03")
    _holds(not any(moves[m][2] for m in near), "the near-intact copies miss the allowance")
    _holds(not moves["weight noise 0.1"][2], "so does the noise-0.1 copy")
    _holds(moves["weight noise 0.3"][2], "the noise-0.3 copy is within its allowance")
    _holds(
        max(abs(v[0]) for v in moves.values()) == abs(moves["weight noise 0.3"][0]),
        "the table's largest change is the noise-0.3 copy's",
    )
    return SimpleNamespace(
        trained=trained,
        random=random,
        diff=(diff["value"], diff["stderr"]),
        rho=rho("smollm2", ERANK),
        family=[sep("family", n).seed for n in (ERANK, DIFF)],
        family_se=[sep("family", n).se for n in (ERANK, DIFF)],
        qwen=[sep("qwen", n).seed for n in (ERANK, DIFF)],
        qwen_se=[sep("qwen", n).se for n in (ERANK, DIFF)],
        near=[abs(moves[m][0]) for m in near],
        near_allowance=moves["trained"][1],
        noise1=(abs(moves["weight noise 0.1"][0]), moves["weight noise 0.1"][1]),
        noise3=(abs(moves["weight noise 0.3"][0]), moves["weight noise 0.3"][1]),
    )


def ie() -> SimpleNamespace:
    """IE's coefficients, its drift in N on the pretrained series, the other coefficients."""
    logprob = "spearman_with_logprob"
    metrics = [s["candidate"] for s in record("smollm2")["summary"]]
    for key in ("spearman_with_acc", logprob):
        _holds(
            rho("smollm2", FLOOR_UPDATE, key) >= max(rho("smollm2", n, key) for n in metrics),
            "IE has the largest Spearman with both measures on SmolLM2",
        )
    noise3 = [
        m["model"]
        for m in record("smollm2")["models"]
        if not converges(m["candidates"][FLOOR_UPDATE])
    ]
    _holds(noise3 == ["weight noise 0.3"], "the noise-0.3 copy is the model that fails")
    moves = {(s, n): rho(s, n, logprob) - rho(s, n) for s in SERIES for n in metrics}
    exceptions = [("family", ERANK), ("family", MATRIX)]
    others = [abs(d) for k, d in moves.items() if k not in exceptions]
    _holds(
        max(others) < min(abs(moves[k]) for k in exceptions),
        "erank and matrix entropy on the family move the most",
    )
    return SimpleNamespace(
        rho=rho("smollm2", FLOOR_UPDATE),
        rho_logprob=rho("smollm2", FLOOR_UPDATE, logprob),
        qwen_matrix=rho("qwen", MATRIX),
        qwen_ie=rho("qwen", FLOOR_UPDATE),
        falls=[
            summary(record(s), FLOOR_UPDATE)["max_change_half_n_to_n"] for s in ("smollm2", "qwen")
        ],
        within=max(others),
        erank_family=(rho("family", ERANK), rho("family", ERANK, logprob)),
        matrix_family=(rho("family", MATRIX), rho("family", MATRIX, logprob)),
    )


def cost() -> SimpleNamespace:
    """Median estimation seconds per model: the spectral metrics against IE."""
    return SimpleNamespace(
        spectral=[round(median_seconds(record(s), n), 1) for s in SERIES for n in BASELINES],
        ie=[round(median_seconds(record(s), FLOOR_UPDATE), 1) for s in SERIES],
    )


def projection() -> SimpleNamespace:
    """The projection check: SmolLM2 and its control at the full width against k = 64."""
    full = probe(PROJECTION)

    def at(rec: dict, name: str, model_name: str) -> float:
        return model(rec, model_name)["candidates"][name]["value"]

    k64 = record("smollm2")
    pairs = {
        (n, m): (at(k64, n, m), at(full, n, m))
        for n in (ERANK, MATRIX, DIFF)
        for m in ("trained", "random init")
    }
    for n in (ERANK, MATRIX):
        order = [at(r, n, "trained") > at(r, n, "random init") for r in (k64, full)]
        _holds(order[0] == order[1], "the projection changes no ranking")
    _holds(
        (pairs[(DIFF, "trained")][0] < 0) == (pairs[(DIFF, "trained")][1] < 0),
        "Diff-eRank keeps its sign at the full width",
    )
    diff_se = abs(summary(full, DIFF)["min_separation_se"])
    return SimpleNamespace(
        erank_trained=pairs[(ERANK, "trained")],
        erank_random=pairs[(ERANK, "random init")],
        diff=pairs[(DIFF, "trained")],
        diff_se=diff_se,
        diff_scaled=diff_se / ratios()[DIFF],
        matrix_trained=pairs[(MATRIX, "trained")],
        matrix_random=pairs[(MATRIX, "random init")],
        erank_lower=[1 - a / b for a, b in (pairs[(ERANK, m)] for m in ("trained", "random init"))],
        seconds=[m["candidates"][ERANK]["seconds_estimation"] for m in full["models"]],
    )


def _harness(run: str) -> dict:
    """The lm-eval results file of one baselines_harness run."""
    (path,) = sorted((VALIDITY / "baselines_harness" / run).glob("results_*.json"))
    return json_file(path)


def harness() -> SimpleNamespace:
    """The two lm-eval runs with ie_control=random: the metrics as lm-eval keys."""
    out = {}
    for run in ("smollm2", "qwen05"):
        data = _harness(run)
        (task,) = data["results"].values()
        out[run] = SimpleNamespace(
            **{k.removesuffix(",none"): v for k, v in task.items() if k.endswith(",none")},
            seconds=float(data["total_evaluation_time_seconds"]),
        )
    return SimpleNamespace(**out)


def departures() -> SimpleNamespace:
    """The family retrained, IE rows against the committed files, the psi and Diff-eRank notes."""
    fam = record("family")["models"]
    committed = probe("probe_family")
    plateau = [m["acc"] for m in fam if m["step"] > 0 and m["acc"] < PLATEAU_BELOW]
    w32 = [
        next(m["acc"] for m in r if m["model"] == "width 32 step 800")
        for r in (fam, committed["models"])
    ]
    differences = []
    for series, old in (("smollm2", "probe_smollm2"), ("qwen", "probe_qwen")):
        for name in (FLOOR_UPDATE, PSI_UPDATE):
            _holds(
                num(rho(series, name), 2) == num(summary(probe(old), name)["spearman_with_acc"], 2),
                "the rerun's ρ is the committed one",
            )
            pairs = zip(record(series)["models"], probe(old)["models"], strict=True)
            differences += [
                abs(a["candidates"][name]["value"] - b["candidates"][name]["value"])
                for a, b in pairs
            ]
    committed_sep = summary(committed, FLOOR_UPDATE)["min_separation_se"] / ratios()[FLOOR_UPDATE]
    diff_seed = next(e for e in probe(SEEDS)["seed_spread"] if e["candidate"] == DIFF)
    return SimpleNamespace(
        plateau=statistics.mean(plateau),
        w32=w32,
        family=SimpleNamespace(rho=rho("family", FLOOR_UPDATE), sep=sep("family", FLOOR_UPDATE)),
        committed=SimpleNamespace(
            rho=summary(committed, FLOOR_UPDATE)["spearman_with_acc"], sep=committed_sep
        ),
        largest_difference=max(differences),
        rhos=[rho(s, FLOOR_UPDATE) for s in ("smollm2", "qwen")],
        psi_passed=gate_table("smollm2")[1][PSI_UPDATE][0],
        psi_gates=measured("smollm2", PSI_UPDATE),
        diff_cv=diff_seed["trained"]["cv"],
    )


def values() -> dict:
    return {
        "baselines": SimpleNamespace(
            tables=tables(),
            ability=ability(),
            reading=reading(),
            matrix=matrix(),
            erank=erank(),
            ie=ie(),
            cost=cost(),
            projection=projection(),
            harness=harness(),
            departures=departures(),
        )
    }
