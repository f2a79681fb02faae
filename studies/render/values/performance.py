"""The values docs/performance.md prints, from the benchmarks' committed results
(studies/benchmarks/results; see studies/render/values/__init__.py).

One namespace per section: `machine` (the CPU runs' machine), `estimators` (section 1),
`profile` (section 2), `harness` and `before_issue_9` (section 3), `scale` and `gpu` (section 4),
`memory` and `per_document` (section 6).
Where the prose makes a claim about a set of cases (which ones meet a target), the claim is
checked here: a result that no longer supports it stops the rendering instead of printing it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import SimpleNamespace as NS

from lm_eval_emergence.settings import DEFAULT_IE_PROTOCOL, EstimationSettings
from studies.benchmarks.estimators import CASES
from studies.benchmarks.scale import SHAPES
from studies.render.formatting import grouped, num
from studies.render.values.common import BENCHMARKS, claim_holds, json_file

TRAINED = ("infonce", "mine", "smile")  # the trained bounds run on the CPU, table order
COLUMNS = ("gaussian", *TRAINED, "mine-paper")
WIDE = 768  # the dimension where mine-paper's 300-step value is its bias (the table's *)
VOCAB = 49_152  # SmolLM2's tokenizer, with which scale.py builds every shape
BF16_FLOPS = 989e12  # the H200's dense bf16 peak (NVIDIA's data sheet), for the 7B forecast
GPU_USE = 0.4  # the share of that peak the forecast assumes
GPU_DOCS = 300_000  # the N of the issue's goal (gpu_scale.sh)
PEAK_GOAL_GB = 1.0  # issue 35's goal for the README command's peak
CONTINUOUS = {name for name, *_, nonlinear in CASES if nonlinear != "discrete"}


def _require(condition: bool, claim: str) -> None:
    claim_holds("docs/performance.md", condition, claim)


def _series(texts: list[str]) -> str:
    """Several items in prose: 'a, b and c'."""
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]


def _same(values: list[float], digits: int) -> float:
    """The one value several numbers print as (the prose says they read the same)."""
    _require(len({num(v, digits) for v in values}) == 1, f"{values} read the same")
    return values[0]


def _sig(value: float, figures: int = 2) -> str:
    """`value` rounded to `figures` significant figures, with thousands separators."""
    places = figures - 1 - math.floor(math.log10(abs(value)))
    return grouped(round(value, places), max(places, 0))


def _sci(value: float) -> str:
    """`value` in the prose's scientific notation: 6.9e9."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _typed(text: str, digits: int) -> str:
    """A number a benchmark printed as text, rounded half up to `digits` decimals."""
    rounded = Decimal(text).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return num(float(rounded), digits)


def _markdown_rows(path: Path) -> list[dict[str, str]]:
    """The rows of the Markdown table in a benchmark's text output, by column name."""
    lines = [s for s in path.read_text(encoding="utf-8").splitlines() if s.startswith("| ")]
    header, *rows = [[c.strip() for c in s.strip("|").split("|")] for s in lines]
    return [dict(zip(header, row, strict=True)) for row in rows]


# Section 1: estimators against closed-form MI -------------------------------------------------


def _by_case(path: Path) -> dict[str, dict[str, dict]]:
    """An estimators benchmark's rows, by case and method (mine-paper-300 as mine-paper)."""
    out: dict[str, dict[str, dict]] = {}
    for row in json_file(path):
        method = "mine-paper" if row["method"].startswith("mine-paper") else row["method"]
        out.setdefault(row["case"], {})[method] = row
    return out


def _seconds(row: dict, column: str) -> str:
    """A table cell's seconds: the gaussian's to a tenth (or a hundredth), the others whole."""
    if column != "gaussian":
        return num(row["seconds"], 0)
    tenths = num(row["seconds"], 1)
    return num(row["seconds"], 2) if tenths == "0.0" else tenths


def _cell(row: dict, column: str, best: bool, star: bool) -> str:
    """'error (estimate) seconds s', the error in bold for the row's most accurate method."""
    digits = 1 if row["error"] >= 10 else 2
    error = num(row["error"], digits)
    error = f"**{error}**" if best else error
    bits = num(row["bits"], digits)
    if row["diverged"]:
        return f"{error} ({bits}, flagged diverged)"
    return f"{error} ({bits}){'*' if star else ''} {_seconds(row, column)} s"


def _table(cases: dict[str, dict[str, dict]]) -> list[str]:
    """Section 1's table rows: per case its label and one cell per method of COLUMNS."""
    out = []
    for name, d, k, _, _ in CASES:
        rows = cases[name]
        best = min(COLUMNS, key=lambda c: rows[c]["error"])
        label = f"{name}, k={k}" if name.startswith("gauss-") else name
        cells = [_cell(rows[c], c, c == best, c == "mine-paper" and d == WIDE) for c in COLUMNS]
        out.append(" | ".join([f"| {label} ({num(rows['gaussian']['true'], 1)})", *cells]) + " |")
    return out


def _estimators() -> NS:
    """Section 1: the table, its footnote, the seed spreads, the targets and the defaults."""
    copula = _by_case(BENCHMARKS / "estimators_cpu_gaussian_copula.json")
    cases = _by_case(BENCHMARKS / "estimators_cpu.json")
    for name in cases:
        cases[name]["plain"] = cases[name].pop("gaussian")  # measured before the copula
        cases[name]["gaussian"] = copula[name]["gaussian"]
    dims = {name: d for name, d, *_ in CASES}
    paper = {name: rows["mine-paper"] for name, rows in cases.items()}
    wide = [paper[n] for n in cases if dims[n] == WIDE]
    long_run = _markdown_rows(BENCHMARKS / "mine_paper_10000_h200.txt")
    ceiling = _same([float(r["ceiling"]) for r in long_run], 2)
    plain_continuous = [n for n in cases if n != "cubic-64" and not cases[n]["plain"]["diverged"]]
    gaussian_spreads = [cases[n]["plain"]["spread"] for n in plain_continuous]
    trained = [cases[n][m] for n in cases for m in TRAINED]
    _require(
        all(r["bits"] == 0 for r in trained if r["spread"] == 0),
        "a trained bound's spread is 0 only where it reads 0 bits",
    )
    return NS(
        table=_table(cases),
        plain=NS(
            cubic=cases["cubic-64"]["plain"]["bits"],
            max_change=max(
                abs(cases[n]["plain"]["bits"] - cases[n]["gaussian"]["bits"])
                for n in plain_continuous
            ),
        ),
        paper=NS(
            wide=_same([r["bits"] for r in wide], 1),
            wide_truths=[r["true"] for r in wide],
            independent=paper["independent-256"]["bits"],
        ),
        long_run=NS(
            bits=_series([_typed(r["estimate"], 1) for r in long_run]),
            truths=_series([f"{_typed(r['true bits'], 0)}-" for r in long_run])[:-1],
            above=sum(float(r["estimate"]) > ceiling for r in long_run),
            ceiling=ceiling,
        ),
        spread=NS(
            gaussian=(min(gaussian_spreads), max(gaussian_spreads)),
            trained=(
                min(r["spread"] for r in trained if r["spread"] > 0),
                max(r["spread"] for r in trained),
            ),
        ),
        targets=_targets(cases),
        defaults=_defaults(cases),
    )


def _targets(cases: dict[str, dict[str, dict]]) -> NS:
    """The issue's targets for the default (the copula gaussian), case by case."""
    gauss = {n: rows["gaussian"] for n, rows in cases.items()}
    half = [
        n for n, rows in cases.items() if gauss[n]["error"] <= 0.5 * rows["mine-paper"]["error"]
    ]
    close = [n for n, g in gauss.items() if g["error"] <= max(0.5, 0.1 * g["true"])]
    _require(
        set(cases) - set(half) == {"gauss-768-low", "discrete-32-det"},
        "the gaussian misses half of mine-paper's error on gauss-768-low and discrete-32-det only",
    )
    _require(
        set(cases) - set(close)
        == {"gauss-768-low", "gauss-768-high", "coupling-64", "discrete-32-det"},
        "the gaussian misses max(0.5 bit, 10 %) on the 768-dim, coupling and discrete cases only",
    )
    faster = [rows["mine-paper"]["seconds"] / gauss[n]["seconds"] for n, rows in cases.items()]
    return NS(
        half=len(half),
        cases=len(cases),
        close=_series(close),
        coupling=gauss["coupling-64"],
        faster=(_sig(min(faster)), _sig(max(faster))),
    )


def _defaults(cases: dict[str, dict[str, dict]]) -> NS:
    """Why the defaults: the gaussian's accuracy and speed, the trained bounds' read-outs."""
    dependent = [n for n, rows in cases.items() if rows["gaussian"]["true"] > 0 and n in CONTINUOUS]
    for n in dependent:
        best = min(COLUMNS, key=lambda c: cases[n][c]["error"])
        _require(
            best == "gaussian" or n == "gauss-768-low",
            f"the gaussian is the most accurate on {n}",
        )
    accuracy = [min(cases[n][m]["error"] for m in TRAINED) / cases[n]["gaussian"]["error"]
                for n in dependent]  # fmt: skip
    speed = [min(rows[m]["seconds"] for m in TRAINED) / rows["gaussian"]["seconds"]
             for rows in cases.values()]  # fmt: skip
    _require(min(speed) > 1, "the gaussian is the fastest method on every case")
    return NS(
        accuracy=accuracy,
        speed=(_sig(min(speed)), _sig(max(speed))),
        infonce_discrete=cases["discrete-32-det"]["infonce"],
        infonce_independent=cases["independent-256"]["infonce"]["bits"],
        smile_discrete=cases["discrete-32-det"]["smile"],
    )


# Section 2: the full IE profile of SmolLM2-135M -----------------------------------------------


def _profile() -> NS:
    """Section 2: the quiet run's timings and what its per-block table shows."""
    record = json_file(BENCHMARKS / "emergence_profile_smollm2.json")
    result, seconds = record["result"], record["timings_s"]
    blocks = result["per_layer"]
    e_values = Counter(round(b["emergence_bits"], 2) for b in blocks)
    forward = seconds["macro capture"] + seconds["micro capture"]
    pairs = len(blocks) * (1 + result["seq_len"])  # per block: the macro pair, a micro per token
    _require(result["n_estimates"] + result["n_exact_zero"] == pairs, "the pairs add up")
    return NS(
        result=result,
        seconds=NS(
            load=seconds["model load"],
            lists=seconds["data (ICL lists)"],
            macro=seconds["macro capture"],
            micro=seconds["micro capture"],
            estimation=seconds["estimation"],
            total=seconds["total"],
        ),
        peak_gb=record["peak_rss_gib"],
        forward_share=forward / seconds["total"],
        estimation_share=seconds["estimation"] / seconds["total"],
        blocks=len(blocks),
        pairs=pairs,
        micro_pairs=len(blocks) * result["seq_len"],
        macro_rest=[b["macro_bits"] for b in blocks[1:]],
        rest_from=blocks[1]["layer"],
        rest_to=blocks[-1]["layer"],
        heldout_rows=2 ** result["ceiling_bits"],
        micro=_same([b["micro_bits"] for b in blocks], 2),
        e_mode=e_values.most_common(1)[0][0],
    )


# Section 3: in lm-eval ------------------------------------------------------------------------


def _harness() -> NS:
    """Section 3: lm-eval's loglikelihood pass against the plugin's emergence pass."""
    record = json_file(BENCHMARKS / "harness_overhead_smollm2.json")
    batches = math.ceil(record["docs"] / record["batch_size"])
    return NS(
        **record,
        docs_per_s_loglikelihood=record["docs"] / record["seconds_loglikelihood"],
        docs_per_s_emergence=record["docs"] / record["seconds_emergence"],
        seconds_per_batch=_same(
            [record["seconds_loglikelihood"] / batches, record["seconds_emergence"] / batches], 1
        ),
    )


def _match(pattern: str, text: str) -> re.Match:
    """The first match of `pattern` in a benchmark's text output (an error without one)."""
    found = re.search(pattern, text, re.M)
    if found is None:
        raise ValueError(f"lm_eval_emergence_icl_smollm2.txt holds no {pattern!r}")
    return found


def _before_issue_9() -> NS:
    """Section 3: the README's command with InfoNCE (lm_eval_emergence_icl_smollm2.txt)."""
    text = (BENCHMARKS / "lm_eval_emergence_icl_smollm2.txt").read_text(encoding="utf-8")
    clock = _match(r"real\s+(?P<minutes>\d+)m(?P<seconds>[\d.]+)s", text)
    wall = round(60 * int(clock["minutes"]) + float(clock["seconds"]))
    forward = _match(
        r"forward passes.*: (?P<total>\d+) s = micro table (?P<micro>\d+) s \+ macro country "
        r"\(T=\d+\) (?P<country>\d+) s \+ macro animal\+colour \(T=\d+\) (?P<animal_colour>\d+) s",
        text,
    )
    pairs = dict(re.findall(r"(country|animal|colour) \d+ s \((\d+) pairs\)", text))
    tasks = {
        name.replace("color", "colour"): NS(docs=int(docs), seconds=float(s), ie=float(ie))
        for name, docs, s, ie in re.findall(
            r"# emergence_icl_(\w+): docs (\d+), estimation ([\d.]+) s, IE ([\d.]+)", text
        )
    }
    for name, task in tasks.items():
        task.pairs = int(pairs[name])
    return NS(
        minutes=wall // 60,
        seconds=wall % 60,
        forward=NS(**{step: int(s) for step, s in forward.groupdict().items()}),
        tasks=tasks,
        pairs=sum(t.pairs for t in tasks.values()),
        docs=sum(t.docs for t in tasks.values()),
        rest=int(_match(r"rest \(.*\): about (\d+) s", text)[1]),
        estimation_share=sum(t.seconds for t in tasks.values()) / wall,
        ie=[t.ie for t in tasks.values()],
        acc=float(_match(r"^\|emergence_icl\s*\|.*?\|acc\s*\|[^|]*\|\s*([\d.]+)\|", text)[1]),
    )


# Section 4: at scale --------------------------------------------------------------------------


def _llama_parameters(config: dict, vocab: int) -> int:
    """The parameters of a LlamaForCausalLM of `config` (untied head), as scale.py builds it."""
    d, layers = config["hidden_size"], config["num_hidden_layers"]
    kv = d // config["num_attention_heads"] * config["num_key_value_heads"]
    block = 2 * d * d + 2 * d * kv + 3 * d * config["intermediate_size"] + 2 * d
    return 2 * vocab * d + layers * block + d


def _scale() -> NS:
    """Section 4: the tiny shape at N = 300,000 and the 1B shape, both on the CPU."""
    tiny = json_file(BENCHMARKS / "scale_tiny_cpu.json")
    one_b = json_file(BENCHMARKS / "scale_1b_cpu.json")
    for record in (tiny, one_b):
        _require(
            record["n_parameters"] == _llama_parameters(record["config"], VOCAB),
            f"the {record['shape']} shape's parameters are counted as scale.py builds it",
        )
    (big,) = tiny["runs"]
    width = tiny["config"]["hidden_size"]  # no projection: the states are the model's width
    per_block = big["moments_bytes"] / tiny["config"]["num_hidden_layers"]  # one position each
    plumbing = big["seconds_wall"] - big["seconds_forward"] - big["seconds_estimation"]
    last = one_b["runs"][-1]
    return NS(
        tiny=tiny,
        big=big,
        width=width,
        moments_per_block=per_block,
        moments_mib_per_block=per_block / 2**20,
        plumbing=plumbing,
        plumbing_ms=1000 * plumbing / big["docs"],
        one_b=one_b,
        forward_ms=1000 * last["seconds_forward"] / last["docs"],
    )


def _gpu(scale: NS, tokens: int) -> NS:
    """Section 4: what the CPU numbers let one expect of the 7B shape on one H200."""
    config = SHAPES["7b"]
    parameters = _llama_parameters(config, VOCAB)
    flop = GPU_DOCS * tokens * 2 * parameters
    return NS(
        docs=GPU_DOCS,
        parameters=_sci(parameters),
        flop=_sci(flop),
        minutes=flop / (GPU_USE * BF16_FLOPS) / 60,
        use=GPU_USE,
        weights_gb=2 * parameters / 1e9,  # bf16
        blocks=config["num_hidden_layers"],
        folds=EstimationSettings.of_protocol(DEFAULT_IE_PROTOCOL).folds,
        width=2 * scale.width,
        moments_mib=config["num_hidden_layers"] * scale.moments_per_block / 2**20,
    )


def _bias_correction() -> NS:
    """Section 5's table (bias_correction.json), and the cells its reading names."""
    data = json_file(BENCHMARKS / "bias_correction.json")
    rows = [NS(**r) for r in data["rows"]]

    def misses(estimator: str, bias: str) -> set[tuple[int, int]]:
        return {
            (r.k, r.n) for r in rows if r.estimator == estimator and abs(r.errors[bias]) > r.gate
        }

    floor, vlin = "gaussian-floor", "v-linear"
    _require(not misses(floor, "jackknife"), "the jackknife lands in the gate in every cell")
    _require(misses(floor, "none") == {(32, 256), (64, 256), (64, 1024)}, "three plug-in misses")
    _require(misses(floor, "analytic") == {(64, 256)}, "the analytic misses at k 64, N 256")
    held = {(r.k, r.n) for r in rows if r.estimator == vlin} - misses(vlin, "jackknife")
    _require(
        held == {(8, 1024), (8, 4096), (8, 8192), (32, 4096), (32, 8192), (64, 4096), (64, 8192)},
        "v-linear's correction holds at N >= 1,024 for k 8 and N >= 4,096 for k 32 and 64",
    )
    _require(not misses(vlin, "none") & {(8, 1024), (8, 4096), (8, 8192)}, "k 8's plug-in holds")
    _require((64, 4096) in misses(vlin, "none"), "k 64's plug-in misses at N 4,096")
    return NS(reps=data["reps"], rows=rows)


def _memory() -> NS:
    """Section 6: the README command's peak phase by phase, before issue 35 and after, with
    lm-eval's own `--model hf` run measured in the same run of the benchmark."""
    before = json_file(BENCHMARKS / "memory_smollm2_before.json")
    after = json_file(BENCHMARKS / "memory_smollm2.json")
    rows = {r["phase"]: r for r in before["plugin"]["phases"]}
    phases = [
        NS(
            phase=r["phase"],
            before=rows[r["phase"]]["peak_kb"] / 1e6,
            after=r["peak_kb"] / 1e6,
            after_end=r["end_kb"] / 1e6,
        )
        for r in after["plugin"]["phases"]
    ]
    ordered = {r["phase"]: r["peak_kb"] / 1e6 for r in after["plugin"]["phases"]}
    _require(after["plugin"]["peak_gb"] > PEAK_GOAL_GB, "the 1.0 GB goal is not met")
    return NS(
        before=before,
        after=after,
        phases=phases,
        docs=after["docs"],
        floor=ordered["load"],
        capture=ordered["capture"],
        estimation=ordered["estimation"],
        below_hf=after["plugin"]["peak_gb"] < after["hf"]["peak_gb"],
        ratio_hf=after["plugin"]["peak_gb"] / after["hf"]["peak_gb"],
    )


def _per_document(gpu: NS) -> NS:
    """Section 6: the plugin's cost a document against lm-eval's own loglikelihood task of the
    same documents, and the 7B forecast's per-document share restated with it."""
    record = json_file(BENCHMARKS / "per_document_tiny_cpu.json")
    plugin, lm_eval = record["summary"]["plugin"], record["summary"]["lm-eval"]
    return NS(
        record=record,
        small=record["docs"][0],
        large=record["docs"][1],
        plugin=plugin,
        lm_eval=lm_eval,
        ratios=record["ratios"],
        gpu_seconds=plugin["ms_per_doc"] * gpu.docs / 1000,
    )


def values() -> dict:
    """The namespace of docs/performance.md's template."""
    harness = _harness()
    scale = _scale()
    cpus = {r["cpus"] for r in (json_file(BENCHMARKS / "harness_overhead_smollm2.json"),
                                scale.tiny, scale.one_b)}  # fmt: skip
    (cores,) = cpus
    gpu = _gpu(scale, harness.tokens_per_doc)  # scale.py's documents: the same lists
    return {
        "machine": NS(cores=cores, torch=scale.tiny["torch"].split("+")[0]),
        "estimators": _estimators(),
        "profile": _profile(),
        "harness": harness,
        "before_issue_9": _before_issue_9(),
        "scale": scale,
        "gpu": gpu,
        "memory": _memory(),
        "per_document": _per_document(gpu),
        "bias": _bias_correction(),
    }
