"""The values method_notes prints (see studies/render/values/__init__.py).

docs/method-notes.md is mostly method (its equations' constants and settings are the template's
constants); the numbers it quotes as evidence come from the validity probes
(studies/validity/results/), the mine-paper benchmark (studies/benchmarks/results/) and the
reproduction study's SmolLM2 run (its block count).
"""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

from studies.render.values.common import (
    BENCHMARKS,
    FLOOR_UPDATE,
    FLOOR_UPDATE_JACKKNIFE,
    REPRODUCTION,
    changes,
    json_file,
    probe,
    summary,
)

#: git's record of the commits whose measurements the text names but no results file holds: the
#: projections per block (benchmarks/projections.py, run then), the rejected estimators' readings.
COMMITS = SimpleNamespace(projections="4591052", estimators="f49cc55")
#: The confirmation series of validity round 2 (studies/validity/results/round2_<name>.json).
ROUND2 = ("smollm2", "interp_smollm2", "family", "family2", "qwen", "interp_qwen")


def _miss(entry: dict) -> float:
    """How far a candidate's N/2 → N change exceeds its allowance, max(0.05 bit, 2% of |IE|)."""
    change = abs(entry["value_full_n"] - entry["value"])
    return change - max(0.05, 0.02 * abs(entry["value"]))


def largest_fall(record: dict) -> float:
    """The default's largest fall from N/2 to N over a probe's models (IE(N/2) − IE(N))."""
    return -max(changes(record, FLOOR_UPDATE), key=abs)


def _trained_change(record: dict, candidate: str) -> float:
    """IE(N) − IE(N/2) of a probe's trained model."""
    names = [m["model"] for m in record["models"]]
    return changes(record, candidate)[names.index("trained")]


def validity() -> SimpleNamespace:
    """The validity study's numbers the default protocol's section quotes."""
    selection, qwen, family = probe("probe_smollm2"), probe("probe_qwen"), probe("probe_family")
    chosen = summary(selection, FLOOR_UPDATE)
    misses = [
        _miss(m["candidates"][FLOOR_UPDATE_JACKKNIFE])
        for name in ROUND2
        for m in probe(f"round2_{name}")["models"]
    ]
    return SimpleNamespace(
        separation=chosen["trained_minus_random_bits"],
        noise_rho=chosen["spearman_with_acc"],
        family_rho=summary(family, FLOOR_UPDATE)["spearman_with_acc"],
        # the largest fall per doubling of N, any model, and the trained model's
        falls=[largest_fall(r) for r in (selection, qwen)],
        trained_falls=[-_trained_change(r, FLOOR_UPDATE) for r in (selection, qwen)],
        largest_miss=max(misses),
    )


def _markdown_rows(text: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table in `text`, as {header: cell}."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
            for line in lines[2:]]  # fmt: skip


def mine_paper() -> SimpleNamespace:
    """mine-paper after its full step count (mine_paper_10000_h200.txt): what it reads."""
    text = (BENCHMARKS / "mine_paper_10000_h200.txt").read_text(encoding="utf-8")
    rows = _markdown_rows(text)
    (steps,) = re.findall(r"mine-paper steps=(\d+)", text)
    return SimpleNamespace(
        truth=[float(r["true bits"]) for r in rows],
        estimate=[float(r["estimate"]) for r in rows],
        steps=int(steps),
    )


def blocks() -> SimpleNamespace:
    """SmolLM2's block count (the reproduction run's sidecar) and √L, the most a jackknife that
    ignores the blocks' correlation can understate IE's error by."""
    (path,) = sorted((REPRODUCTION / "runs" / "smollm2").glob("emergence_*.json"))
    layers = json_file(path)["tasks"]["emergence_icl_country"]["result"]["layers"]
    return SimpleNamespace(smollm2=len(layers), sqrt_smollm2=math.sqrt(len(layers)))


def values() -> dict:
    """The template's namespace."""
    return {
        "validity": validity(),
        "mine_paper": mine_paper(),
        "blocks": blocks(),
        "commits": COMMITS,
    }
