"""The values reproduction prints (see studies/render/values/__init__.py).

Every number of docs/reproduction.md comes from studies/reproduction/results/: claims.json
(written by studies/reproduction/claims.py from the runs' files), the lm-eval results and
sidecars of the harness runs (runs/), the scored texts (text/, text_runs/) and the paper's
protocol (paper_runs/); the family's from studies/validity/results/probe_family.json, the
N-change it quotes from the validity probes.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

from scipy import stats

from lm_eval_emergence.estimators.paper import PaperConfig
from studies.models import DEFAULT_MODEL, QWEN_05, QWEN_15
from studies.render.formatting import num, span
from studies.render.values.common import FLOOR_UPDATE, REPRODUCTION, json_file, probe
from studies.render.values.method_notes import largest_fall

#: What the paper states (arXiv 2405.12617), quoted here, not measured: the number of sequences
#: its estimates use (the document sets N = 512 against it); its MINE step count is the code's
#: own (`PaperConfig.steps`, the protocol `ie_protocol=paper`).
PAPER = {"sequences": 300_000, "steps": PaperConfig().steps}

#: git's record of the commits the order of events names (`git log -1 --date=iso <id>`), not a
#: results file: the commit of the rules, before the results, and the one that cut text scoring.
COMMITS = SimpleNamespace(
    rules=SimpleNamespace(id="deb4ff6", date="2026-12-02", time="15:56"),
    text_cut=SimpleNamespace(id="7fba84a", time="16:29"),
    results=SimpleNamespace(id="b67032c"),  # the results, with the costs no file kept
)

#: The runs of the size series, smallest first, with their titles in claims.json (claims.py's
#: MODELS; not imported, as claims.py imports the report package).
MODELS = {"smollm2": "SmolLM2-135M", "qwen05": "Qwen2.5-Coder-0.5B", "qwen15": "Qwen2.5-Coder-1.5B"}
TRAINED = tuple(MODELS)
RUNS = tuple(f"{name}{suffix}" for name in TRAINED for suffix in ("", "-random"))
#: The short names the curves' and outcomes' tables use.
SHORT = {"smollm2": "SmolLM2-135M", "qwen05": "Qwen-0.5B", "qwen15": "Qwen-1.5B"}
#: The prompts of the text step (run.sh: --n 192), before texts too short to score are dropped.
PROMPTS = 192
#: The shots the shot table shows (a choice of the document: 7 and 9 left out for width).
SHOWN_SHOTS = (1, 2, 3, 4, 5, 6, 8, 10)


def _claims() -> dict:
    """studies/reproduction/results/claims.json."""
    return json_file(REPRODUCTION / "claims.json")


def _only(paths: list[Path]) -> Path:
    """The one file of a kept run (run.sh keeps one results file and one sidecar)."""
    (path,) = paths
    return path


def _results_file(kind: str, run: str) -> Path:
    """The lm-eval results file of a kept run under results/<kind>/<run>/."""
    return _only(sorted((REPRODUCTION / kind / run).glob("results_*.json")))


def _lm_eval(kind: str, run: str) -> dict:
    """A kept run's whole lm-eval results file."""
    return json_file(_results_file(kind, run))


def _sidecar(kind: str, run: str) -> dict:
    """A kept run's sidecar (emergence_*.json): per task its timings, blocks and result."""
    return json_file(_only(sorted((REPRODUCTION / kind / run).glob("emergence_*.json"))))


def _minutes(kind: str) -> float:
    """The summed lm-eval time (total_evaluation_time_seconds) of every run under <kind>/."""
    runs = sorted(p.name for p in (REPRODUCTION / kind).iterdir() if p.is_dir())
    return sum(float(_lm_eval(kind, r)["total_evaluation_time_seconds"]) for r in runs) / 60


def _stamp(run: str) -> str:
    """The time of day in a harness run's results file name (results_<date>T<HH-MM-SS>...)."""
    stem = _results_file("runs", run).name.removeprefix("results_").removesuffix(".json")
    return datetime.strptime(stem, "%Y-%m-%dT%H-%M-%S.%f").strftime("%H:%M:%S")


def _blocks(run: str) -> int:
    """How many blocks a harness run measured (every block of its model)."""
    return len(_sidecar("runs", run)["tasks"]["emergence_icl_country"]["result"]["layers"])


def _size(n_parameters: int) -> str:
    """A parameter count as the tables print it: 135M, 630M, 1.78B."""
    return f"{n_parameters / 1e9:.2f}B" if n_parameters >= 1e9 else f"{n_parameters / 1e6:.0f}M"


def _rho(x: list[float], y: list[float]) -> float:
    """Spearman's ρ."""
    return float(stats.spearmanr(x, y).statistic)


def _separation(a: tuple[float, float], b: tuple[float, float]) -> float:
    """(a − b) in standard errors of the difference, the two taken independent."""
    return (a[0] - b[0]) / math.hypot(a[1], b[1])


def _task(run: str, task: str) -> tuple[float, float]:
    """(IE, stderr) of a harness run's task, from its lm-eval results."""
    res = _lm_eval("runs", run)["results"][task]
    return res["emergence,none"], res["emergence_stderr,none"]


def _icl_acc(run: str) -> float:
    """A harness run's ICL accuracy over the three categories (the `emergence_icl` group)."""
    return _lm_eval("runs", run)["results"]["emergence_icl"]["acc,none"]


def _n_docs(run: str) -> int:
    """The documents per ICL task of a harness run (N)."""
    return _lm_eval("runs", run)["n-samples"]["emergence_icl_country"]["effective"]


def _cloze(run: str) -> SimpleNamespace | None:
    """A run's cloze accuracy, its stderr and item count (None where the task did not run)."""
    res = _lm_eval("runs", run)["results"].get("emergence_cloze")
    if res is None:
        return None
    items = res["sample_len"]
    # 3 decimals at 512 items, 2 at 100 (the digits the spread allows)
    return SimpleNamespace(
        acc=res["acc,none"], stderr=res["acc_stderr,none"], items=items, digits=3 - (items < 500)
    )


def _positions(values: list[float]) -> str:
    """E per position as the text lists it: an exact 0 as 0, the rest with 2 decimals."""
    return ", ".join("0" if v == 0 else num(v, 2) for v in values)


def _range(values: list[float], digits: int) -> str:
    """The range of `values` as `span` prints it, or one number where both ends print alike."""
    low, high = num(min(values), digits), num(max(values), digits)
    return low if low == high else span(values, digits)


def _rising_from(values: list[float]) -> int:
    """The first position from which `values` rise at every step to the end."""
    start = len(values) - 1
    while start > 0 and values[start - 1] < values[start]:
        start -= 1
    return start


def numbers() -> SimpleNamespace:
    """The table of numbers: one row per run, from the lm-eval results and claims.json."""
    rows = []
    by_model = {r["model"]: r for r in _claims()["size"]["rows"]}
    for name, title in MODELS.items():
        for suffix, kind in (("", "trained"), ("-random", "random init")):
            run, row = f"{name}{suffix}", by_model[f"{title} ({kind})"]
            rows.append(
                SimpleNamespace(
                    label=title if not suffix else "its random control",
                    parameters=_size(row["n_parameters"]),
                    icl=_task(run, "emergence_icl"),
                    icl_acc=row["icl_acc"],
                    cloze=_cloze(run),
                    shots=_task(run, "emergence_icl_shots"),
                    natural=_task(run, "emergence_natural"),
                )
            )
    params = {
        r["model"].removesuffix(" (trained)"): r["n_parameters"]
        for r in by_model.values()
        if r["series"] == "pretrained"
    }
    return SimpleNamespace(
        rows=rows, parameters={name: _size(params[title]) for name, title in MODELS.items()}
    )


def size() -> SimpleNamespace:
    """Claim 1: IE, ICL and cloze accuracy against size; the gaps to the random controls."""
    claims = _claims()["size"]
    rows = claims["rows"]
    trained = [r for r in rows if r["series"] == "pretrained"]
    family = [r for r in rows if r["series"] == "family"]
    ie = [_task(n, "emergence_icl") for n in TRAINED]
    control = [_task(f"{n}-random", "emergence_icl") for n in TRAINED]
    params = [math.log(r["n_parameters"]) for r in trained]
    icl_acc = [r["icl_acc"] for r in trained]
    cloze = [_cloze(n) for n in TRAINED]
    correlations = claims["correlations"]
    pooled = correlations["all models and checkpoints"]["ie_vs_parameters"]
    within = correlations["family checkpoints (probe_family.json)"]
    return SimpleNamespace(
        ie=[v for v, _ in ie],
        control_ie=[v for v, _ in control],
        icl_acc=icl_acc,
        cloze=", ".join(num(c.acc, c.digits) for c in cloze),
        ie_vs_size=_rho(params, [v for v, _ in ie]),
        ie_vs_icl_acc=_rho(icl_acc, [v for v, _ in ie]),
        ie_vs_cloze=_rho([c.acc for c in cloze], [v for v, _ in ie]),
        icl_acc_vs_size=_rho(params, icl_acc),
        cloze_vs_size=_rho(params, [c.acc for c in cloze]),
        gaps=[t[0] - c[0] for t, c in zip(ie, control, strict=True)],
        gaps_se=[round(_separation(t, c), -1) for t, c in zip(ie, control, strict=True)],
        runs=len(rows) - len(family),
        checkpoints=len(family),
        pooled=(pooled["spearman"], *pooled["ci95"]),
        family_ie=[r["ie_bits"] for r in family],
        family_vs_size=(
            within["ie_vs_parameters"]["spearman"],
            *within["ie_vs_parameters"]["ci95"],
        ),
        family_vs_acc=(within["ie_vs_icl_acc"]["spearman"], *within["ie_vs_icl_acc"]["ci95"]),
    )


def curves() -> SimpleNamespace:
    """Claim 2 (the shot and position curves) and claim 3's spread over blocks per shot."""
    data = _claims()["curves"]
    rows = []
    for name in TRAINED:
        for key, label in ((name, SHORT[name]), (f"{name}-random", "its control")):
            shot = data[key]["shot_emergence_bits"]
            rows.append(SimpleNamespace(label=label, values=[shot[s - 1] for s in SHOWN_SHOTS]))
    shot = {k: data[k]["shot_emergence_bits"] for k in RUNS}
    qwen05 = shot["qwen05"]
    step_from = qwen05.index(min(qwen05))  # its lowest point, 0-based
    rises = [b - a for a, b in zip(qwen05, qwen05[1:], strict=False)]
    step_to = rises.index(max(rises)) + 1  # the end of its largest rise, 0-based
    last_five = {k: shot[k][-5:] for k in TRAINED}
    position = {k: data[k]["position_emergence_bits"] for k in RUNS}
    spread = {k: data[k]["shot_layer_std_bits"] for k in RUNS}
    shots_data = data["smollm2"]["shots_data"]
    return SimpleNamespace(
        shown=SHOWN_SHOTS,
        rows=rows,
        stderr=[v for k in RUNS for v in data[k]["shot_stderr_bits"]],
        peak={k: shot[k].index(max(shot[k])) + 1 for k in TRAINED},  # 1-based shots
        step=SimpleNamespace(
            first=step_from + 1, last=step_to + 1, low=qwen05[step_from], high=qwen05[step_to]
        ),
        last_five=SimpleNamespace(
            first=len(shot["smollm2"]) - 4,
            last=len(shot["smollm2"]),
            span={k: max(v) - min(v) for k, v in last_five.items()},
        ),
        lists=_sidecar("runs", "smollm2")["tasks"]["emergence_icl_shots"]["result"][
            "n_distinct_sequences"
        ],
        sequence_entropy=shots_data["sequence_entropy_bits"],
        positions={k: _positions(position[k]) for k in TRAINED},
        rising_from=_rising_from(position["qwen15"]),
        control_end=[position[f"{k}-random"][-1] for k in TRAINED],
        token_entropy=[v for k in RUNS for v in data[k]["natural_token_entropy_bits"][1:]],
        spread_first={k: spread[k][0] for k in RUNS},
        spread_last={k: spread[k][-1] for k in RUNS},
    )


def outcomes() -> SimpleNamespace:
    """Claim 3: IE by what the model does after the last shot, per trained model."""
    data = _claims()["outcomes"]
    shots_ie = {n: _task(n, "emergence_icl_shots")[0] for n in TRAINED}
    rows, above = [], []
    for name in TRAINED:
        groups = data[name]
        cells = []
        for group in ("correct", "repeat", "other"):
            g = groups[group]
            value = None if g["ie_bits"] is None else (g["ie_bits"], g["ie_stderr_bits"])
            cells.append(SimpleNamespace(value=value, docs=g["n_docs"]))
            if value is not None:
                above.append(value[0] - shots_ie[name])
        rows.append(SimpleNamespace(label=SHORT[name], cells=cells, used=groups["n_used"]))
    repeat = {}
    for name in TRAINED:
        c, r = data[name]["correct"], data[name]["repeat"]
        if r["ie_bits"] is not None:
            pair = ((r["ie_bits"], r["ie_stderr_bits"]), (c["ie_bits"], c["ie_stderr_bits"]))
            repeat[name] = SimpleNamespace(bits=pair[0][0] - pair[1][0], se=_separation(*pair))
    controls_other = {data[f"{n}-random"]["other"]["n_docs"] for n in TRAINED}
    (control_lists,) = controls_other  # every control's lists all "other"
    return SimpleNamespace(
        rows=rows,
        repeat=repeat,
        largest_repeat_se=max(abs(r.se) for r in repeat.values()),
        qwen15_repeats=data["qwen15"]["repeat"]["n_docs"],
        control_lists=control_lists,
        used=[data[n]["n_used"] for n in TRAINED],
        above_512=above,
    )


def text() -> SimpleNamespace:
    """Claim 4: SmolLM2's IE of each writer's texts, their token entropy, the fit on it."""
    claims = _claims()["text"]
    sets = {r["set"]: r for r in claims["rows"]}
    writers = []
    for writer, label in (*SHORT.items(), ("smollm2-random", "SmolLM2's random control")):
        g, s = sets[f"{writer}_greedy"], sets[f"{writer}_sampled"]
        writers.append(
            SimpleNamespace(
                label=label,
                greedy=(g["ie_bits"], g["ie_stderr_bits"]),
                sampled=(s["ie_bits"], s["ie_stderr_bits"]),
                entropy=(g["token_entropy_bits"], s["token_entropy_bits"]),
            )
        )
    human = sets["human"]
    random_sets = [r["ie_bits"] for k, r in sets.items() if k.startswith("smollm2-random")]
    others = [r["ie_bits"] for k, r in sets.items() if not k.startswith("smollm2-random")]
    greedy = [sets[f"{w}_greedy"] for w in TRAINED]
    sizes = [math.log(r["writer_parameters"]) for r in greedy]
    pairs = [(r["ie_bits"], r["ie_stderr_bits"]) for r in greedy]
    steps = [_separation(a, b) for a, b in zip(pairs, pairs[1:], strict=False)]
    fit = claims["ie_on_entropy_fit"]
    dropped = [
        PROMPTS - len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted((REPRODUCTION / "text").glob("*.jsonl"))
    ]
    (n_windows,) = {r["n_windows"] for r in claims["rows"]}
    return SimpleNamespace(
        writers=writers,
        human=SimpleNamespace(
            ie=(human["ie_bits"], human["ie_stderr_bits"]), entropy=human["token_entropy_bits"]
        ),
        greedy=[r["ie_bits"] for r in greedy],
        sampled=[sets[f"{w}_sampled"]["ie_bits"] for w in TRAINED],
        greedy_vs_size=_rho(sizes, [r["ie_bits"] for r in greedy]),
        greedy_steps_se=_range(steps, 1),
        trained=(
            claims["ie_vs_writer_size"]["spearman"],
            *claims["ie_vs_writer_size"]["ci95"],
        ),
        random_sets=random_sets,
        above_others=(min(random_sets) - max(others), max(random_sets) - min(others)),
        r2=fit["r2"],
        slope=fit["slope"],
        residual_vs_size=claims["residual_vs_writer_size"]["spearman"],
        dropped=dropped,
        prompts=PROMPTS,
        windows=n_windows,
    )


def paper() -> SimpleNamespace:
    """The paper's protocol (mine-paper, 300 steps, one block) beside the default's E there."""
    rows = []
    for row in _claims()["paper_protocol"]:
        (block,) = row["block"]
        trained = row["model"].endswith("(trained)")
        name = row["model"].split(" (")[0]
        short = next(SHORT[k] for k, title in MODELS.items() if title == name)
        rows.append(
            SimpleNamespace(
                label=short if trained else "its control",
                block=block,
                paper=(row["paper_ie_bits"], row["paper_ie_stderr_bits"]),
                default=row["default_block_bits"],
                acc=row["acc"],
                seconds=row["seconds_estimation"],
            )
        )
    pairs = list(zip(rows[::2], rows[1::2], strict=True))
    country = [
        _sidecar("runs", r)["tasks"]["emergence_icl_country"]["seconds_estimation"] for r in RUNS
    ]
    return SimpleNamespace(
        rows=rows,
        gap={SHORT[n]: t.paper[0] - c.paper[0] for n, (t, c) in zip(TRAINED, pairs, strict=True)},
        gap_se={
            SHORT[n]: _separation(t.paper, c.paper)
            for n, (t, c) in zip(TRAINED, pairs, strict=True)
        },
        trained_ie=[t.paper[0] for t, _ in pairs],
        default_gaps=[t.default - c.default for t, c in pairs],
        seconds=[r.seconds for r in rows],
        blocks=[_blocks(n) for n in TRAINED],
        default_seconds=country,
        qwen15_acc=next(r.acc for r in rows if r.label == SHORT["qwen15"]),
        qwen15_group_acc=_icl_acc("qwen15"),
    )


def costs() -> SimpleNamespace:
    """What the runs cost: wheels, lm-eval time per run and step, the 1.5B model's passes."""
    seconds = {r: float(_lm_eval("runs", r)["total_evaluation_time_seconds"]) for r in RUNS}
    tasks = _sidecar("runs", "qwen15")["tasks"]
    forward = {k.removeprefix("emergence_"): v["seconds_forward"] for k, v in tasks.items()}
    estimation = {k.removeprefix("emergence_"): v["seconds_estimation"] for k, v in tasks.items()}
    shots_estimation = estimation.pop("icl_shots")
    return SimpleNamespace(
        smollm2_wheels=len(DEFAULT_MODEL.distributions),
        qwen_wheels=len(QWEN_05.distributions) + len(QWEN_15.distributions),
        run={n: (seconds[n], seconds[f"{n}-random"]) for n in TRAINED},
        harness_minutes=_minutes("runs"),
        score_minutes=_minutes("text_runs"),
        paper_minutes=_minutes("paper_runs"),
        forward=forward,
        blocks=_blocks("qwen15"),
        estimation=list(estimation.values()),
        shots_estimation=shots_estimation,
        cloze_items={n: _cloze(n).items for n in TRAINED},
    )


def events() -> SimpleNamespace:
    """When the rules were committed against when the runs' results files were written."""
    return SimpleNamespace(
        commits=COMMITS,
        stamp={r: _stamp(r) for r in ("smollm2", "smollm2-random", "qwen05")},
    )


def departures() -> SimpleNamespace:
    """The cloze task's departures: items per run, the control's accuracy, the spread."""
    cloze = {r: _cloze(r) for r in RUNS}
    ran = [c for c in cloze.values() if c is not None]
    return SimpleNamespace(
        control=cloze["smollm2-random"],
        spread_512=_range([c.stderr for c in ran if c.items == cloze["smollm2"].items], 2),
        spread_100=_range([c.stderr for c in ran if c.items == cloze["qwen05"].items], 2),
        family_lists=_family_lists(),
        family_blocks=probe("probe_family")["settings"]["family_layers"],
    )


def _family_lists() -> int:
    """The held-out lists the family's IE is read on (probe_family.json)."""
    (n,) = {m["candidates"][FLOOR_UPDATE]["n"] for m in probe("probe_family")["models"]}
    return n


def unsettled() -> SimpleNamespace:
    """What the study does not settle: the Qwen pair, N against the paper's, the N-change."""
    records = [probe("probe_smollm2"), probe("probe_qwen")]
    return SimpleNamespace(
        qwen_ie_fall=_task("qwen05", "emergence_icl")[0] - _task("qwen15", "emergence_icl")[0],
        qwen_icl_fall=_icl_acc("qwen05") - _icl_acc("qwen15"),
        qwen_cloze_rise=_cloze("qwen15").acc - _cloze("qwen05").acc,
        below_paper=round(PAPER["sequences"] / _n_docs("smollm2"), -1),
        n_falls=[largest_fall(r) for r in records],
        n_read_at=[r["models"][0]["candidates"][FLOOR_UPDATE]["n"] for r in records],
    )


def values() -> dict:
    """The template's namespace."""
    return {
        "paper_settings": PAPER,
        "numbers": numbers(),
        "size": size(),
        "curves": curves(),
        "outcomes": outcomes(),
        "text": text(),
        "paper": paper(),
        "costs": costs(),
        "events": events(),
        "departures": departures(),
        "unsettled": unsettled(),
    }
