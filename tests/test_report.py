"""`lm-eval-emergence report` on constructed results files and the sidecar writer's own output
(no model): the
figures are drawn and not blank, correlations match known answers, bad inputs name the file,
and differing estimator settings, unreliable estimates and runs without a sidecar are shown."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lm_eval_emergence.harness.sidecar import sidecar_for
from lm_eval_emergence.records import (
    EmergenceResult,
    LayerEmergence,
    PositionEmergence,
    ShotPoint,
    TaskRecord,
)
from lm_eval_emergence.report import (
    Correlation,
    ReportInputError,
    breakpoint_fit,
    build_report,
    correlate,
    load_runs,
    main,
)
from lm_eval_emergence.report.text import params_text
from lm_eval_emergence.settings import CaptureSettings

DATE = "2026-01-01T00-00-00.000000"
OPTIONS = {"steps": 300, "critic": "separable", "reduce": "cca"}


def make_run(
    root: Path,
    name: str,
    *,
    model: str = "org/model",
    n_parameters: int | None = 1_000_000,
    task: str = "emergence_icl_country",
    layers_e: tuple[float, ...] = (1.0, 2.0, 3.0),
    acc: float | None = 0.5,
    n: int = 200,
    ceiling: float | None = 10.0,
    flagged: int = 0,
    projection_dim: int = 64,
    options: dict | None = None,
    seed: int = 0,
    protocol: str = "infonce",
    sidecar: bool = True,
    shot_curve: list[float] | None = None,
    per_position: list[float] | None = None,
    other_tasks: dict[str, dict] | None = None,
    outcomes: list | None = None,
    metrics: dict[str, float] | None = None,
    ie_stderr: float = 0.05,
    control_e: tuple[float, ...] | None = None,
    data_seed: int | None = None,
) -> Path:
    """Fabricate `root/name/results_<DATE>.json` (and its sidecar): one emergence task whose
    per-block E values are `layers_e` (macro = E + 1, micro = 1), IE = their mean ± `ie_stderr`;
    with `control_e`, a random-weights control whose per-block E values those are."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    ie = float(np.mean(layers_e))
    entry = {
        "alias": task,
        "sample_len": n,
        "emergence,none": ie,
        "emergence_stderr,none": ie_stderr,
        "emergence_macro,none": ie + 1.0,
        "emergence_macro_stderr,none": 0.04,
        "emergence_micro,none": 1.0,
        "emergence_micro_stderr,none": 0.01,
        "emergence_flagged_blocks,none": float(flagged),
        "emergence_flagged_blocks_stderr,none": "N/A",
    }
    if acc is not None:
        entry |= {"acc,none": acc, "acc_stderr,none": 0.01}
    if control_e is not None:
        control_ie = float(np.mean(control_e))
        entry |= {
            "emergence_random,none": control_ie,
            "emergence_random_stderr,none": 0.04,
            "emergence_vs_random,none": ie - control_ie,
            "emergence_vs_random_stderr,none": 0.06,
        }
    entry |= metrics or {}
    results = {task: entry, **(other_tasks or {})}
    data = {
        "results": results,
        "configs": {} if data_seed is None else {task: {"metadata": {"data_seed": data_seed}}},
        "versions": {t: 1.0 for t in results},
        "n-samples": {task: {"original": n, "effective": n}},
        "config": {"model": "hf-emergence", "model_args": {"pretrained": model}},
        "lm_eval_version": "0.4.13",
        "model_name": model,
        "date": 0.0,
    }
    results_path = run_dir / f"results_{DATE}.json"
    results_path.write_text(json.dumps(data))
    if not sidecar:
        return results_path

    def blocks(values: tuple[float, ...], flagged: int = 0) -> list[LayerEmergence]:
        return [
            LayerEmergence(
                layer=i,
                macro_bits=e + 1.0,
                micro_bits=1.0,
                emergence_bits=e,
                stderr_bits=0.1,
                macro_stderr_bits=0.08,
                micro_stderr_bits=0.02,
                micro_bits_per_position=[1.0] * 8,
                micro_stderr_bits_per_position=[0.02] * 8,
                micro_exact_zero_positions=[],
                macro_null_bits=None,
                micro_null_bits=None,
                diverged=False,
                implausible=i < flagged,
            )
            for i, e in enumerate(values)
        ]

    per_layer = blocks(layers_e, flagged)
    positions = None
    if per_position is not None:
        positions = [
            PositionEmergence(position=i, emergence_bits=e, stderr_bits=0.2, per_layer=[])
            for i, e in enumerate(per_position)
        ]
    curve = None
    if shot_curve is not None:
        curve = [
            ShotPoint(
                shot=i + 1,
                position=2 * i + 1,
                emergence_bits=e,
                stderr_bits=0.1,
                layer_std_bits=0.5,
            )
            for i, e in enumerate(shot_curve)
        ]
    layers = list(range(len(layers_e)))
    result = EmergenceResult(
        ie_bits=ie,
        ie_sum_bits=ie * len(layers_e),
        ie_stderr_bits=ie_stderr,
        ie_sum_stderr_bits=0.05 * len(layers_e),
        per_layer=per_layer,
        per_position=positions,
        n=n,
        seq_len=8,
        ceiling_bits=ceiling,
        log2_n=math.log2(n),
        sequence_entropy_bits=math.log2(n),
        token_entropy_bits=[1.0] * 8,
        n_distinct_sequences=n,
        bos_token_id=None,
        micro_input="token alone",
        estimator="infonce",
        estimator_options=options or OPTIONS,
        seed=seed,
        layers=layers,
        projection_dim=projection_dim,
        hidden_dim=projection_dim,
        any_diverged=False,
        diverged_layers=[],
        implausible_layers=list(range(flagged)),
        warnings=[f"block {i} is implausible" for i in range(flagged)],
        n_estimates=9 * len(layers_e),
        n_exact_zero=0,
        seconds_capture=1.0,
        seconds_capture_macro=1.0,
        seconds_capture_micro=0.0,
        seconds_estimation=1.0,
        model_name=model,
        n_parameters=n_parameters,
        protocol=protocol,
    )
    record = TaskRecord(
        task=task,
        n_docs=n,
        capture={
            "layers": layers,
            "projection_dim": projection_dim,
            "hidden_dim": 32,
            "model_dtype": "float32",
            "settings": CaptureSettings(projection_dim=projection_dim, seed=seed).to_dict(),
        },
        estimation={"estimator": "infonce", "options": {}, "seed": seed},
        seconds_forward=1.0,
        seconds_estimation=1.0,
        metrics={"emergence": ie},
        shot_curve=curve,
        result=result,
        control=None
        if control_e is None
        else replace(result, ie_bits=float(np.mean(control_e)), per_layer=blocks(control_e)),
        outcomes=outcomes,
    )
    # the writer's own output, as lm-eval-emergence writes it next to the results file
    sidecar_data = sidecar_for({task: record}, results_path.name).to_dict()
    (run_dir / f"emergence_{DATE}.json").write_text(json.dumps(sidecar_data))
    return results_path


def figures_of(md: str) -> list[str]:
    return [line.split("](", 1)[1].rstrip(")") for line in md.splitlines() if "](" in line]


def section(md: str, title: str) -> str:
    """The text of the Markdown section `## title`."""
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


# ------------------------------------------------------------------------- figures, layout


def test_report_draws_the_runs_numbers(tmp_path):
    """Each figure draws the numbers of the runs it shows (read back from the data written
    beside it, not from its pixels)."""
    make_run(
        tmp_path,
        "a",
        model="org/small",
        n_parameters=10**6,
        layers_e=(0.5, 1.0, 1.5),
        acc=0.3,
        task="emergence_icl_shots",
        shot_curve=[0.5, 1.0, 2.0, 2.5],
        per_position=[0.1, 0.5, 1.0, 2.0],
        other_tasks={
            "arc_easy": {
                "acc,none": 0.4,
                "acc_stderr,none": 0.02,
                "acc_norm,none": 0.38,
                "acc_norm_stderr,none": 0.02,
                "sample_len": 100,
            }
        },
    )
    make_run(
        tmp_path,
        "b",
        model="org/mid",
        n_parameters=10**7,
        layers_e=(1.0, 2.0, 2.5),
        acc=0.5,
        task="emergence_icl_shots",
        shot_curve=[0.6, 1.5, 2.5, 3.0],
    )
    make_run(
        tmp_path,
        "c",
        model="org/large",
        n_parameters=10**8,
        layers_e=(1.5, 3.0, 3.5),
        acc=0.7,
        task="emergence_icl_shots",
        shot_curve=[0.7, 2.0, 3.0, 3.5],
    )
    make_run(
        tmp_path,
        "d",
        model="org/large",
        task="emergence_natural",
        acc=None,
        per_position=[0.0, 0.2, 0.4, 0.3],
    )

    path = build_report([tmp_path], tmp_path / "out", bootstrap=200)
    md = path.read_text()
    assert path == tmp_path / "out" / "report.md"
    for title in (
        "Runs",
        "Reliability",
        "Results",
        "Leaderboard",
        "Per-block emergence",
        "Shot and position curves",
        "Intrinsic metrics against ability",
    ):
        assert f"\n## {title}\n" in md
    # three sizes make no series: one sentence, no figure
    assert "a series needs 4 distinct parameter counts" in section(md, "Across models")
    names = figures_of(md)
    assert "layers_emergence_icl_shots.png" in names
    assert "shots_emergence_icl_shots.png" in names
    assert "positions_emergence_natural.png" in names
    assert any(n.startswith("scatter_emergence_icl_shots__") for n in names)
    for name in names:
        png = tmp_path / "out" / name
        assert png.is_file() and 5_000 < png.stat().st_size < 200_000, name

    def drawn(name: str) -> list[dict]:
        return json.loads((tmp_path / "out" / name).with_suffix(".json").read_text())["axes"]

    # the per-block figure: each run's E(l) as a line, its macro and micro terms beside
    left, right = drawn("layers_emergence_icl_shots.png")
    e_lines = {line["label"]: line["y"] for line in left["lines"] if line["x"] == [0, 1, 2]}
    want = {
        "org/small": [0.5, 1.0, 1.5],
        "org/mid": [1.0, 2.0, 2.5],
        "org/large emergence_icl_shots": [1.5, 3.0, 3.5],  # its other run: another task
    }
    assert e_lines == want
    macro = [line["y"] for line in right["lines"]]
    assert [1.5, 2.0, 2.5] in macro and [1.0, 1.0, 1.0] in macro  # a's macro (E + 1) and micro
    # the shot curve: each run's E at each shot
    (shots,) = [ax for ax in drawn("shots_emergence_icl_shots.png") if ax["lines"]][:1]
    assert [0.6, 1.5, 2.5, 3.0] in [line["y"] for line in shots["lines"]]
    # the scatter of IE against accuracy: one point per run at (its IE, its acc)
    (scatter,) = [n for n in names if n.startswith("scatter_emergence_icl_shots__emergence_")
                  and n.endswith("acc.png")]  # fmt: skip
    points = drawn(scatter)[0]["points"]
    plotted = sorted((x, y) for p in points for x, y in zip(p["x"], p["y"], strict=True))
    flat = [v for point in plotted for v in point]
    assert flat == pytest.approx([1.0, 0.3, 1.8333333, 0.5, 2.6666667, 0.7])  # (mean E, acc)
    assert "nan" not in md.lower()
    # the other task's accuracy is in the tables ...
    assert "arc_easy" in section(md, "Results")
    # ... but one model has it: no coefficient, one sentence for every such pair
    correlations = section(md, "Intrinsic metrics against ability")
    assert "arc_easy" not in correlations
    assert "Left out: 3 pair(s) with fewer than 3 distinct models." in correlations
    # 3 runs on the shots task: numbers, not a refusal
    shots_row = next(
        line
        for line in md.splitlines()
        if line.startswith("| emergence_icl_shots: emergence | emergence_icl_shots: acc |")
    )
    assert "| 3 | 1.000 [" in shots_row


def test_main_returns_0_and_writes_the_report(tmp_path, capsys):
    for i in range(3):
        make_run(tmp_path, f"r{i}", model=f"org/m{i}", layers_e=(i, i + 1.0), acc=0.1 * i)
    out = tmp_path / "out"
    assert main([str(tmp_path), "--out", str(out), "--bootstrap", "50", "--seed", "3"]) == 0
    assert (out / "report.md").is_file()
    assert "report.md" in capsys.readouterr().out
    assert "bootstrap 50 resamples, seed 3" in (out / "report.md").read_text()


# ---------------------------------------------------------------------------- correlations


def test_monotone_nonlinear_relation_gives_spearman_one():
    x = np.array([0.5, 1.0, 2.0, 3.5, 5.0])
    y = np.exp(x) / 200.0  # monotone, far from linear
    corr = correlate(x, y, bootstrap=500, seed=0)
    assert corr.spearman == pytest.approx(1.0, abs=1e-12)
    assert corr.pearson == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert corr.pearson < 0.99
    for point, ci in ((corr.spearman, corr.spearman_ci), (corr.pearson, corr.pearson_ci)):
        assert ci is not None
        assert -1.0 <= ci[0] <= point + 1e-12 and point - 1e-12 <= ci[1] <= 1.0
    # every usable resample of a strictly monotone relation has rho = 1
    assert corr.spearman_ci == pytest.approx((1.0, 1.0))
    assert 0 < corr.resamples_used <= corr.resamples == 500


def test_anti_correlated_runs_give_minus_one():
    x = [1.0, 2.0, 3.0, 4.0, 6.0]
    y = [0.9, 0.8, 0.5, 0.45, 0.1]
    corr = correlate(x, y, bootstrap=300, seed=1)
    assert corr.spearman == pytest.approx(-1.0, abs=1e-12)
    assert corr.pearson == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert corr.spearman_ci == pytest.approx((-1.0, -1.0))
    lo, hi = corr.pearson_ci
    assert -1.0 <= lo <= corr.pearson <= hi <= 1.0


def test_bootstrap_is_seeded_and_skips_undefined_resamples():
    x, y = [1.0, 2.0, 3.0, 4.0], [0.2, 0.1, 0.4, 0.3]
    a = correlate(x, y, bootstrap=400, seed=7)
    b = correlate(x, y, bootstrap=400, seed=7)
    assert a == b
    # with 4 runs some resamples repeat one run 4 times (constant): they are skipped
    assert a.resamples_used < 400
    assert a.spearman == pytest.approx(stats.spearmanr(x, y).statistic)


def test_too_few_or_constant_runs_give_no_numbers(tmp_path):
    few = correlate([1.0, 2.0], [0.1, 0.2])
    assert few.spearman is None and few.pearson is None and few.spearman_ci is None
    assert "no correlation can be computed from 2 runs" in few.note
    constant = correlate([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])
    assert constant.spearman is None and "same for every run" in constant.note
    assert constant == Correlation(
        n=3,
        spearman=None,
        spearman_ci=None,
        pearson=None,
        pearson_ci=None,
        resamples=2000,
        resamples_used=0,
        note="undefined: one of the two variables is the same for every run",
    )

    # in a report, two models make no correlation: no row, no figure, one sentence
    make_run(tmp_path, "a", model="org/a", layers_e=(1.0, 2.0), acc=0.2)
    make_run(tmp_path, "b", model="org/b", layers_e=(2.0, 3.0), acc=0.4)
    md = build_report([tmp_path], tmp_path / "out", bootstrap=100).read_text()
    assert "## Intrinsic metrics against ability" not in md and "scatter_" not in md
    assert section(md, "Across models").strip() == (
        "Not computed: a correlation needs 3 distinct models with an ability metric and a "
        "series 4 distinct parameter counts or checkpoints (`--x step`); the runs hold 2 with "
        "an ability metric and 1 distinct parameter counts in a series."
    )


def test_report_correlation_matches_scipy_on_constructed_runs(tmp_path):
    ies = [0.5, 1.0, 2.0, 3.0, 4.5]
    accs = [0.9, 0.7, 0.6, 0.3, 0.25]  # strictly decreasing in IE
    for i, (ie, acc) in enumerate(zip(ies, accs, strict=True)):
        make_run(
            tmp_path,
            f"r{i}",
            model=f"org/m{i}",
            n_parameters=10 ** (6 + i),
            layers_e=(ie, ie),
            acc=acc,
        )
    md = build_report([tmp_path], tmp_path / "out", bootstrap=300).read_text()
    row = next(
        line
        for line in md.splitlines()
        if line.startswith("| emergence_icl_country: emergence | emergence_icl_country: acc |")
    )
    pearson = stats.pearsonr(ies, accs).statistic
    assert "| 5 | -1.000 [-1.00, -1.00] |" in row
    assert f"| {pearson:.3f} [" in row


# ------------------------------------------------------------------------------ bad inputs


def test_json_without_results_is_an_error_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "results_bad.json"
    bad.write_text(json.dumps({"model": "x", "scores": {}}))
    with pytest.raises(ValueError, match=r"results_bad\.json: no 'results' object") as err:
        load_runs([bad])
    assert err.type is ReportInputError
    assert "'results' object" in str(err.value)
    assert main([str(bad), "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err
    assert message.startswith("lm-eval-emergence report: error: ")
    assert str(bad) in message and "expected an lm-eval results file" in message


def test_non_json_file_is_an_error_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("accuracy went up\n")
    with pytest.raises(ReportInputError, match="notes.txt.*cannot be read as JSON"):
        load_runs([bad])
    assert main([str(bad), "--out", str(tmp_path / "out")]) == 2
    assert str(bad) in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.md").exists()


def test_directory_without_results_and_missing_path_are_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "samples_x.jsonl").write_text("{}\n")
    with pytest.raises(ReportInputError, match=r"empty: no results_\*\.json"):
        load_runs([empty])
    with pytest.raises(ReportInputError, match="missing.json: no such file"):
        load_runs([tmp_path / "missing.json"])


def test_incomplete_sidecar_is_an_error_naming_the_file(tmp_path):
    path = make_run(tmp_path, "a")
    sidecar_path = path.with_name(f"emergence_{DATE}.json")
    data = json.loads(sidecar_path.read_text())
    del data["tasks"]["emergence_icl_country"]["result"]["per_layer"][0]["macro_bits"]
    sidecar_path.write_text(json.dumps(data))
    with pytest.raises(ReportInputError, match=r"emergence_.*\.json: not a complete"):
        load_runs([path])


def test_sidecar_passed_as_results_is_explained(tmp_path):
    path = make_run(tmp_path, "a")
    sidecar = path.with_name(f"emergence_{DATE}.json")
    with pytest.raises(ReportInputError, match="sidecar; pass the results_"):
        load_runs([sidecar])


# -------------------------------------------------------------------------- honesty checks


def test_models_measured_with_different_settings_are_not_compared(tmp_path):
    # each model measured its own way: nothing to rank or correlate, and the table says how
    make_run(tmp_path, "a", model="org/a", layers_e=(1.0, 2.0), acc=0.2)
    make_run(tmp_path, "b", model="org/b", layers_e=(2.0, 3.0), acc=0.4, projection_dim=32,
             options={**OPTIONS, "steps": 100})  # fmt: skip
    make_run(tmp_path, "c", model="org/c", layers_e=(2.5, 3.5), acc=0.5, n=500, seed=1)
    md = build_report([tmp_path], tmp_path / "out", bootstrap=100).read_text()
    assert "## Leaderboard" not in md and "## Intrinsic metrics against ability" not in md
    assert "the runs hold 1 model(s) measured alike on a task" in section(md, "Across models")
    results = section(md, "Results")
    assert "| org/b | 1M | emergence_icl_country | 1 | 2.500 ± 0.05 |" in results
    assert "| 32 | all | 0 |" in results and "| 500 | 8 | infonce |" in results
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    ie = runs[runs["key"] == "emergence"].set_index("model")
    assert ie["board"].nunique() == 3 and ie.loc["org/b", "projection_dim"] == 32
    assert ie.loc["org/b", "estimator_options"] == "critic=separable, reduce=cca, steps=100"


def test_runs_of_different_protocols_are_not_correlated(tmp_path):
    # two protocols are two quantities: ranked apart, and two models a protocol correlate nothing
    for i, protocol in enumerate(("infonce", "infonce", "floor-update")):
        make_run(
            tmp_path,
            f"r{i}",
            model=f"org/m{i}",
            layers_e=(i, i + 1.0),
            acc=0.1 * i,
            protocol=protocol,
        )
    md = build_report([tmp_path], tmp_path / "out", bootstrap=100).read_text()
    board = section(md, "Leaderboard")
    assert "### emergence_icl_country (ie_protocol=infonce)" in board
    assert "floor-update" not in board and "org/m2" not in board
    assert "## Intrinsic metrics against ability" not in md and "scatter_" not in md
    assert "the runs hold 2 model(s) measured alike on a task" not in md  # a leaderboard is there
    assert "a correlation needs 3 distinct models" in section(md, "Across models")


def test_same_settings_are_compared_without_a_warning(tmp_path):
    for i in range(3):
        make_run(tmp_path, f"r{i}", model=f"org/m{i}", layers_e=(i + 1.0, i + 2.0), acc=0.2 * i)
    md = build_report([tmp_path], tmp_path / "out", bootstrap=100).read_text()
    assert "Warning" not in md and "settings differ" not in md
    assert "### emergence_icl_country\n" in section(md, "Leaderboard")
    assert "| emergence_icl_country: emergence | emergence_icl_country: acc | 3 |" in md
    assert "No flagged block, no estimate at the estimator's ceiling" in md


def test_flagged_blocks_and_ceiling_are_reported(tmp_path):
    make_run(tmp_path, "a", model="org/a", layers_e=(1.0, 2.0, 3.0), flagged=1)
    make_run(tmp_path, "b", model="org/b", layers_e=(0.0, 9.0, 9.2), ceiling=10.5)
    md = build_report([tmp_path], tmp_path / "out", bootstrap=100).read_text()
    reliability = section(md, "Reliability")
    assert "a, emergence_icl_country: 1 flagged block(s) (implausible: 0)" in reliability
    assert "b, emergence_icl_country: at the ceiling" in reliability
    assert "in 2 of 3 blocks" in reliability
    assert "a, emergence_icl_country: at the ceiling" not in reliability


def test_run_without_sidecar_is_in_the_table(tmp_path):
    make_run(tmp_path, "a", model="org/with", layers_e=(1.0, 2.0), acc=0.3)
    make_run(tmp_path, "b", model="org/without", layers_e=(2.0, 4.0), acc=0.6, sidecar=False)
    runs = {r.label: r for r in load_runs([tmp_path])}
    without = runs["org/without"]
    assert without.sidecar is None and without.sidecar_path is None
    assert without.settings["emergence_icl_country"] == {"n": 200, "dtype": None, "data_seed": None}
    md = build_report([tmp_path], tmp_path / "out", bootstrap=100).read_text()
    row = next(line for line in section(md, "Results").splitlines() if "| org/without |" in line)
    assert "| 3.000 ± 0.05 |" in row and "| 0.600 ± 0.01 |" in row and "no sidecar" in row
    assert "| n/a |" in row  # seq_len, protocol, ... are not in the results file
    assert "No sidecar for org/without" in md
    assert "Not shown (no sidecar data for emergence_icl_country): org/without." in md
    assert "## Leaderboard" not in md  # its settings are unknown: compared with no other run


def test_group_rows_merge_their_subtasks(tmp_path):
    path = make_run(tmp_path, "a", model="org/a", layers_e=(0.0, 9.8, 9.9), ceiling=10.0)
    data = json.loads(path.read_text())
    sub = data["results"]["emergence_icl_country"]
    data["results"]["emergence_icl_color"] = dict(sub, alias="emergence_icl_color")
    data["results"]["emergence_icl"] = dict(sub, alias="emergence_icl", sample_len=400)
    data["group_subtasks"] = {"emergence_icl": ["emergence_icl_color", "emergence_icl_country"]}
    path.write_text(json.dumps(data))
    sidecar_path = path.with_name(f"emergence_{DATE}.json")
    sidecar = json.loads(sidecar_path.read_text())
    color = json.loads(json.dumps(sidecar["tasks"]["emergence_icl_country"]))
    color["result"]["seq_len"] = 10
    sidecar["tasks"]["emergence_icl_color"] = color
    sidecar_path.write_text(json.dumps(sidecar))

    (run,) = load_runs([path])
    assert run.settings["emergence_icl"]["n"] == 200  # per subtask, not the group's 400
    md = build_report([path], tmp_path / "out", bootstrap=10).read_text()
    row = next(
        line for line in md.splitlines() if line.startswith("| org/a | 1M | emergence_icl |")
    )
    assert "| 200 | mixed | infonce |" in row and row.rstrip(" |").endswith("ceiling")
    assert "Groups (emergence_icl) have no per-block data of their own" in md
    # listed once per subtask, not again under the group
    reliability = section(md, "Reliability")
    assert "org/a, emergence_icl_color: at the ceiling" in reliability
    assert "org/a, emergence_icl:" not in reliability


def test_run_without_parameter_count_is_left_out_of_the_scaling_figure(tmp_path):
    make_run(tmp_path, "a", model="org/a", n_parameters=None)
    for i in range(4):
        make_run(tmp_path, f"b{i}", model=f"org/b{i}", n_parameters=5_000 * 10**i,
                 layers_e=(i, i), acc=0.1 * i)  # fmt: skip
    md = build_report([tmp_path], tmp_path / "out", bootstrap=10).read_text()
    series = section(md, "Intrinsic and ability metrics against parameter count")
    assert "Left out (no parameter count): org/a." in series
    row = next(line for line in series.splitlines() if line.startswith("| emergence |"))
    assert "| emergence_icl_country | 4 |" in row  # the four with a size


# ----------------------------------------------------------------------------------- loading


def test_load_runs_reads_files_and_directories_once(tmp_path):
    path = make_run(tmp_path / "x", "a", model="/models/org/tiny", n_parameters=1234)
    make_run(tmp_path / "x", "b", model="other/tiny")
    runs = load_runs([tmp_path, path])  # the file is also found in the directory
    assert len(runs) == 2
    first = next(r for r in runs if r.path.resolve() == path.resolve())
    assert first.model == "tiny" and first.reference == "/models/org/tiny"
    assert first.n_parameters == 1234 and first.lm_eval_version == "0.4.13"
    assert sorted(r.label for r in runs) == ["other/tiny", "tiny"]  # a hub id, a folder
    settings = first.settings["emergence_icl_country"]
    assert settings["layers"] == "all" and settings["projection_dim"] == 64
    assert settings["n"] == 200 and settings["estimator"] == "infonce"
    assert first.value("emergence_icl_country", "emergence_flagged_blocks_stderr,none") is None


def test_ie_by_outcome_is_a_table_and_a_figure_of_the_runs_that_have_it(tmp_path):
    from lm_eval_emergence.records import OutcomeGroup

    groups = [
        OutcomeGroup("correct", 300, 80, 5.25, 0.125),
        OutcomeGroup("repeat", 80, 80, 4.5, 0.25),
        OutcomeGroup("other", 20, 0, None, None, "20 documents, below the 64"),
    ]
    a = make_run(tmp_path, "a", task="emergence_icl_shots", outcomes=groups)
    b = make_run(tmp_path, "b", model="org/other", task="emergence_icl_shots")
    md = build_report([a, b], tmp_path / "out").read_text()
    text = section(md, "emergence_icl_shots: IE by what the model does next")
    assert "| org/model | 5.250 ± 0.12 (300) | 4.500 ± 0.25 (80) | n/a (20) | 80 |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 2  # the header and run a: run b (org/other) has no outcome groups
    (figure,) = figures_of(text)
    assert (tmp_path / "out" / figure).stat().st_size > 5_000


# ----------------------------------------------------------------------------- the series


def test_breakpoint_of_a_known_hinge_and_of_a_line():
    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 6.0, 25)
    fit = breakpoint_fit(x, 1.0 + 2.0 * np.maximum(0.0, x - 3.0) + rng.normal(0, 0.05, 25))
    assert fit.at == pytest.approx(3.0, abs=0.1)
    assert fit.ci[1] - fit.ci[0] < 0.5 and not (fit.open_low or fit.open_high)
    # the profile interval covers the true breakpoint about as often as it says (measured:
    # 0.87-0.95 over 200 series of 6-25 runs; the F bound is an approximation)
    covered = 0
    for _ in range(100):
        noisy = 1.0 + 2.0 * np.maximum(0.0, x - 3.1) + rng.normal(0, 0.05, 25)
        lo, hi = breakpoint_fit(x, noisy).ci
        covered += lo <= 3.1 <= hi
    assert covered >= 80
    assert fit.slope == pytest.approx(2.0, rel=0.05) and fit.level == pytest.approx(1.0, abs=0.05)
    assert fit.r2 > 0.99 > 0.9 > fit.r2_line
    # a straight line bends nowhere: the best hinge sits at the first run, the interval open
    line = breakpoint_fit(x, 2.0 * x + rng.normal(0, 0.05, 25))
    assert line.open_low and line.r2 == pytest.approx(line.r2_line, abs=1e-3)
    # noisier, fewer runs: wider, still around the truth
    few = np.linspace(0.0, 6.0, 9)
    wide = breakpoint_fit(few, np.maximum(0.0, few - 3.0) + rng.normal(0, 0.1, 9))
    assert wide.ci[0] <= 3.0 <= wide.ci[1] and wide.ci[1] - wide.ci[0] > fit.ci[1] - fit.ci[0]
    assert breakpoint_fit([1, 2, 3], [1, 2, 3]).note.startswith("no breakpoint from 3")
    assert "the same for every run" in breakpoint_fit([1, 2, 3, 4], [5, 5, 5, 5]).note


def test_series_puts_ability_and_intrinsic_metrics_on_one_figure_with_breakpoints(tmp_path):
    """Six sizes: acc jumps between 10^8 and 10^9 (discontinuous), logprob rises steadily
    (continuous), erank falls: each metric's row names where it changes."""
    from matplotlib.image import imread

    sizes = [10**k for k in range(6, 12)]
    accs = [0.01, 0.011, 0.02, 0.3, 0.6, 0.9]  # flat until 10^8, then up
    for i, size in enumerate(sizes):
        make_run(
            tmp_path,
            f"r{i}",
            model=f"org/m{i}",
            n_parameters=size,
            layers_e=(1.0 + i, 1.0 + i),
            acc=accs[i],
            metrics={
                "logprob_correct,none": -5.0 + 0.8 * i,
                "logprob_correct_stderr,none": 0.02,
                "erank,none": 30.0 - 2.0 * i,
                "erank_stderr,none": 0.3,
                "diff_erank,none": 2.0 * i,
                "diff_erank_stderr,none": 0.3,
                "matrix_entropy,none": 0.5 + 0.01 * i * i,
                "matrix_entropy_stderr,none": 0.01,
            },
        )
    md = build_report([tmp_path], tmp_path / "out", bootstrap=100).read_text()
    series = section(md, "Intrinsic and ability metrics against parameter count")
    assert "![metrics against parameter count](series_params.png)" in series
    image = imread(tmp_path / "out" / "series_params.png")
    assert image.std() > 0.01
    rows = {
        line.split(" | ")[0].lstrip("| "): line for line in series.splitlines() if " | " in line
    }
    acc_at = breakpoint_fit([6, 7, 8, 9, 10, 11], accs)
    assert acc_at.at == pytest.approx(8.0, abs=0.3)  # where acc leaves its floor: ~10^8
    assert rows["acc"].split(" | ")[3].startswith(f"{params_text(round(10**acc_at.at))} [")
    assert "no bend inside the runs" in rows["logprob_correct"]  # a straight rise
    for metric in ("emergence", "diff_erank", "erank", "matrix_entropy"):
        assert metric in rows
    # every intrinsic metric against every ability metric of the task
    ability = section(md, "Intrinsic metrics against ability")
    for intrinsic in ("emergence", "diff_erank", "erank", "matrix_entropy"):
        for able in ("acc", "logprob_correct"):
            label = f"| emergence_icl_country: {intrinsic} | emergence_icl_country: {able} |"
            assert label in ability, label
    erank_row = next(line for line in ability.splitlines() if "country: erank | " in line)
    assert "| 6 | -1.000 [" in erank_row and "logprob_correct" not in erank_row


def test_series_against_training_step_reads_the_checkpoint_from_the_model(tmp_path):
    for i, step in enumerate((0, 100, 1000, 10000)):
        make_run(
            tmp_path, f"s{i}", model=f"/runs/w64/checkpoint-{step}", layers_e=(i, i), acc=0.2 * i
        )
    make_run(tmp_path, "plain", model="org/other", acc=0.1)
    assert [r.step for r in sorted(load_runs([tmp_path]), key=lambda r: str(r.path))] == [
        None,
        0,
        100,
        1000,
        10000,
    ]
    out = tmp_path / "out"
    assert main([str(tmp_path), "--out", str(out), "--bootstrap", "20", "--x", "step"]) == 0
    series = section(
        (out / "report.md").read_text(), "Intrinsic and ability metrics against training step"
    )
    assert "Left out (no training step in its model name): org/other." in series
    rows = [line for line in series.splitlines() if line.startswith("| emergence |")]
    assert rows == [rows[0]] and "| w64 step 0" not in series  # one series, of four checkpoints
    assert "| emergence_icl_country | 4 |" in rows[0]
    assert "![metrics against training step](series_step.png)" in series
    assert (out / "series_step.png").is_file()


def test_leaderboard_shares_ranks_of_models_within_two_standard_errors(tmp_path):
    # IE 2.0, 2.1 and 3.0, each ± 0.05: 2.1 vs 2.0 is 0.1 < 2·√(0.05² + 0.05²) = 0.141 (they
    # share ranks 2–3); 3.0 is above both by more. Only a model's seed differs, which its ±
    # covers: they are compared
    for name, e, seed in (("a", 2.0, 0), ("b", 2.1, 1), ("c", 3.0, 2)):
        make_run(tmp_path, name, model=f"org/{name}", layers_e=(e, e), seed=seed)
    md = build_report([tmp_path], tmp_path / "out", bootstrap=100).read_text()
    board = section(md, "Leaderboard")
    rows = [line for line in board.splitlines() if line.startswith("| ") and "rank" not in line]
    assert [row.split(" | ")[:2] for row in rows] == [
        ["| 1", "org/c"],
        ["| 2–3", "org/b"],
        ["| 2–3", "org/a"],
    ]
