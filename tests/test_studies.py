"""The studies (`studies/`, not installed) are code too: each step runs here on a tiny model or
on the committed files, in seconds, and gives the numbers it should."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

import pytest

from studies.family import build_family_model, synthetic_list_data, train_checkpoints

ROOT = Path(__file__).resolve().parents[1]
FLOOR = "gaussian-floor(kappa=0.25) on y-x"


@pytest.fixture(scope="module")
def tiny_series():
    """A tiny family: width 16, one block, at steps 0 and 20, on synthetic lists."""
    train = synthetic_list_data(400, 3, n_categories=3, per_category=12, seed=0)
    test = synthetic_list_data(256, 3, n_categories=3, per_category=12, seed=1)
    model = build_family_model(train.vocab_size, 16, 2, seed=0)
    return test, dict(train_checkpoints(model, train, [0, 20], seed=0))


def test_the_validity_probe_measures_a_series_and_its_gates(tiny_series):
    from lm_eval_emergence.settings import CaptureSettings
    from studies.validity.probe import add_diff_erank, probe_model, summarise
    from studies.validity.tables import gates

    test, checkpoints = tiny_series
    args = argparse.Namespace(
        candidates=[FLOOR], baselines=True, seed=0, bootstrap=20, projection_dim=8
    )
    settings = CaptureSettings(projection_dim=8, bos=None)
    rows = [
        probe_model(f"step {s}", m, None, test.ids, test.correct_next, settings, args)
        for s, m in checkpoints.items()
    ]
    add_diff_erank(rows, {r["model"]: "step 0" for r in rows})
    entry = rows[1]["candidates"][FLOOR]
    assert entry["n"] == 128 and {"value_quarter_n", "value_full_n"} <= set(entry)
    assert rows[0]["candidates"]["Diff-eRank"]["value"] == pytest.approx(0.0, abs=1e-12)
    summary = summarise(rows, [("step 20", "step 0")], args)
    floor = next(s for s in summary if s["candidate"] == FLOOR)
    difference = entry["value"] - rows[0]["candidates"][FLOOR]["value"]
    assert floor["trained_minus_random"] == [pytest.approx(difference)]
    verdict = gates(floor, rows, cv=None)
    assert set(verdict) >= {"separation", "convergence"}


def test_the_uncertainty_study_reads_replicates_as_the_issue_defines():
    from studies.uncertainty.study import pooled, ratio_table, verdict

    def runs(values: list[float], stderr: float, kind: str) -> list[dict]:
        return [
            {"kind": kind, "emergence": v, "emergence_stderr": stderr, "erank": v,
             "erank_stderr": stderr, "matrix_entropy": v, "matrix_entropy_stderr": stderr}
            for v in values
        ]  # fmt: skip

    values = [1.0, 1.2, 0.9, 1.1, 1.05, 0.95, 1.15, 0.85]
    model = runs(values, 0.1, "whole") + runs([1, 1.1, 1, 1.1], 0.1, "lists")
    model += runs([1, 1.3, 0.7, 1], 0.1, "projections")
    table = ratio_table(model, ("whole",))
    assert table["emergence"]["ratio"] == pytest.approx(statistics.stdev(values) / 0.1)
    models = {
        name: {key: ratio_table(model, (key,)) for key in ("whole", "lists", "projections")}
        for name in ("a", "b")
    }
    summary = {"models": models, "pooled": {k: pooled(models, k) for k in models["a"]}}
    gates = verdict(summary)
    assert gates["pooled_whole"]["emergence"]["holds"] is True  # 1.20, within 0.67-1.5
    assert gates["one_source"]["emergence"]["projections"]["holds"] is False  # 2.45 > 1.5


def test_the_uncertainty_study_resumes_from_its_journal_and_skips_unmeasured_metrics(tmp_path):
    """A run in the journal is read, not run again; a model whose recovered runs carry IE only is
    compared on IE only, and the baselines are pooled over the models that measured them."""
    from studies.uncertainty.study import Journal, pooled, ratio_table

    path = tmp_path / "runs.jsonl"
    Journal(path).add("a", {"emergence": 1.0})
    journal = Journal(path)
    assert journal.get("a") == {"key": "a", "emergence": 1.0} and journal.get("b") is None
    ie_only = [{"kind": "whole", "emergence": v, "emergence_stderr": 0.1} for v in (1.0, 1.2)]
    full = [
        {"kind": "whole", "emergence": v, "emergence_stderr": 0.1, "erank": v,
         "erank_stderr": 0.2, "matrix_entropy": v, "matrix_entropy_stderr": 0.1}
        for v in (1.0, 1.4)
    ]  # fmt: skip
    models = {"log": {"whole": ratio_table(ie_only, ("whole",))},
              "full": {"whole": ratio_table(full, ("whole",))}}  # fmt: skip
    assert set(models["log"]["whole"]) == {"emergence"}
    together = pooled(models, "whole")
    assert together["erank"]["models"] == ["full"]
    assert together["erank"]["ratio"] == pytest.approx(statistics.stdev([1.0, 1.4]) / 0.2)
    assert together["emergence"]["models"] == ["log", "full"]


def test_the_uncertainty_study_runs_the_plugin_s_capture_and_estimate(tiny_series):
    from studies.uncertainty.study import _check_row, library_run

    test, checkpoints = tiny_series
    numbers = library_run(checkpoints[20], test.ids, ie_seed=3)
    assert numbers["n"] == 256 and numbers["emergence_stderr"] > 0
    assert numbers["erank_stderr"] > 0 and numbers["matrix_entropy_stderr"] > 0
    row = _check_row("tiny", numbers)
    assert row["bound"] == pytest.approx(row["allowance"] + 2 * row["change_stderr"])


def test_the_bias_correction_benchmark_prints_its_table(capsys):
    from studies.benchmarks.bias_correction import main

    assert main(["--reps", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(rows) > 10 and any("v-linear" in r for r in rows)


def test_the_estimator_benchmark_runs_quick(capsys):
    from studies.benchmarks.estimators import main

    args = ["--quick", "--no-paper", "--n", "400", "--seeds", "1", "--estimators", "gaussian"]
    assert main(args) == 0
    assert "independent-256" in capsys.readouterr().out


def test_the_committed_reproduction_claims_regenerate_from_the_committed_runs(tmp_path):
    """claims.json is rebuilt from the runs it was built from (to float rounding: a least-squares
    fit's last digits follow the BLAS)."""
    from studies.reproduction.claims import main

    results = tmp_path / "results"
    shutil.copytree(ROOT / "studies" / "reproduction" / "results", results)
    committed = json.loads((results / "claims.json").read_text())
    assert main(["--out", str(results)]) == 0
    assert _close(json.loads((results / "claims.json").read_text()), committed)


def _close(a: object, b: object) -> bool:
    """Equal JSON, floats to 1e-9 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12)
    return a == b


def test_the_study_models_command_names_its_models():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "studies.models", "nope"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode != 0 and "qwen2.5-coder-0.5b-instruct" in proc.stderr
