"""The plugin's own cost per document against lm-eval's, on a tiny model at large N.

Both runs go through `lm_eval.simple_evaluate` on the same documents (`emergence_icl_country`'s
lists, built for SmolLM2's tokenizer) with the same 2-block random-weights model
(`scale.build_model("tiny")`), each in a process of its own:

- the plugin: `hf-emergence` on `emergence_icl_country` (the emergence request, the default
  protocol, IE and every baseline);
- lm-eval: `hf` on a plain `loglikelihood` task of the same documents (context: the list,
  continuation: the IclTask's target text), lm-eval's own request, metrics and aggregation.

A document's cost is the wall time of `simple_evaluate` less the model's forward passes (every
call of the model's `forward`, hooks included) and, for the plugin, less the estimation (the
task's `TaskEstimate._estimate`), over N; the memory per document is the slope of the process's
peak resident memory between two N. So what is compared is what each adds per document around
the model: building documents and requests, the results per document, the aggregation.

    python -m studies.benchmarks.per_document --docs 10000 100000 \\
        --json studies/benchmarks/results/per_document_tiny_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

TASK = "emergence_icl_country"


def _timed_forward(model: torch.nn.Module, clock: dict[str, float]) -> None:
    """Count the seconds spent in `model.forward` (the hooks run inside it)."""
    forward = model.forward

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return forward(*args, **kwargs)
        finally:
            clock["forward"] += time.perf_counter() - t0

    model.forward = timed  # type: ignore[method-assign]


def _model_and_tokenizer() -> tuple[torch.nn.Module, object]:
    from transformers import AutoTokenizer

    from lm_eval_emergence.default_model import default_model_dir
    from studies.benchmarks.scale import build_model

    tok = AutoTokenizer.from_pretrained(str(default_model_dir()))
    return build_model("tiny", len(tok), torch.float32, "cpu"), tok


def run_plugin(n: int) -> dict:
    """`emergence_icl_country` on n documents through lm-eval, timed by part."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    import lm_eval_emergence
    from lm_eval_emergence.harness.aggregate import TaskEstimate
    from lm_eval_emergence.harness.model import HFEmergenceLM
    from lm_eval_emergence.harness.task import IclTask

    model, tok = _model_and_tokenizer()
    clock = {"forward": 0.0, "estimation": 0.0}
    _timed_forward(model, clock)
    estimate = TaskEstimate._estimate

    def timed_estimate(self, items):
        t0 = time.perf_counter()
        try:
            return estimate(self, items)
        finally:
            clock["estimation"] += time.perf_counter() - t0

    TaskEstimate._estimate = timed_estimate  # type: ignore[method-assign]
    keys = _count_keys(IclTask)
    lm = HFEmergenceLM(pretrained=model, tokenizer=tok, batch_size=64)
    manager = TaskManager(include_path=lm_eval_emergence.TASKS_DIR, metadata={"n_docs": n})
    t0 = time.perf_counter()
    out = lm_eval.simple_evaluate(model=lm, tasks=[TASK], limit=n, task_manager=manager)
    wall = time.perf_counter() - t0
    return {
        "wall": wall,
        **clock,
        "keys": keys[0],
        "ie_bits": out["results"][TASK]["emergence,none"],
    }


def _count_keys(task_class: type) -> list[int]:
    """[the number of keys a document's results hold], filled by the first document."""
    seen: list[int] = []
    process = task_class.process_results

    def counted(self, doc, results):
        out = process(self, doc, results)
        if not seen:
            seen.append(len(out))
        return out

    task_class.process_results = counted
    return seen


def run_lm_eval(n: int) -> dict:
    """A plain loglikelihood task of the same n documents through lm-eval's own `hf` model."""
    import datasets
    import lm_eval
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    import lm_eval_emergence
    from lm_eval_emergence.harness.documents import _icl_rows
    from lm_eval_emergence.harness.options import TaskOptions

    model, tok = _model_and_tokenizer()
    clock = {"forward": 0.0}
    _timed_forward(model, clock)
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=64)
    options = TaskOptions.of("icl", {"n_docs": n, "category": "country", "k": 4}, None)
    t0 = time.perf_counter()
    rows = _icl_rows(tok, options, options.k)  # the plugin's documents, built alike
    seconds_rows = time.perf_counter() - t0
    config = {
        "task": "icl_country_loglikelihood",
        "custom_dataset": lambda **_: {"test": datasets.Dataset.from_list(rows)},
        "output_type": "loglikelihood",
        "test_split": "test",
        "doc_to_text": "{{text}}",
        "doc_to_target": "an unlisted {{category}}",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }
    keys = _count_keys(ConfigurableTask)
    manager = TaskManager(include_path=lm_eval_emergence.TASKS_DIR)
    t0 = time.perf_counter()
    out = lm_eval.simple_evaluate(model=lm, tasks=[config], limit=n, task_manager=manager)
    wall = time.perf_counter() - t0 + seconds_rows
    return {"wall": wall, **clock, "estimation": 0.0, "keys": keys[0],
            "acc": out["results"]["icl_country_loglikelihood"]["acc,none"]}  # fmt: skip


def _child(tool: str, n: int) -> dict:
    """One run in a process of its own: its timings and the kernel's peak (ru_maxrss)."""
    out = Path(f"/tmp/ie_per_document_{os.getpid()}_{tool}_{n}.json")
    command = [sys.executable, "-m", "studies.benchmarks.per_document", "--child", tool,
               str(n), str(out)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"the {tool} run at N = {n} failed:\n{err[-3000:]}")
    row = json.loads(out.read_text())
    out.unlink()
    return row


def child(tool: str, n: int, out: Path) -> int:
    """The child's side: run one tool at one N, write its numbers with its own peak."""
    row = run_plugin(n) if tool == "plugin" else run_lm_eval(n)
    row |= {"tool": tool, "docs": n,
            "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}  # fmt: skip
    row["other"] = row["wall"] - row["forward"] - row["estimation"]
    row["ms_per_doc"] = 1000 * row["other"] / n
    out.write_text(json.dumps(row))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Both tools at each N; the table, the ratios, --json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs=2, default=[10_000, 100_000])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = [_child(tool, n) for n in args.docs for tool in ("plugin", "lm-eval")]
    small, large = args.docs
    by = {(r["tool"], r["docs"]): r for r in runs}
    summary = {}
    for tool in ("plugin", "lm-eval"):
        a, b = by[(tool, small)], by[(tool, large)]
        summary[tool] = {
            "ms_per_doc": b["ms_per_doc"],
            "kb_per_doc": 1e6 * (b["peak_gb"] - a["peak_gb"]) / (large - small),
            "keys_per_doc": b["keys"],
        }
    ratios = {
        "time": summary["plugin"]["ms_per_doc"] / summary["lm-eval"]["ms_per_doc"],
        "memory": summary["plugin"]["kb_per_doc"] / summary["lm-eval"]["kb_per_doc"],
    }
    print(f"{'tool':<8} {'N':>8} {'wall s':>8} {'forward s':>10} {'estim. s':>9} "
          f"{'other s':>8} {'ms/doc':>7} {'peak GB':>8} {'keys':>5}")  # fmt: skip
    for r in runs:
        print(f"{r['tool']:<8} {r['docs']:>8} {r['wall']:>8.1f} {r['forward']:>10.1f} "
              f"{r['estimation']:>9.1f} {r['other']:>8.1f} {r['ms_per_doc']:>7.3f} "
              f"{r['peak_gb']:>8.2f} {r['keys']:>5}")  # fmt: skip
    for tool, s in summary.items():
        print(
            f"{tool}: {s['ms_per_doc']:.3f} ms and {s['kb_per_doc']:.1f} KB a document "
            f"(peak slope {small:,} -> {large:,}), {s['keys_per_doc']} keys a document"
        )
    print(f"plugin / lm-eval: time {ratios['time']:.2f}, memory {ratios['memory']:.2f}")
    report = {
        "docs": args.docs,
        "cpus": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "runs": runs,
        "summary": summary,
        "ratios": ratios,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        sys.exit(child(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])))
    sys.exit(main())
