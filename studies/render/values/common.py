"""The results files the rendered documents read, and the lookups several of them share."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from studies.validity.tables import load

ROOT = Path(__file__).resolve().parents[3]
VALIDITY = ROOT / "studies" / "validity" / "results"
REPRODUCTION = ROOT / "studies" / "reproduction" / "results"
BENCHMARKS = ROOT / "studies" / "benchmarks" / "results"
UNCERTAINTY = ROOT / "studies" / "uncertainty" / "results"

FLOOR_UPDATE = "gaussian-floor(kappa=0.25) on y-x"
PSI_UPDATE = "gaussian-floor(kappa=0.25) on y-x, psi"
FLOOR_UPDATE_JACKKNIFE = "gaussian-floor(kappa=0.25,bias=jackknife) on y-x"


@cache
def probe(name: str) -> dict:
    """A validity probe's record, studies/validity/results/<name>.json."""
    return load(VALIDITY / f"{name}.json")


def seeds(*names: str) -> dict:
    """The seed-spread entries of several probe records, as one record."""
    return {"seed_spread": [e for n in names for e in probe(n)["seed_spread"]]}


def model(record: dict, name: str) -> dict:
    """The model row called `name` of a probe record."""
    (row,) = [m for m in record["models"] if m["model"] == name]
    return row


def summary(record: dict, candidate: str) -> dict:
    """A probe record's summary row of `candidate`."""
    (row,) = [s for s in record["summary"] if s["candidate"] == candidate]
    return row


def changes(record: dict, candidate: str) -> list[float]:
    """IE(N) − IE(N/2) of every model (the probe's value at N/2, value_full_n at N)."""
    return [
        m["candidates"][candidate]["value_full_n"] - m["candidates"][candidate]["value"]
        for m in record["models"]
    ]


@cache
def json_file(path: Path) -> dict:
    """Any committed JSON results file."""
    return json.loads(path.read_text(encoding="utf-8"))


def lm_eval_results(run: str) -> dict:
    """The `results` of a committed reproduction run's lm-eval output."""
    (path,) = sorted((REPRODUCTION / "runs" / run).glob("**/results_*.json"))
    return json_file(path)["results"]


def claim_holds(document: str, condition: bool, claim: str) -> None:
    """Stop the rendering of `document` when its results no longer bear out a claim its prose
    makes in words (an order, "every", "none")."""
    if not condition:
        raise ValueError(f"{document}: the results no longer say {claim!r}")
