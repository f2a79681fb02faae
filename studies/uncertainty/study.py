"""Is every ± the standard error it claims to be, and does the default hold still in N?

The acceptance of issue 34, measured (docs/uncertainty.md states the plan and the results):

- `replication`: for each model, runs on `emergence_icl_country` (2,000 lists) that draw afresh
  what a repeat of the run draws: 8 whole repeats (data_seed = ie_seed = s: fresh lists, fresh
  projections and folds), 4 with only the lists fresh (data_seed) and 4 with only the
  projections and folds fresh (ie_seed). Per metric (IE, erank, matrix entropy) it compares the
  spread of the values with the mean reported ±. SmolLM2-135M and Qwen2.5-Coder-0.5B run through
  lm-eval with the plugin (`hf-emergence`, the task as a user runs it); the first trained
  family's width-128 model at its last checkpoint runs through the plugin's capture and
  estimation on its own held-out lists (its vocabulary is not a tokenizer's).
- `n-stability`: every model of the validity series (SmolLM2's and Qwen's weight-noise copies,
  interpolations toward and their random init, 4,096 lists, the validity study's 8 blocks) and
  of the two trained families, each captured once: IE at N and its N/2 check (the change from
  the mean of the two halves of the folds to N, with its standard error).

    python -m studies.uncertainty.study replication --json OUT/replication.json
    python -m studies.uncertainty.study n-stability --json OUT/n_stability.json

(`make uncertainty`, OUT studies/uncertainty/results). Each finished run is appended to a
journal (`--journal`, JSON lines) as it ends, and a run already in the journal is not run again:
a study interrupted after hours resumes where it stopped. A journal row may carry fewer metrics
than a run measures (rows recovered from an interrupted run's log carry IE only); a metric is
then compared only where every run of the model has it.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch  # noqa: E402

from lm_eval_emergence.capture import capture_states, plan_capture  # noqa: E402
from lm_eval_emergence.controls import random_weights_copy  # noqa: E402
from lm_eval_emergence.metrics.emergence import emergence_from_states  # noqa: E402
from lm_eval_emergence.metrics.table import STATE_STATISTICS  # noqa: E402
from lm_eval_emergence.settings import CaptureSettings, EstimationSettings  # noqa: E402
from studies.family import (  # noqa: E402
    build_family_model,
    list_data_from_icl,
    train_checkpoints,
)
from studies.models import load as load_study_model
from studies.models import model_dir
from studies.validity.probe import (  # noqa: E402
    corpus_family_lists,
    country_lists,
    degraded,
    family_lists,
    interpolated,
)


class Journal:
    """Finished runs by key, one JSON line each, appended as they end."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: dict[str, dict] = {}
        if path is not None and path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.rows[row["key"]] = row

    def get(self, key: str) -> dict | None:
        return self.rows.get(key)

    def add(self, key: str, row: dict) -> dict:
        row = {"key": key} | row
        self.rows[key] = row
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")
        return row


#: The replicate draws: whole repeats, lists only, projections and folds only.
WHOLE = list(range(1, 9))
LISTS_ONLY = list(range(101, 105))
PROJECTIONS_ONLY = list(range(201, 205))
DEFAULT_DATA_SEED = 1234
DEFAULT_IE_SEED = 0
METRICS = ("emergence", "erank", "matrix_entropy")
#: Bands of the acceptance (issue 34, item 3), fixed before any run.
POOLED_BAND = (0.67, 1.5)
MODEL_BAND = (0.45, 2.0)
ONE_SOURCE_MAX = 1.5
#: Above this the N/2 check's standard error is too coarse to judge by (issue 34, item 4).
CHECK_STDERR_LIMIT = 0.03

SHIPPED = {"smollm2": "smollm2-135m-instruct", "qwen": "qwen2.5-coder-0.5b-instruct"}


def _draws() -> list[tuple[str, int, int]]:
    """(kind, data_seed, ie_seed) of every replicate run of one model."""
    return (
        [("whole", s, s) for s in WHOLE]
        + [("lists", s, DEFAULT_IE_SEED) for s in LISTS_ONLY]
        + [("projections", DEFAULT_DATA_SEED, s) for s in PROJECTIONS_ONLY]
    )


def _record_numbers(record) -> dict:
    """IE, erank and matrix entropy of one task record, each with its reported ±."""
    rank, entropy = record.statistics["erank"], record.statistics["matrix_entropy"]
    return {
        "emergence": record.result.ie_bits,
        "emergence_stderr": record.result.ie_stderr_bits,
        "emergence_stderr_documents": record.result.ie_stderr_documents_bits,
        "emergence_stderr_projections": record.result.ie_stderr_projections_bits,
        "emergence_stderr_dof": record.result.ie_stderr_dof,
        "erank": rank.value,
        "erank_stderr": rank.stderr,
        "matrix_entropy": entropy.value,
        "matrix_entropy_stderr": entropy.stderr,
        "n_check": record.result.n_check,
        "n": record.result.n,
    }


def lm_eval_run(model_dir: Path, data_seed: int, ie_seed: int, n: int) -> dict:
    """One run of emergence_icl_country through lm-eval with the plugin, as a user runs it."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    import lm_eval_emergence
    from lm_eval_emergence.harness.aggregate import ESTIMATES

    ESTIMATES.clear()
    lm_eval.simple_evaluate(
        model="hf-emergence",
        model_args=f"pretrained={model_dir},dtype=float32,ie_seed={ie_seed}",
        tasks=["emergence_icl_country"],
        device="cpu",
        batch_size=32,
        task_manager=TaskManager(
            include_path=lm_eval_emergence.TASKS_DIR,
            metadata={"data_seed": data_seed, "n_docs": n},
        ),
    )
    return _record_numbers(ESTIMATES.records()["emergence_icl_country"])


class _Record:
    """The parts of a task record `_record_numbers` reads, from the library path."""

    def __init__(self, result, statistics) -> None:
        self.result, self.statistics = result, statistics


def library_run(model, ids: torch.Tensor, ie_seed: int) -> dict:
    """The plugin's capture and estimate (what `hf-emergence` runs per task) on token ids."""
    settings = CaptureSettings(seed=ie_seed, bos=None)
    plan = plan_capture(model, None, settings)
    captured = capture_states(model, ids, plan)
    estimation = EstimationSettings.of_protocol("floor-update", seed=ie_seed)
    result = emergence_from_states(captured, estimation)
    statistics = {
        name: compute(captured, folds=estimation.folds, seed=ie_seed)
        for name, compute in STATE_STATISTICS.items()
    }
    return _record_numbers(_Record(result, statistics))


def _family_args(data_seed: int, n: int) -> argparse.Namespace:
    return argparse.Namespace(data_seed=data_seed, n=n, family_lists=20000)


def trained_family_model(width: int = 128, layers: int = 4, steps: int = 3000, seed: int = 0):
    """The first family's model of `width` at its last checkpoint (validity_probe's training:
    its lists, seed, schedule) and the compact vocabulary of its training lists."""
    train, _ = family_lists(_family_args(DEFAULT_DATA_SEED, 2000))
    model = build_family_model(train.vocab_size, width, layers, seed=seed)
    t0 = time.perf_counter()
    *_, (step, last) = train_checkpoints(model, train, [0, steps], seed=seed)
    print(f"family width {width}: trained {step} steps in {time.perf_counter() - t0:.0f} s")
    return last


def family_vocabulary(n: int) -> list[int]:
    """The compact vocabulary the first family trains in (`family_lists` at the default data
    seed: its training lists, held-out lists and correct next tokens)."""
    from studies.validity.probe import _family_token_lists

    train_ids, train_ok, ids, _ = _family_token_lists(_family_args(DEFAULT_DATA_SEED, n))
    return sorted({t for seq in train_ids + ids for t in seq} | {t for o in train_ok for t in o})


def family_held_out(data_seed: int, n: int, vocab: list[int]) -> torch.Tensor:
    """The first family's held-out lists drawn with `data_seed`, in its vocabulary `vocab`
    (a token outside it is an error: the model never saw it)."""
    from studies.validity.probe import _family_token_lists

    _, _, ids, ok = _family_token_lists(_family_args(data_seed, n))
    return list_data_from_icl(ids, ok, vocab).ids


def ratio_table(runs: list[dict], kinds: tuple[str, ...]) -> dict:
    """Per metric: the standard deviation of the values of the runs of `kinds`, the mean
    reported ±, and their ratio."""
    out = {}
    picked = [r for r in runs if r["kind"] in kinds]
    for metric in METRICS:
        if any(r.get(metric) is None for r in picked):
            continue  # not measured on every run (a run recovered from a log)
        values = [r[metric] for r in picked]
        reported = [r[f"{metric}_stderr"] for r in picked]
        sd = statistics.stdev(values)
        mean_se = statistics.fmean(reported)
        out[metric] = {
            "n_runs": len(picked),
            "mean": statistics.fmean(values),
            "sd": sd,
            "mean_stderr": mean_se,
            "ratio": sd / mean_se,
        }
    return out


def pooled(models: dict[str, dict], key: str) -> dict:
    """sqrt of the mean over models of each model's squared ratio, per metric."""
    out = {}
    for m in METRICS:
        ratios = [v[key][m]["ratio"] for v in models.values() if m in v[key]]
        out[m] = {
            "ratio": math.sqrt(statistics.fmean(r**2 for r in ratios)),
            "models": [name for name, v in models.items() if m in v[key]],
        }
    return out


def verdict(summary: dict) -> dict:
    """Each acceptance gate of issue 34 item 3, with its numbers."""
    models = summary["models"]
    out = {"pooled_whole": {}, "per_model_whole": {}, "one_source": {}}
    for metric in METRICS:
        value = summary["pooled"]["whole"][metric]["ratio"]
        out["pooled_whole"][metric] = {
            "ratio": value,
            "band": POOLED_BAND,
            "holds": POOLED_BAND[0] <= value <= POOLED_BAND[1],
        }
        out["per_model_whole"][metric] = {
            name: {
                "ratio": m["whole"][metric]["ratio"],
                "band": MODEL_BAND,
                "holds": MODEL_BAND[0] <= m["whole"][metric]["ratio"] <= MODEL_BAND[1],
            }
            for name, m in models.items()
            if metric in m["whole"]
        }
        out["one_source"][metric] = {
            source: {
                "ratio": summary["pooled"][source][metric]["ratio"],
                "max": ONE_SOURCE_MAX,
                "holds": summary["pooled"][source][metric]["ratio"] <= ONE_SOURCE_MAX,
            }
            for source in ("lists", "projections")
        }
    return out


def replication(args: argparse.Namespace) -> dict:
    journal = Journal(args.journal)
    models: dict[str, dict] = {}
    for name in args.models:
        runs = []
        t0 = time.perf_counter()
        family = None
        for kind, data_seed, ie_seed in _draws():
            key = f"replication {name} {kind} {data_seed} {ie_seed}"
            row = journal.get(key)
            if row is None:
                if name == "family":
                    if family is None:
                        family = trained_family_model(), family_vocabulary(args.n)
                        assert len(family[1]) == family[0].config.vocab_size
                    ids = family_held_out(data_seed, args.n, family[1])
                    numbers = library_run(family[0], ids, ie_seed)
                else:
                    numbers = lm_eval_run(model_dir(SHIPPED[name]), data_seed, ie_seed, args.n)
                row = journal.add(key, {"kind": kind, "data_seed": data_seed,
                                        "ie_seed": ie_seed} | numbers)  # fmt: skip
            runs.append(row)
            ie, se = row["emergence"], row["emergence_stderr"]
            print(f"{name} {kind} {data_seed=} {ie_seed=}: IE {ie:.3f} ± {se:.3f}", flush=True)
        models[name] = {
            "runs": runs,
            "whole": ratio_table(runs, ("whole",)),
            "lists": ratio_table(runs, ("lists",)),
            "projections": ratio_table(runs, ("projections",)),
            "seconds": time.perf_counter() - t0,
        }
    summary = {
        "models": models,
        "pooled": {key: pooled(models, key) for key in ("whole", "lists", "projections")},
    }
    summary["verdict"] = verdict(summary)
    return summary


def _check_row(label: str, numbers: dict) -> dict:
    check = numbers["n_check"]
    return {
        "model": label,
        "ie": numbers["emergence"],
        "ie_stderr": numbers["emergence_stderr"],
        "n": numbers["n"],
        "change": check["change"],
        "change_stderr": check["change_stderr"],
        "allowance": check["allowance"],
        "bound": check["allowance"] + 2 * check["change_stderr"],
        "holds": not check["flagged"],
        "stderr_too_coarse": check["change_stderr"] > CHECK_STDERR_LIMIT,
    }


def _series_run(model, tok, ids: torch.Tensor, layers: list[int], seed: int) -> dict:
    settings = CaptureSettings(layers=tuple(layers), seed=seed)
    plan = plan_capture(model, tok, settings)
    captured = capture_states(model, ids, plan)
    estimation = EstimationSettings.of_protocol("floor-update", seed=seed)
    result = emergence_from_states(captured, estimation)
    return {"emergence": result.ie_bits, "emergence_stderr": result.ie_stderr_bits,
            "n_check": result.n_check, "n": result.n}  # fmt: skip


def pretrained_checks(
    name: str, layers: list[int], args: argparse.Namespace, journal: Journal
) -> list[dict]:
    """The validity series of a shipped model: trained, weight-noise copies, interpolations
    toward its random init, and the random init, each on the same lists."""

    def load():
        return load_study_model(SHIPPED[name])

    model, tok = load()
    ids, _ = country_lists(tok, args.n_series, DEFAULT_DATA_SEED)
    ids = torch.tensor(ids)
    control = random_weights_copy(model, args.seed)
    variants = [(f"{name} trained", lambda: model)]
    variants += [
        (f"{name} weight noise {scale}", lambda s=scale: degraded(load()[0], s, args.seed))
        for scale in args.noise
    ]
    variants += [
        (f"{name} interpolation t={t}", lambda t=t: interpolated(load()[0], control, t))
        for t in args.interpolate
    ]
    variants.append((f"{name} random init", lambda: control))
    rows = []
    for label, build in variants:
        row = journal.get(f"n-stability {label}")
        if row is None:
            numbers = _series_run(build(), tok, ids, layers, args.seed)
            row = journal.add(f"n-stability {label}", _check_row(label, numbers))
            print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def family_checks(which: str, args: argparse.Namespace, journal: Journal) -> list[dict]:
    """Every width of a trained family at every checkpoint, on its held-out lists."""
    data = corpus_family_lists if which == "family2" else family_lists
    train, test = data(_family_args(DEFAULT_DATA_SEED, args.n_series))
    layers = 8 if which == "family2" else 4
    rows = []
    steps = [0, 200, 400, 800, 1600, 3000]
    for width in (32, 64, 128):
        labels = [f"{which} width {width} step {step}" for step in steps]
        if all(journal.get(f"n-stability {label}") for label in labels):
            rows += [journal.get(f"n-stability {label}") for label in labels]
            continue
        model = build_family_model(test.vocab_size, width, layers, seed=args.seed)
        for step, checkpoint in train_checkpoints(model, train, steps, seed=args.seed):
            label = f"{which} width {width} step {step}"
            row = journal.get(f"n-stability {label}")
            if row is None:
                numbers = _series_run(checkpoint, None, test.ids, list(range(layers)), args.seed)
                row = journal.add(f"n-stability {label}", _check_row(label, numbers))
                print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def n_stability(args: argparse.Namespace) -> dict:
    journal = Journal(args.journal)
    blocks = {"smollm2": [0, 4, 8, 12, 16, 20, 24, 29], "qwen": [0, 3, 6, 9, 12, 15, 18, 23]}
    series = {}
    for name in args.series:
        t0 = time.perf_counter()
        if name in blocks:
            rows = pretrained_checks(name, blocks[name], args, journal)
        else:
            rows = family_checks(name, args, journal)
        series[name] = {"rows": rows, "seconds": time.perf_counter() - t0}
    every = [r for s in series.values() for r in s["rows"]]
    return {
        "series": series,
        "models": len(every),
        "holding": sum(r["holds"] for r in every),
        "stderr_too_coarse": [r["model"] for r in every if r["stderr_too_coarse"]],
        "missing": [r["model"] for r in every if not r["holds"]],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", choices=("replication", "n-stability"))
    p.add_argument("--models", nargs="+", default=["smollm2", "qwen", "family"])
    p.add_argument("--n", type=int, default=2000, help="lists per replicate run")
    p.add_argument("--series", nargs="+", default=["smollm2", "qwen", "family", "family2"])
    p.add_argument("--n-series", type=int, default=4096, help="lists per series model (N)")
    p.add_argument("--noise", type=float, nargs="*", default=[0.01, 0.03, 0.1, 0.3])
    p.add_argument("--interpolate", type=float, nargs="*", default=[0.1, 0.25, 0.5, 0.75])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--journal", type=Path, help="finished runs, JSON lines (resumes from it)")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    out = replication(args) if args.study == "replication" else n_stability(args)
    out["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    out["seconds"] = time.perf_counter() - t0
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.json} ({out['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
