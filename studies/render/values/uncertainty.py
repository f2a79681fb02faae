"""The values of docs/uncertainty.md: the replication of every ± and the default's N/2 check
(studies/uncertainty/results/replication.json and n_stability.json, `make uncertainty`)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

from studies.render.values.common import (
    FLOOR_UPDATE_JACKKNIFE,
    UNCERTAINTY,
    json_file,
    model,
    probe,
)

#: The models of the replication, as the study names them and as the document does.
MODELS = {
    "smollm2": "SmolLM2-135M-Instruct",
    "qwen": "Qwen2.5-Coder-0.5B-Instruct",
    "family": "family width 128, step 3,000",
}
METRICS = {"emergence": "IE", "erank": "erank", "matrix_entropy": "matrix entropy"}
SERIES = {
    "smollm2": "SmolLM2-135M-Instruct",
    "qwen": "Qwen2.5-Coder-0.5B-Instruct",
    "family": "the first trained family",
    "family2": "the second trained family",
}


def _within(ratio: float, band: list[float]) -> bool:
    return band[0] <= ratio <= band[1]


def replication() -> SimpleNamespace:
    """Per model and metric the whole repeats' sd against the mean ±, the single sources'
    ratios, the pooled ratios and every gate with its verdict."""
    data = json_file(UNCERTAINTY / "replication.json")
    verdict = data["verdict"]
    rows = []
    for key, label in MODELS.items():
        m = data["models"][key]
        for metric, name in METRICS.items():
            if metric not in m["whole"]:
                continue  # runs recovered from a log carry IE only
            whole = m["whole"][metric]
            gate = verdict["per_model_whole"][metric][key]
            rows.append(
                SimpleNamespace(
                    model=label,
                    metric=name,
                    mean=whole["mean"],
                    sd=whole["sd"],
                    stderr=whole["mean_stderr"],
                    ratio=whole["ratio"],
                    holds=gate["holds"],
                    lists=m["lists"][metric]["ratio"],
                    projections=m["projections"][metric]["ratio"],
                )
            )
    pooled = [
        SimpleNamespace(
            metric=name,
            whole=verdict["pooled_whole"][metric]["ratio"],
            whole_holds=verdict["pooled_whole"][metric]["holds"],
            lists=verdict["one_source"][metric]["lists"]["ratio"],
            lists_holds=verdict["one_source"][metric]["lists"]["holds"],
            projections=verdict["one_source"][metric]["projections"]["ratio"],
            projections_holds=verdict["one_source"][metric]["projections"]["holds"],
            models=", ".join(MODELS[k] for k in data["pooled"]["whole"][metric]["models"]),
            n_models=len(data["pooled"]["whole"][metric]["models"]),
        )
        for metric, name in METRICS.items()
    ]
    band = verdict["pooled_whole"]["emergence"]["band"]
    model_band = verdict["per_model_whole"]["emergence"]["smollm2"]["band"]
    one_source_max = verdict["one_source"]["emergence"]["lists"]["max"]
    misses = [r for r in rows if not r.holds]
    source_misses = [
        (p.metric, source, value)
        for p in pooled
        for source, value, holds in (
            ("lists", p.lists, p.lists_holds),
            ("projections", p.projections, p.projections_holds),
        )
        if not holds
    ]
    runs = sum(len(m["runs"]) for m in data["models"].values())
    recovered = " and ".join(
        MODELS[k] for k, m in data["models"].items() if any("recovered" in r for r in m["runs"])
    )
    return SimpleNamespace(
        rows=rows,
        pooled=pooled,
        band=band,
        model_band=model_band,
        one_source_max=one_source_max,
        misses=misses,
        pooled_misses=[p for p in pooled if not p.whole_holds],
        source_misses=source_misses,
        n_runs=runs,
        sources_below_one=all(p.lists < 1 and p.projections < 1 for p in pooled),
        ie_models=len(data["pooled"]["whole"]["emergence"]["models"]),
        baseline_models=min(
            len(data["pooled"]["whole"][m]["models"]) for m in ("erank", "matrix_entropy")
        ),
        recovered=recovered,
        hours=data["seconds"] / 3600,
        ie_rows=[r for r in rows if r.metric == "IE"],
    )


#: The models the N/2 check plans per series (the study's `pretrained_checks` and
#: `family_checks`): trained, 4 noise copies, 4 interpolations and the random init; 3 widths at
#: 6 checkpoints.
PLANNED = {"smollm2": 10, "qwen": 10, "family": 18, "family2": 18}


def n_stability() -> SimpleNamespace:
    """Per series every model's change from N/2 to N against its bound, read from the study's
    journal (complete or not: a series it did not finish says how many of its models ran)."""
    rows = [json.loads(line) for line in (UNCERTAINTY / "n_stability_runs.jsonl").open()]
    series = []
    for key, label in SERIES.items():
        mine = [SimpleNamespace(**r) for r in rows if r["model"].split()[0] == key]
        series.append(
            SimpleNamespace(
                name=label,
                rows=mine,
                planned=PLANNED[key],
                holding=sum(r.holds for r in mine),
            )
        )
    every = [r for s in series for r in s.rows]
    noise3 = next((r for r in every if r.model == "smollm2 weight noise 0.3"), None)
    noisy = model(probe("round2_smollm2"), "weight noise 0.3")
    round2 = noisy["candidates"][FLOOR_UPDATE_JACKKNIFE]
    return SimpleNamespace(
        series=series,
        n_models=len(every),
        n_planned=sum(PLANNED.values()),
        holding=sum(r.holds for r in every),
        misses=[r for r in every if not r.holds],
        coarse=[r for r in every if r.stderr_too_coarse],
        noise3=noise3,
        round2_noise3=round2["value_full_n"] - round2["value"],
        largest_se=max(r.change_stderr for r in every),
        n=max(r.n for r in every),
    )


def values() -> dict:
    out = {"replication": replication(), "stability": n_stability()}
    assert all(math.isfinite(r.ratio) for r in out["replication"].rows)
    return out
