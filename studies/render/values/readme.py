"""The values the README prints (templates/README.md.j2).

The example output is the README's own command, run by `make readme-example`
(studies/readme/run.sh: the main command, the same with its control, and the report of the
second) into studies/readme/results/; the study figures come from the validity and
reproduction results; the meaning section from the validity study's files.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

from studies.render.values.common import (
    FLOOR_UPDATE_JACKKNIFE,
    REPRODUCTION,
    ROOT,
    claim_holds,
    json_file,
    model,
    probe,
    summary,
)
from studies.render.values.validity_baselines import values as baselines_values
from studies.validity.tables import seed_separations

README_RUNS = ROOT / "studies" / "readme" / "results"
#: When the selection series' last results landed (the seed spread) and when the convergence
#: gate's base (each model against its own |IE|) was first written down: `git log` of the two
#: commits, which the validity study's "Order of events" cites.
SELECTION_RESULTS = ("4c98d17", "2026-12-02T02:15:28")
GATE_BASE_FIXED = ("fe4eb9e", "2026-12-03T09:48:20")
TASKS = ("emergence_icl_country", "emergence_icl_animal", "emergence_icl_color")
#: The default protocol as the validity study named it.
DEFAULT = FLOOR_UPDATE_JACKKNIFE


def _holds(condition: bool, claim: str) -> None:
    claim_holds("README.md", condition, claim)


def _files(run: str, pattern: str) -> Path:
    (path,) = sorted((README_RUNS / run).glob(f"**/{pattern}"))
    return path


def _printed(run: str) -> list[str]:
    """What the command printed on stdout (lm-eval's table, then the plugin's evidence)."""
    return (README_RUNS / f"{run}.txt").read_text(encoding="utf-8").splitlines()


def _block(lines: list[str], first: str, last: str) -> str:
    """The lines from the one starting with `first` to the next starting with `last`."""
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(last))
    return "\n".join(lines[start : end + 1])


def _group_table(lines: list[str]) -> str:
    """lm-eval's last table (the group's rows), as printed."""
    start = max(i for i, line in enumerate(lines) if line.lstrip("|").lstrip().startswith("Groups"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def example() -> SimpleNamespace:
    """The main command's output and the numbers the README reads off it."""
    lines = _printed("main")
    sidecar = json_file(_files("main", "emergence_*.json"))
    country = sidecar["tasks"]["emergence_icl_country"]
    result = country["result"]
    seconds = [sidecar["tasks"][t]["seconds_forward"] for t in TASKS]
    estimation = [sidecar["tasks"][t]["seconds_estimation"] for t in TASKS]
    return SimpleNamespace(
        group_table=_group_table(lines),
        evidence=_block(lines, "emergence evidence", "Second moments held at once"),
        ie=result["ie_bits"],
        stderr=result["ie_stderr_bits"],
        stderr_documents=result["ie_stderr_documents_bits"],
        stderr_projections=result["ie_stderr_projections_bits"],
        dof=result["ie_stderr_dof"],
        projections=result["projections"],
        n=country["n_docs"],
        forward_seconds=sum(seconds),
        estimation_seconds=sum(estimation),
    )


def control() -> SimpleNamespace:
    """The same command with `ie_control=random`: the control's numbers and Diff-eRank."""
    results = json_file(_files("control", "results_*.json"))["results"]
    group = results["emergence_icl"]
    return SimpleNamespace(
        vs_random=group["emergence_vs_random,none"],
        vs_random_stderr=group["emergence_vs_random_stderr,none"],
        diff_erank=group["diff_erank,none"],
        erank=group["erank,none"],
        erank_random=group["erank_random,none"],
        figure="studies/readme/results/report/layers_emergence_icl_country.png",
    )


def leaderboard() -> SimpleNamespace:
    """The reproduction study's leaderboard of the emergence_icl group (its report's CSV)."""
    with (REPRODUCTION / "report" / "leaderboard.csv").open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["task"] == "emergence_icl"]
    _holds(len(rows) >= 2, "the leaderboard ranks several models on emergence_icl")
    return SimpleNamespace(
        rows=[
            SimpleNamespace(
                rank=r["rank"],
                model=r["model"],
                ie=(float(r["emergence"]), float(r["emergence_stderr"])),
                acc=float(r["acc"]),
                n=int(r["n"]),
            )
            for r in rows
        ]
    )


def meaning() -> SimpleNamespace:
    """What the validity study found for the default (`floor-update` with `bias=jackknife`, the
    round-2 candidate), in the numbers the README's short verdict quotes."""
    selection = probe("round2_smollm2")
    trained, random_init = (
        model(selection, name)["candidates"][DEFAULT]["value"]
        for name in ("trained", "random init")
    )
    seed_units = seed_separations(selection, probe("seeds_round2_smollm2"))[DEFAULT]
    qwen = probe("round2_qwen")
    on_qwen = summary(qwen, DEFAULT)
    by_ie = sorted(qwen["models"], key=lambda m: -m["candidates"][DEFAULT]["value"])
    most_accurate = max(qwen["models"], key=lambda m: m["acc"])
    top3 = by_ie[:3]
    _holds(
        most_accurate is top3[2] and top3[0]["acc"] < most_accurate["acc"],
        "on Qwen the default puts the most accurate model third of the top three",
    )
    family = probe("round2_family")
    reading = baselines_values()["baselines"].reading
    _holds(reading.matrix_total >= reading.ie_total, "matrix entropy passes as many gates as IE")
    start, end = (datetime.fromisoformat(t) for _, t in (SELECTION_RESULTS, GATE_BASE_FIXED))
    return SimpleNamespace(
        trained_gap=trained - random_init,
        seed_units=seed_units,
        qwen_rho_acc=on_qwen["spearman_with_acc"],
        qwen_n=qwen["settings"]["n"] // 2,
        qwen_top3=[
            SimpleNamespace(
                name=m["model"].replace("weight noise ", "noise-"),
                ie=m["candidates"][DEFAULT]["value"],
                acc=m["acc"],
            )
            for m in top3
        ],
        family_rho=summary(family, DEFAULT)["spearman_with_acc"],
        family_models=len(family["models"]),
        matrix_gates=reading.matrix_total,
        gates=reading.gates_total,
        base_hours=(end - start).total_seconds() / 3600,
        base_commits=(SELECTION_RESULTS[0], GATE_BASE_FIXED[0]),
    )


def values() -> dict:
    return {
        "readme": SimpleNamespace(
            example=example(), control=control(), leaderboard=leaderboard(), meaning=meaning()
        )
    }
