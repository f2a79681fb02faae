"""IE at the scale users run lm-eval: a model of a real shape with random weights, N documents.

Builds a Llama-shaped model from its config with seeded random weights (the timing does not
depend on the weights, and nothing is downloaded), loads it as `hf-emergence`, and runs the
`emergence_icl_country` task through lm-eval for each N: the full profile, macro and micro
levels, every block. Per N it records the wall time, the forward passes and the estimation (from
the task's record), whether the states were streamed into moments, and the peak GPU and host
memory. It also times lm-eval's plain `loglikelihood` pass against the `emergence` pass on the
same documents (`--ratio-docs`).

    python -m studies.benchmarks.scale --shape 1b --device cpu --docs 256 512       # here, 2 cores
    python -m studies.benchmarks.scale --shape 7b --device cuda --docs 4096 300000  # one GPU

Shapes: `7b` is Llama-2-7B (32 blocks, d = 4096, MLP 11008, 32 heads), `1b` TinyLlama-1.1B
(22 blocks, d = 2048, MLP 5632, 32 heads, 4 KV heads), `tiny` a 2-block model for the harness's
own overhead. The vocabulary is the tokenizer's (SmolLM2's by default, 49,152 tokens).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch  # noqa: E402

SHAPES = {
    "7b": {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
           "num_attention_heads": 32, "num_key_value_heads": 32},
    "1b": {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
           "num_attention_heads": 32, "num_key_value_heads": 4},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 4},
}  # fmt: skip


def build_model(shape: str, vocab: int, dtype: torch.dtype, device: str, seed: int = 0):
    """A LlamaForCausalLM of `shape` with seeded random weights, built in `dtype` on `device`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab, max_position_embeddings=2048, **SHAPES[shape])
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    config._name_or_path = f"random-llama-{shape}"
    return model.eval()


def _peak_host_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_task(lm, n: int, device: str) -> dict:
    """emergence_icl_country on n documents through lm-eval; the task's record's numbers."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    import lm_eval_emergence
    from lm_eval_emergence.harness.aggregate import ESTIMATES

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    metadata = {"n_docs": n}
    t0 = time.perf_counter()
    manager = TaskManager(include_path=lm_eval_emergence.TASKS_DIR, metadata=metadata)
    seconds_index = time.perf_counter() - t0  # lm-eval indexes its own tasks: N-independent
    t0 = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model=lm, tasks=["emergence_icl_country"], limit=n, task_manager=manager
    )
    _sync(device)
    wall = time.perf_counter() - t0
    record = ESTIMATES.records()["emergence_icl_country"]
    row = out["results"]["emergence_icl_country"]
    return {
        "docs": n,
        "seconds_wall": wall,
        "seconds_task_index": seconds_index,
        "seconds_forward": record.seconds_forward,
        "seconds_estimation": record.seconds_estimation,
        "estimation_share": record.seconds_estimation / wall,
        "streamed": record.capture["streamed"],
        "moments_bytes": record.capture["moments_bytes"],
        "payload_bytes_per_doc": record.capture["payload_bytes_per_doc"],
        "ie_bits": row["emergence,none"],
        "ie_stderr_bits": row["emergence_stderr,none"],
        "acc": row["acc,none"],
        "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30
        if device.startswith("cuda")
        else None,
        "peak_host_gb": _peak_host_gb(),
    }


def pass_ratio(lm, n: int, device: str, repeats: int) -> dict:
    """The emergence pass against lm-eval's loglikelihood pass on the same n documents."""
    from lm_eval.api.instance import Instance

    from lm_eval_emergence.data.icl import build_icl_lists
    from lm_eval_emergence.harness.model import tokenizer_fingerprint

    tok = lm.tokenizer
    built = build_icl_lists(tok, "country", 4, n, seed=1234)
    fmt = built.format
    texts = [fmt.text(s) for s in built.selections]
    cut = len(fmt.separator)
    shared = {
        "tokenizer": tokenizer_fingerprint(tok),
        "capture": lm.ie_settings.capture.to_dict(),
        "model_settings": lm.ie_settings.to_dict(),
        "stream": None,
    }
    spec = {"next_token": True, "shared": json.dumps(shared, sort_keys=True)}
    ll = [
        Instance("loglikelihood", {}, (t[:-cut], t[-cut:]), 0, ("bench", i, 1))
        for i, t in enumerate(texts)
    ]
    em = [
        Instance(
            "emergence",  # type: ignore[arg-type]
            {},
            (t, json.dumps({**spec, "token_ids": ids, "positions": [len(ids) - 1]})),
            0,
            ("bench", i, 1),
        )
        for i, (t, ids) in enumerate(zip(texts, built.sequences, strict=True))
    ]

    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t0)
        return min(times)

    lm.loglikelihood(ll[:64])  # warm-up
    lm.emergence(em[:64])
    t_ll, t_em = best(lambda: lm.loglikelihood(ll)), best(lambda: lm.emergence(em))
    return {"docs": n, "seconds_loglikelihood": t_ll, "seconds_emergence": t_em,
            "ratio": t_em / t_ll}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run every N and the pass ratio; print a table and write --json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="1b")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--docs", type=int, nargs="+", default=[256])
    parser.add_argument("--batch-size", default="auto", help="lm-eval's --batch_size")
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--ratio-docs", type=int, default=0, help="0: skip the pass ratio")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tokenizer", default=None, help="tokenizer dir (default: SmolLM2's)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from lm_eval_emergence.harness.model import HFEmergenceLM

    if args.tokenizer is None:
        from lm_eval_emergence.default_model import default_model_dir

        args.tokenizer = str(default_model_dir())
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    t0 = time.perf_counter()
    model = build_model(args.shape, len(tok), getattr(torch, args.dtype), args.device)
    seconds_build = time.perf_counter() - t0
    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    lm = HFEmergenceLM(
        pretrained=model, tokenizer=tok, batch_size=batch, max_batch_size=args.max_batch_size
    )
    report = {
        "shape": args.shape,
        "config": SHAPES[args.shape],
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "dtype": args.dtype,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "max_batch_size": args.max_batch_size,
        "seconds_build": seconds_build,
        "runs": [],
    }
    print(f"{args.shape}: {report['n_parameters'] / 1e9:.2f}B parameters, built in "
          f"{seconds_build:.1f} s on {report['device']}", flush=True)  # fmt: skip
    for n in args.docs:
        row = run_task(lm, n, args.device)
        report["runs"].append(row)
        print(json.dumps(row), flush=True)
    if args.ratio_docs:
        report["pass_ratio"] = pass_ratio(lm, args.ratio_docs, args.device, args.repeats)
        print(json.dumps(report["pass_ratio"]), flush=True)
    print(f"\n{'N':>8} {'wall s':>8} {'forward s':>10} {'estim. s':>9} {'share':>6} "
          f"{'streamed':>8} {'GPU GB':>7} {'host GB':>8} {'IE bits':>9}")  # fmt: skip
    for r in report["runs"]:
        gpu = "-" if r["peak_gpu_gb"] is None else f"{r['peak_gpu_gb']:.1f}"
        print(f"{r['docs']:>8} {r['seconds_wall']:>8.1f} {r['seconds_forward']:>10.1f} "
              f"{r['seconds_estimation']:>9.2f} {r['estimation_share']:>6.1%} "
              f"{str(r['streamed']):>8} {gpu:>7} {r['peak_host_gb']:>8.1f} "
              f"{r['ie_bits']:>9.3f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
