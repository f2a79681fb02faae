"""End to end through the command, in a subprocess, offline: results JSON, sidecar, samples,
a standard task in the same run, --use_cache, a user --include_path and the error messages."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def run_cli(*args: str, command: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = command or [sys.executable, "-m", "lm_eval_emergence"]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=ENV, timeout=900, check=False
    )


def _words(tiny_gpt2_dir: Path) -> list[str]:
    vocab = json.loads((tiny_gpt2_dir / "tokenizer.json").read_text())["model"]["vocab"]
    return sorted(w for w in vocab if w.isalpha() and w.islower())


@pytest.fixture(scope="module")
def user_tasks(tmp_path_factory, tiny_gpt2_dir) -> Path:
    """A user's task directory: a small multiple-choice task on a local JSON file."""
    root = tmp_path_factory.mktemp("user_tasks")
    rows = [
        {"question": f"Question {i}:", "choices": ["yes", "no", "maybe"], "answer": i % 3}
        for i in range(12)
    ]
    data = root / "mc.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "local_mc.yaml").write_text(
        "task: local_mc\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        "doc_to_text: '{{question}}'\n"
        "doc_to_choice: choices\n"
        "doc_to_target: answer\n"
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
    )
    return root


@pytest.fixture(scope="module")
def texts_file(tmp_path_factory, tiny_gpt2_dir) -> Path:
    """80 texts of known words, two sentences each (the user's own texts)."""
    words = _words(tiny_gpt2_dir)
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("texts") / "texts.jsonl"
    with path.open("w") as handle:
        for _ in range(80):
            first = " ".join(rng.choice(words) for _ in range(10))
            second = " ".join(rng.choice(words) for _ in range(10))
            handle.write(json.dumps({"text": f"The {first}. The {second}."}) + "\n")
    return path


def _results(out: Path) -> tuple[dict, dict, list[Path]]:
    results = sorted(out.glob("**/results_*.json"))
    assert len(results) == 1, results
    sidecar = results[0].with_name(results[0].name.replace("results_", "emergence_"))
    samples = sorted(out.glob("**/samples_*.jsonl"))
    return json.loads(results[0].read_text()), json.loads(sidecar.read_text()), samples


EMERGENCE_TASKS = "emergence_icl,emergence_icl_shots,emergence_natural,emergence_text"


@pytest.fixture(scope="module")
def mixed_runs(tmp_path_factory, tiny_gpt2_dir, user_tasks, texts_file):
    """The same mixed command twice with one --use_cache database."""
    base = tmp_path_factory.mktemp("mixed")
    args = [
        "--model",
        "hf-emergence",
        "--model_args",
        f"pretrained={tiny_gpt2_dir},dtype=float32",
        "--device",
        "cpu",
        "--batch_size",
        "8",
        "--tasks",
        f"{EMERGENCE_TASKS},local_mc",
        "--include_path",
        str(user_tasks),
        "--limit",
        "64",
        "--metadata",
        json.dumps({"text_path": str(texts_file), "n_docs": 64}),
        "--use_cache",
        str(base / "cache"),
        "--log_samples",
    ]
    runs = []
    for name in ("first", "second"):
        proc = run_cli(*args, "--output_path", str(base / name))
        assert proc.returncode == 0, proc.stderr[-4000:]
        runs.append((proc, *_results(base / name)))
    return runs


def test_mixed_run_reports_emergence_next_to_accuracy(mixed_runs):
    _, results, sidecar, samples = mixed_runs[0]
    res = results["results"]
    for task in (
        "emergence_icl_country",
        "emergence_icl_animal",
        "emergence_icl_color",
        "emergence_icl_shots",
        "emergence_natural",
        "emergence_text",
    ):
        row = res[task]
        assert row["sample_len"] == 64, task
        metrics, result = sidecar["tasks"][task]["metrics"], sidecar["tasks"][task]["result"]
        for key in ("emergence", "emergence_macro", "emergence_micro", "emergence_sum"):
            assert math.isfinite(row[f"{key},none"]) and row[f"{key},none"] == metrics[key]
            stderr = row[f"{key}_stderr,none"]
            assert math.isfinite(stderr) and stderr >= 0, (task, key, stderr)
            assert stderr == metrics[f"{key}_stderr"], (task, key, stderr)
        flagged = set(result["diverged_layers"]) | set(result["implausible_layers"])
        assert row["emergence_flagged_blocks,none"] == float(len(flagged)), task
        assert sidecar["tasks"][task]["metrics"]["emergence"] == row["emergence,none"]
    # ICL accuracy from the same forward pass, and the standard task's accuracy
    # the random model predicts "," after every list, never an entity: 0 of 64 right
    for task in ("emergence_icl_country", "emergence_icl_shots"):
        assert res[task]["acc,none"] == 0.0
    # it prefers "no" for every question; the answers cycle yes/no/maybe: 4 of 12 right
    assert res["local_mc"]["acc,none"] == pytest.approx(4 / 12, abs=1e-12)
    assert res["local_mc"]["sample_len"] == 12
    # the group averages its subtasks, with a stderr
    group = res["emergence_icl"]
    subtasks = [res[f"emergence_icl_{c}"]["emergence,none"] for c in ("country", "animal", "color")]
    assert group["emergence,none"] == pytest.approx(sum(subtasks) / 3)
    ses = [
        res[f"emergence_icl_{c}"]["emergence_stderr,none"] for c in ("country", "animal", "color")
    ]  # three subtasks of 64 documents: the stderr of their mean
    assert group["emergence_stderr,none"] == pytest.approx(math.sqrt(sum(se**2 for se in ses)) / 3)
    # the shot curve: one E per shot, the last equal to IE
    shots = res["emergence_icl_shots"]
    assert shots["emergence_shot10,none"] == pytest.approx(shots["emergence,none"])
    shot01 = sidecar["tasks"]["emergence_icl_shots"]["shot_curve"][0]
    assert shot01["shot"] == 1
    assert shots["emergence_shot01_layer_std,none"] == shot01["layer_std_bits"]
    assert len(sidecar["tasks"]["emergence_icl_shots"]["shot_curve"]) == 10
    # per-position curve for natural text
    natural = sidecar["tasks"]["emergence_natural"]["result"]
    assert [p["position"] for p in natural["per_position"]] == list(range(8))


def test_group_row_without_the_control_warns_of_nothing_missing(mixed_runs):
    proc = mixed_runs[0][0]
    assert "no values found for metric" not in proc.stderr
    # lm-eval's table: an arrow only where a direction is known (IE), none on the baselines,
    # the counts and the spreads
    rows = {line.split("|")[5].strip(): line for line in proc.stdout.splitlines() if "|" in line}
    assert "↑" in rows["emergence"]
    for key in (
        "erank",
        "matrix_entropy",
        "emergence_flagged_blocks",
        "emergence_shot01_layer_std",
    ):
        assert "↑" not in rows[key] and "↓" not in rows[key], rows[key]


def test_group_row_carries_the_control_and_the_baselines(tiny_gpt2_dir, tmp_path):
    """With ie_control=random the emergence_icl row holds what its subtasks hold: each control
    key the unweighted mean of the three, with the stderr of that mean (the subtasks draw their
    own documents and projections: independent). The fixture model is transformers'
    initialisation under seed 0, so the control is seeded 1 (seed 0 would be the model)."""
    proc = run_cli(
        "--model", "hf-emergence",
        "--model_args", f"pretrained={tiny_gpt2_dir},dtype=float32,ie_control=random,ie_seed=1",
        "--device", "cpu", "--batch_size", "8", "--tasks", "emergence_icl",
        "--limit", "64", "--metadata", json.dumps({"n_docs": 64}),
        "--output_path", str(tmp_path / "out"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = _results(tmp_path / "out")[0]["results"]
    subtasks = [res[f"emergence_icl_{c}"] for c in ("country", "animal", "color")]
    group = res["emergence_icl"]
    for key in (
        "emergence_random",
        "emergence_vs_random",
        "diff_erank",
        "erank_random",
        "matrix_entropy_random",
        "dispersion_random",
    ):
        values = [row[f"{key},none"] for row in subtasks]
        ses = [row[f"{key}_stderr,none"] for row in subtasks]
        assert len(set(values)) == 3, (key, values)  # three different estimates averaged
        assert group[f"{key},none"] == pytest.approx(sum(values) / 3, rel=1e-12), key
        assert group[f"{key}_stderr,none"] == pytest.approx(
            math.sqrt(sum(se**2 for se in ses)) / 3, rel=1e-12
        ), key
    assert group["emergence_vs_random,none"] == pytest.approx(
        group["emergence,none"] - group["emergence_random,none"], rel=1e-9
    )


def test_sidecar_holds_what_the_numbers_need(mixed_runs):
    _, results, sidecar, _ = mixed_runs[0]
    assert sidecar["format"] == "lm-eval-emergence sidecar 1"
    assert sidecar["versions"]["lm_eval"] == results["lm_eval_version"]
    assert sidecar["model"]["n_parameters"] > 0
    task = sidecar["tasks"]["emergence_icl_country"]
    result = task["result"]
    assert result["n"] == 64 and result["seq_len"] == 8
    assert result["log2_n"] == pytest.approx(6.0)
    assert result["ceiling_bits"] is None  # the default protocol's closed form has no ceiling
    assert len(result["per_layer"]) == 2  # the tiny model's two blocks
    assert {"macro_bits", "micro_bits", "emergence_bits", "stderr_bits"} <= set(
        result["per_layer"][0]
    )
    assert result["estimator"] == "gaussian-floor" and result["seed"] == 0
    assert (result["protocol"], result["target"]) == ("floor-update", "update")
    # states 32 wide (the model's width, under the 64 of the projection); per document only its
    # 8 token ids in int64: the default protocol streams its states' moments (issue 35: at every
    # N), which are per rank, not per document
    assert task["capture"]["state_dim"] == 32 and task["capture"]["state_dtype"] == "float16"
    assert task["capture"]["payload_bytes_per_doc"] == 8 * 8


def test_logged_samples_stay_small_and_readable(mixed_runs, tiny_gpt2_dir):
    from transformers import AutoModelForCausalLM

    _, _, _, samples = mixed_runs[0]
    icl = next(p for p in samples if "emergence_icl_country" in p.name)
    lines = icl.read_text().splitlines()
    assert len(lines) == 64
    for line in lines:
        assert len(line) < 6000
    sample = json.loads(lines[0])
    assert sample["emergence"].startswith("EmergenceFeatures(T=8, layers=2")
    # the ability metrics are the model's own next-token numbers on each document
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir).eval()
    docs = [json.loads(line)["doc"] for line in lines]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([d["token_ids"] for d in docs])).logits[:, -1]
    logp = torch.log_softmax(logits.double(), -1)
    for line, doc, row, top in zip(lines, docs, logp, logits.argmax(-1).tolist(), strict=True):
        sample = json.loads(line)
        assert sample["acc"] == int(top in doc["next_ok_ids"])
        want = float(torch.logsumexp(row[doc["next_ok_ids"]], 0))
        assert sample["logprob_correct"] == pytest.approx(want, abs=1e-4)


def test_use_cache_reruns_emergence_and_serves_loglikelihood_from_cache(mixed_runs):
    (first, r1, s1, _), (second, r2, s2, _) = mixed_runs
    assert "Requests remaining: 0" in second.stderr  # local_mc came from the cache
    for task in ("emergence_icl_country", "emergence_natural", "emergence_text"):
        assert r2["results"][task]["emergence,none"] == r1["results"][task]["emergence,none"]
    assert r2["results"]["local_mc"]["acc,none"] == r1["results"]["local_mc"]["acc,none"]
    assert s2["tasks"]["emergence_text"]["seconds_forward"] > 0  # computed again, not cached


#: `accelerate launch` on two CPU processes, running the plugin's command line.
_ACCELERATE_CPU = [
    "launch",
    "--cpu",
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
    "-m",
    "lm_eval_emergence",
]


def test_accelerate_data_parallel_gives_the_single_process_numbers(
    mixed_runs, tiny_gpt2_dir, tmp_path
):
    """Two CPU processes: documents split by rank, payloads gathered, one estimate on rank 0."""
    accelerate = shutil.which("accelerate")
    if accelerate is None:
        pytest.skip("accelerate's launcher is not on PATH")
    proc = run_cli(
        "--model",
        "hf-emergence",
        "--model_args",
        f"pretrained={tiny_gpt2_dir},dtype=float32",
        "--batch_size",
        "8",
        "--tasks",
        "emergence_icl_country",
        "--limit",
        "64",
        "--metadata",
        json.dumps({"n_docs": 64}),
        "--output_path",
        str(tmp_path),
        command=[accelerate, *_ACCELERATE_CPU],
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results, sidecar, _ = _results(tmp_path)
    single = mixed_runs[0][1]["results"]["emergence_icl_country"]
    row = results["results"]["emergence_icl_country"]
    assert row["sample_len"] == 64
    for key in ("emergence,none", "emergence_stderr,none", "acc,none"):
        assert row[key] == pytest.approx(single[key], abs=1e-6), key
    assert sidecar["tasks"]["emergence_icl_country"]["n_docs"] == 64


def test_streamed_moments_reduced_across_two_processes_give_one_process_numbers(
    tiny_gpt2_dir, tmp_path
):
    """Streamed (the default protocol, at every N) under accelerate: each rank sends its
    moments, not its states; rank 0 adds them up and gets the single-process estimate."""
    accelerate = shutil.which("accelerate")
    if accelerate is None:
        pytest.skip("accelerate's launcher is not on PATH")
    args = [
        "--model",
        "hf-emergence",
        "--model_args",
        f"pretrained={tiny_gpt2_dir},dtype=float32",
        "--batch_size",
        "8",
        "--tasks",
        "emergence_icl_country",
        "--limit",
        "96",
        "--metadata",
        json.dumps({"n_docs": 96}),
    ]
    rows = []
    for name, command in (("one", None), ("two", [accelerate, *_ACCELERATE_CPU])):
        proc = run_cli(*args, "--output_path", str(tmp_path / name), command=command)
        assert proc.returncode == 0, proc.stderr[-4000:]
        results, sidecar, _ = _results(tmp_path / name)
        task = sidecar["tasks"]["emergence_icl_country"]
        assert task["capture"]["streamed"] and task["n_docs"] == 96
        rows.append(results["results"]["emergence_icl_country"])
    for key in ("emergence,none", "emergence_stderr,none", "emergence_macro,none", "acc,none"):
        assert rows[1][key] == pytest.approx(rows[0][key], abs=1e-5), key
    assert abs(rows[0]["emergence,none"]) > 0.1


def test_standard_hf_model_gets_one_clear_message(tiny_gpt2_dir):
    proc = run_cli(
        "--model", "hf", "--model_args", f"pretrained={tiny_gpt2_dir}", "--tasks", "emergence_icl"
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "--model hf-emergence" in proc.stderr


def _bad_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "The cat sat."}\n{not json\n')
    return path


def _jsonl(tmp_path: Path, texts: list[str]) -> Path:
    path = tmp_path / f"texts{len(texts)}.jsonl"
    path.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    return path


def _latin1_jsonl(tmp_path: Path) -> Path:
    """A JSONL file saved as Latin-1 (its accented letters are not UTF-8)."""
    path = tmp_path / "latin1.jsonl"
    line = json.dumps({"text": "Le café était fermé."}, ensure_ascii=False) + "\n"
    path.write_bytes((line * 80).encode("latin-1"))
    return path


def _short_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "short.jsonl"
    path.write_text("".join(json.dumps({"text": "Too short."}) + "\n" for _ in range(70)))
    return path


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--tasks", "emergence_icl_country", "--limit", "10"], "use --limit 64 or more"),
        (
            ["--tasks", "emergence_icl_country", "--model_args_extra", "ie_estimator=kde"],
            "choose one of",
        ),
        (
            ["--tasks", "emergence_icl_country", "--metadata", '{"min_entities": 500}'],
            "keeps only",
        ),
        (
            ["--tasks", "emergence_icl_country", "--model_args_extra", "ie_stream=on"],
            "ie_stream was removed",
        ),
        (["--tasks", "emergence_text"], "needs a JSONL file of texts"),
        (
            ["--tasks", "emergence_text", "--metadata", '{"text_path": "/nonexistent.jsonl"}'],
            "does not exist",
        ),
        (["--tasks", "emergence_text", "--metadata", "BAD"], "is not valid JSON"),
        (["--tasks", "emergence_text", "--metadata", "SHORT"], "fewer than the window of 8"),
        (["--tasks", "emergence_text", "--metadata", "EMPTY"], "holds no texts"),
        (["--tasks", "emergence_text", "--metadata", "ONE"], "text 0 has 1 tokens, fewer than"),
        (
            ["--tasks", "emergence_icl_country", "--limit", "1"],
            "--limit 1 leaves 1 document, below the 64",
        ),
        (
            [
                "--tasks",
                "emergence_icl_country",
                "--limit",
                "64",
                "--model_args_extra",
                "ie_layers=7",
            ],
            "ie_layers: layer 7 is out of range: this model has 2 blocks",
        ),
        (
            ["--tasks", "emergence_icl_country", "--model_args_extra", "ie_protocol=florr"],
            "unknown IE protocol 'florr' (ie_protocol); choose one of",
        ),
        (
            ["--tasks", "emergence_icl_country", "--model_args_extra", "pretrained=/no/model"],
            "the model directory '/no/model' does not exist",
        ),
        (
            ["--tasks", "emergence_icll_country", "--limit", "64"],
            "unknown task 'emergence_icll_country' (did you mean emergence_icl_country",
        ),
        (["--tasks", "emergence_text", "--metadata", "LATIN1"], "is not UTF-8 text"),
        (["--tasks", "emergence_icl_country", "--device", "cuda"], "use --device cpu"),
        (
            ["--tasks", "emergence_icl_country", "--batch_size", "0"],
            "--batch_size must be a positive integer or 'auto', got '0'",
        ),
        (
            ["--tasks", "emergence_icl_country", "--metadata", '{"n_doc": 100}'],
            "unknown task option 'n_doc' (did you mean 'n_docs'?)",
        ),
    ],
    ids=[
        "limit",
        "estimator",
        "entities",
        "stream-shots",
        "no-text",
        "missing-text",
        "bad-jsonl",
        "short-text",
        "empty-text-file",
        "one-token-text-file",
        "limit-1",
        "layers-out-of-range",
        "unknown-protocol",
        "missing-model",
        "misspelt-task",
        "latin1-text",
        "cuda-without-cuda",
        "batch-size-0",
        "misspelt-option",
    ],
)
def test_bad_input_ends_in_one_message(tiny_gpt2_dir, tmp_path, extra, fragment):
    """One line naming the fix, no traceback, and no file left under --output_path."""
    model_args = f"pretrained={tiny_gpt2_dir},dtype=float32"
    args = list(extra)
    if "--model_args_extra" in args:
        i = args.index("--model_args_extra")
        extra_args = args[i + 1]
        if extra_args.startswith("pretrained="):
            model_args = f"{extra_args},dtype=float32"
        else:
            model_args += "," + extra_args
        del args[i : i + 2]
    texts = {
        "BAD": _bad_jsonl(tmp_path),
        "SHORT": _short_jsonl(tmp_path),
        "EMPTY": _jsonl(tmp_path, []),
        "ONE": _jsonl(tmp_path, ["Hello"]),
        "LATIN1": _latin1_jsonl(tmp_path),
    }
    for name, path in texts.items():
        if name in args:
            args[args.index(name)] = json.dumps({"text_path": str(path)})
    out = tmp_path / "out"
    device = [] if "--device" in args else ["--device", "cpu"]
    proc = run_cli(
        "--model",
        "hf-emergence",
        "--model_args",
        model_args,
        *device,
        *args,
        "--output_path",
        str(out),
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("lm-eval-emergence:")]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr[-3000:]
    assert not out.exists() or not any(out.rglob("*"))


def _run_patched(tiny_gpt2_dir: Path, out: Path, patch: str, *model_args: str):
    """The command in a fresh process after `patch` (Python source) has run there."""
    driver = f"import sys\n{patch}\nfrom lm_eval_emergence.cli import main\nsys.exit(main())"
    args = ",".join([f"pretrained={tiny_gpt2_dir}", "dtype=float32", *model_args])
    proc = run_cli(
        *("--model", "hf-emergence", "--model_args", args, "--device", "cpu"),
        *("--tasks", "emergence_icl_country", "--limit", "64", "--output_path", str(out)),
        command=[sys.executable, "-c", driver],
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("lm-eval-emergence:")]
    return proc.returncode, lines


def test_ctrl_c_during_capture_ends_in_one_line(tiny_gpt2_dir, tmp_path):
    patch = (
        "from lm_eval_emergence.harness.model import HFEmergenceLM\n"
        "def interrupted(*args, **kwargs):\n"
        "    raise KeyboardInterrupt\n"
        "HFEmergenceLM._capture = interrupted"
    )
    out = tmp_path / "out"
    code, lines = _run_patched(tiny_gpt2_dir, out, patch)
    assert code == 130
    assert lines == ["lm-eval-emergence: interrupted, no results written"]
    assert not out.exists()


def test_ctrl_c_while_writing_removes_the_half_written_file(tiny_gpt2_dir, tmp_path):
    out = tmp_path / "out"
    (out / "earlier").mkdir(parents=True)
    (out / "earlier" / "results_old.json").write_text("{}")  # a finished run's file stays
    patch = (
        "from pathlib import Path\n"
        "from lm_eval.loggers.evaluation_tracker import EvaluationTracker\n"
        "def half_written(self, *args, **kwargs):\n"
        f"    (Path({str(out)!r}) / 'model').mkdir()\n"
        f"    (Path({str(out)!r}) / 'model' / 'results_new.json').write_text('{{\"results\": {{')\n"
        "    raise KeyboardInterrupt\n"
        "EvaluationTracker.save_results_aggregated = half_written"
    )
    code, lines = _run_patched(tiny_gpt2_dir, out, patch)
    assert code == 130
    assert lines == [
        "lm-eval-emergence: interrupted, no results written; removed the 1 file(s) it had "
        "begun under --output_path"
    ]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "earlier",
        "earlier/results_old.json",
    ]


def test_a_control_that_cannot_be_built_stops_before_any_capture(tiny_gpt2_dir, tmp_path):
    """ie_control=random on a model whose config the Auto classes cannot rebuild (as for a
    remote-code model): one line at load time, before the model's own capture."""
    patch = (
        "import transformers\n"
        "from lm_eval_emergence.harness.model import HFEmergenceLM\n"
        "def unknown(*args, **kwargs):\n"
        "    raise ValueError('Unrecognized configuration class for this kind of AutoModel')\n"
        "def no_capture(*args, **kwargs):\n"
        "    raise AssertionError('captured before the control was checked')\n"
        "transformers.AutoModelForCausalLM.from_config = unknown\n"
        "HFEmergenceLM._capture = no_capture"
    )
    out = tmp_path / "out"
    code, lines = _run_patched(tiny_gpt2_dir, out, patch, "ie_control=random")
    assert code == 2
    (line,) = lines
    assert "cannot build a random-weights control of GPT2LMHeadModel" in line
    assert line.endswith("drop ie_control for this model")
    assert not out.exists()


@pytest.mark.slow
def test_default_command_runs_smollm2(tmp_path):
    """`lm-eval-emergence --tasks ...` with no --model: hf-emergence on the embedded SmolLM2."""
    from lm_eval_emergence.default_model import DefaultModelNotInstalledError, smollm2_gguf_path

    try:
        smollm2_gguf_path()
    except DefaultModelNotInstalledError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"SmolLM2 is not installed in CI: {exc}")
        pytest.skip(str(exc))
    script = shutil.which("lm-eval-emergence")
    assert script is not None, "the console script is not installed"
    proc = run_cli(
        "--tasks",
        "emergence_icl_country",
        "--limit",
        "64",
        "--model_args",
        "ie_layers=0;29",
        "--output_path",
        str(tmp_path),
        command=[script],
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results, sidecar, _ = _results(tmp_path)
    row = results["results"]["emergence_icl_country"]
    metrics = sidecar["tasks"]["emergence_icl_country"]["metrics"]
    assert math.isfinite(row["emergence,none"]) and row["emergence,none"] == metrics["emergence"]
    stderr = row["emergence_stderr,none"]
    assert math.isfinite(stderr) and stderr >= 0 and stderr == metrics["emergence_stderr"]
    assert row["acc,none"] == pytest.approx(37 / 64, abs=1e-12)  # 37 of the 64 documents
    assert results["config"]["model"] == "hf-emergence"
    assert 130e6 < sidecar["model"]["n_parameters"] < 140e6  # SmolLM2-135M
    assert sidecar["tasks"]["emergence_icl_country"]["capture"]["layers"] == [0, 29]


def test_plain_lm_eval_runs_the_tasks_given_by_path(tiny_gpt2_dir, tmp_path):
    """The stock `lm_eval` command, no wrapper: a task YAML (or a folder of them) given by path
    names its class with `!function`, which lm-eval imports before it builds the model, so
    hf-emergence is registered by then. The ICL lists have a folder of their own for this."""
    from lm_eval_emergence.meta import tasks_dir

    lists = tasks_dir() / "emergence_icl" / "lists"
    out = tmp_path / "out"
    proc = run_cli(
        "--model", "hf-emergence", "--model_args", f"pretrained={tiny_gpt2_dir},dtype=float32",
        "--tasks", str(lists), "--limit", "64", "--device", "cpu", "--output_path", str(out),
        command=["lm_eval"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = out.rglob("results_*.json")
    tasks = json.loads(results.read_text())["results"]
    assert set(tasks) == {"emergence_icl_country", "emergence_icl_animal", "emergence_icl_color"}
    assert all(isinstance(t["emergence,none"], float) for t in tasks.values())


def test_plain_lm_eval_cannot_run_the_group_by_name_yet(tiny_gpt2_dir):
    """lm-eval 0.4.13 resolves a task's `!function` tags only after it builds the model when the
    task is named (and reads a group YAML given by path as a task), so the group needs the
    wrapper until a release has plugin discovery. When lm-eval changes this, this test says so:
    update docs/lm-eval.md ("Plain lm_eval") and turn it around."""
    from lm_eval_emergence.meta import tasks_dir

    proc = run_cli(
        "--model", "hf-emergence", "--model_args", f"pretrained={tiny_gpt2_dir},dtype=float32",
        "--include_path", str(tasks_dir()), "--tasks", "emergence_icl", "--limit", "64",
        "--device", "cpu", command=["lm_eval"],
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Attempted to load model 'hf-emergence', but no model for this name found" in (
        proc.stderr
    )
