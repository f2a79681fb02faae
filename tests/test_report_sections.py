"""The report reads what it was given (issue 31): one model is a profile with its control, seed
repeats are replicates (never points of a correlation), and distinct models make a leaderboard
whose ranks and rank intervals are worked out by hand here. Constructed runs, no model."""

from __future__ import annotations

import json
import statistics

import pandas as pd
import pytest
from test_report import make_run, section

from lm_eval_emergence.report import build_report, load_runs
from lm_eval_emergence.report.leaderboard import rank_intervals, rank_text
from lm_eval_emergence.report.runs import model_name
from lm_eval_emergence.report.table import replicates, tidy
from lm_eval_emergence.report.text import plus_minus

SHIPPED = "/root/.cache/lm_eval_emergence/smollm2-135m-instruct"


def need_lines(md: str) -> list[str]:
    return [line for line in md.splitlines() if "need" in line]


def drawn(out, name: str) -> list[dict]:
    return json.loads((out / name).with_suffix(".json").read_text())["axes"]


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in `text`, as cells."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [cells(line) for line in lines[1:]]


def table_dicts(text: str) -> list[dict[str, str]]:
    """The body rows of the first Markdown table in `text`, keyed by its header."""
    header = cells(next(line for line in text.splitlines() if line.startswith("| ")))
    return [dict(zip(header, row, strict=True)) for row in table_rows(text)]


# ---------------------------------------------------------------------------------- naming


def test_a_model_is_named_by_its_own_name_never_a_path():
    assert model_name(SHIPPED) == "SmolLM2-135M-Instruct"  # the shipped model's cache
    assert model_name("EleutherAI/pythia-160m") == "EleutherAI/pythia-160m"  # a hub id
    assert model_name("gpt2") == "gpt2"
    assert model_name("/data/models/my-model/") == "my-model"  # a folder: its last part
    assert model_name("./runs/w64/checkpoint-800") == "w64"  # a checkpoint: the folder above
    assert model_name("C:\\models\\tiny") == "tiny"


# ----------------------------------------------------------------------- one model: profile


def test_one_run_with_the_control_is_a_profile_without_machine_paths(tmp_path):
    make_run(
        tmp_path,
        "run",
        model=SHIPPED,
        layers_e=(1.0, 2.0, 4.0),
        control_e=(0.5, -1.0, -2.5),
        ceiling=None,
    )
    out = tmp_path / "out"
    md = build_report([tmp_path], out, bootstrap=50).read_text()
    assert "/root" not in md and str(tmp_path) not in md and "cache" not in md
    assert "| SmolLM2-135M-Instruct |" in section(md, "Runs")
    # nothing across models from one model: one sentence says what more is needed
    (need,) = need_lines(md)
    assert need.startswith("Not computed: a leaderboard needs 2 distinct models")
    assert "a correlation 3 distinct models" in need and "a series 4 distinct" in need
    for absent in ("## Leaderboard", "## Replication", "## Intrinsic metrics against", "Warning"):
        assert absent not in md
    # the profile: IE, the control's IE and their difference side by side
    (row,) = table_dicts(section(md, "Results"))
    assert row["IE"] == "2.333 ± 0.05" and row["control IE"] == "-1.000 ± 0.04"
    assert row["IE − random"] == "3.333 ± 0.06"
    # the control's E(l) is drawn in the per-block figure's axes, beside the model's
    left, right = drawn(out, "layers_emergence_icl_country.png")
    lines = {line["label"]: line["y"] for line in left["lines"] if line["x"] == [0, 1, 2]}
    assert lines == {
        "SmolLM2-135M-Instruct": [1.0, 2.0, 4.0],
        "SmolLM2-135M-Instruct control": [0.5, -1.0, -2.5],
    }
    assert left["legend"] == list(lines)
    assert right["legend"] == ["macro", "micro"]  # no ceiling drawn, none listed


def test_two_runs_of_one_model_are_labelled_by_what_differs(tmp_path):
    # the case: a run with the control, and a run of another task without it
    make_run(tmp_path, "a", model=SHIPPED, control_e=(0.0, 0.0, 0.0), ceiling=12.0)
    make_run(tmp_path, "b", model=SHIPPED, task="emergence_icl_shots", shot_curve=[1.0, 2.0])
    make_run(tmp_path, "c", model=SHIPPED, task="emergence_icl_shots", shot_curve=[1.0, 2.0])
    make_run(tmp_path / "later", "c", model=SHIPPED, task="emergence_natural")
    path = make_run(tmp_path / "later", "d", model=SHIPPED, task="emergence_natural")
    for name in (path.name, path.name.replace("results_", "emergence_")):
        (path.parent / name).rename(path.parent / name.replace("01-01", "02-01"))
    out = tmp_path / "out"
    md = build_report([tmp_path], out, bootstrap=50).read_text()
    labels = sorted(r.label for r in load_runs([tmp_path]))
    name = "SmolLM2-135M-Instruct"
    assert labels == [
        f"{name} ie_control=none emergence_icl_shots (1)",  # nothing differs: numbered
        f"{name} ie_control=none emergence_icl_shots (2)",
        f"{name} ie_control=none emergence_natural 2026-01-01T00-00-00.000000",
        f"{name} ie_control=none emergence_natural 2026-02-01T00-00-00.000000",
        f"{name} ie_control=random",
    ]
    assert "#" not in section(md, "Runs") and "Warning" not in md
    assert len(need_lines(md)) == 1 and "series_params.png" not in md
    _, right = drawn(out, "layers_emergence_icl_country.png")
    assert right["legend"] == ["macro", "micro", "ceiling"]  # a ceiling drawn, listed
    assert [12.0, 12.0] in [line["y"] for line in right["lines"]]


# --------------------------------------------------------------------- seed repeats: replicates


IE = (22.58, 22.55, 23.17)
SE = (0.050, 0.056, 0.053)


def test_seed_repeats_are_replicates_with_their_standard_deviation(tmp_path):
    for seed, (ie, se) in enumerate(zip(IE, SE, strict=True)):
        make_run(
            tmp_path,
            f"s{seed}",
            model="org/m",
            layers_e=(ie, ie),
            ie_stderr=se,
            acc=0.5 + 0.1 * seed,
            seed=seed,
            n=256,
        )
    md = build_report([tmp_path], tmp_path / "out", bootstrap=50).read_text()
    assert sorted(r.label for r in load_runs([tmp_path])) == [
        "org/m ie_seed=0",
        "org/m ie_seed=1",
        "org/m ie_seed=2",
    ]
    replication = section(md, "Replication")
    row = next(r for r in table_rows(replication) if r[2] == "emergence")
    # by hand: mean 22.7667; deviations -0.1867, -0.2167, +0.4033; sd = sqrt(0.24447 / 2)
    assert statistics.stdev(IE) == pytest.approx(0.349619, abs=1e-6)
    assert row == ["org/m", "emergence_icl_country", "emergence", "3", "ie_seed 0, 1, 2",
                   "22.767", "0.053", "0.350", "6.6"]  # fmt: skip
    # one row in Results, never three points of a correlation or a leaderboard
    assert len(table_rows(section(md, "Results"))) == 1
    assert "## Intrinsic metrics against ability" not in md and "## Leaderboard" not in md
    assert "settings differ" not in md and len(need_lines(md)) == 1


def test_data_seed_repeats_are_replicates_too(tmp_path):
    for seed in (1, 2):
        make_run(tmp_path, f"d{seed}", model="org/m", layers_e=(seed, seed), data_seed=seed)
    reps = replicates(tidy(load_runs([tmp_path])))
    ie = reps[reps["key"] == "emergence"]
    assert len(ie) == 1 and ie["runs"].item() == 2 and ie["seeds"].item() == "data_seed 1, 2"
    assert ie["sd"].item() == pytest.approx(statistics.stdev([1.0, 2.0]))
    # the replicate's ± is the larger of its mean ± (0.05) and the seeds' sd (0.707)
    assert ie["se"].item() == pytest.approx(0.70710678)


# ------------------------------------------------------------------------------ leaderboard


def test_rank_intervals_of_a_hand_worked_chain():
    # 3.0, 2.8, 2.6, each ± 0.1: two combined se = 0.283; neighbours (0.2 apart) are not
    # ordered, the ends (0.4 apart) are
    assert rank_intervals([3.0, 2.8, 2.6], [0.1, 0.1, 0.1]) == [(1, 2), (1, 3), (2, 3)]
    assert [rank_text(*r) for r in [(1, 2), (3, 3)]] == ["1–2", "3"]
    assert rank_intervals([1.0, 5.0], [None, float("nan")]) == [(2, 2), (1, 1)]


#: Four models: (IE, ±, acc). A−B = 0.2 < 2·√(0.1² + 0.1²) = 0.283: they share ranks 1–2;
#: B−C = 0.8 > 2·√(0.1² + 0.2²) = 0.447; C−D = 2.0 > 2·√(0.2² + 0.3²) = 0.721.
MODELS = {
    "org/a": (10.0, 0.1, 0.9),
    "org/b": (9.8, 0.1, 0.7),
    "org/c": (9.0, 0.2, 0.8),
    "org/d": (7.0, 0.3, 0.1),
}


def test_leaderboard_of_four_models_ranks_them_with_hand_worked_intervals(tmp_path):
    for i, (name, (ie, se, acc)) in enumerate(MODELS.items()):
        make_run(tmp_path, f"r{i}", model=name, layers_e=(ie, ie), ie_stderr=se, acc=acc,
                 n_parameters=10 ** (6 + (3 - i)))  # fmt: skip
    out = tmp_path / "out"
    md = build_report([tmp_path], out, bootstrap=50).read_text()
    rows = table_rows(section(md, "Leaderboard").split("### emergence_icl_country\n", 1)[1])
    assert [(r[0], r[1]) for r in rows] == [
        ("1–2", "org/a"),
        ("1–2", "org/b"),
        ("3", "org/c"),
        ("4", "org/d"),
    ]
    csv = pd.read_csv(out / "leaderboard.csv")
    assert list(csv["best"]) == [1, 1, 3, 4] and list(csv["worst"]) == [2, 2, 3, 4]
    # the CSV is the table: the same models, ranks and numbers, in the same order
    assert list(csv["rank"]) == [r[0] for r in rows] and list(csv["model"]) == [r[1] for r in rows]
    assert [plus_minus(v, s) for v, s in zip(csv["emergence"], csv["emergence_stderr"],
                                             strict=True)] == [r[3] for r in rows]  # fmt: skip
    assert [plus_minus(v, s) for v, s in zip(csv["acc"], csv["acc_stderr"], strict=True)] == [
        r[4] for r in rows
    ]
    assert list(csv["emergence"]) == pytest.approx([v[0] for v in MODELS.values()])
    # and runs.csv holds every run's numbers: one cut the report does not draw
    runs = pd.read_csv(out / "runs.csv")
    ie = runs[runs["metric"] == "emergence"].set_index("model")["value"]
    assert ie.to_dict() == pytest.approx({m: v[0] for m, v in MODELS.items()})
    # four models, one size each: a correlation and a series, nothing said to be missing
    assert "## Intrinsic metrics against ability" in md and "series_params.png" in md
    assert "## Across models" not in md


def test_models_measured_differently_share_no_leaderboard(tmp_path):
    make_run(tmp_path, "a", model="org/a", layers_e=(2.0, 2.0), n=200)
    make_run(tmp_path, "b", model="org/b", layers_e=(3.0, 3.0), n=500)
    make_run(tmp_path, "c", model="org/c", layers_e=(4.0, 4.0), n=500)
    md = build_report([tmp_path], tmp_path / "out", bootstrap=50).read_text()
    board = section(md, "Leaderboard")
    assert "### emergence_icl_country (N=500)" in board and "N=200" not in board
    rows = table_rows(board.split("(N=500)\n", 1)[1])
    assert [r[1] for r in rows] == ["org/c", "org/b"]


def test_a_series_holds_one_model_per_size(tmp_path):
    # four sizes, and a second model at one of them (a random-weights copy): not one series
    for i in range(4):
        make_run(tmp_path, f"r{i}", model=f"org/m{i}", n_parameters=10 ** (6 + i),
                 layers_e=(i, i), acc=0.2 * i)  # fmt: skip
    make_run(tmp_path, "random", model="org/m0-random", n_parameters=10**6, acc=0.0)
    md = build_report([tmp_path], tmp_path / "out", bootstrap=50).read_text()
    series = section(md, "Intrinsic and ability metrics against parameter count")
    assert series.strip().startswith(
        "Not a series: emergence_icl_country has several models of one size (org/m0, "
        "org/m0-random); a series holds one model per size."
    )
    assert "series_params.png" not in md
