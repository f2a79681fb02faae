"""Per-block IE profile of a model on synthetic ICL lists, from the command line.

    python -m lm_eval_emergence.profile [--model DIR|default] [--category country] [--k 4]
        [--n 2048] [--estimator NAME] [--seed 0] [--layers 0 5 29] [--json out.json]

Loads the default model (SmolLM2-135M-Instruct) or a local Hugging Face model directory (offline),
builds n seeded ICL lists of k single-token entities (T = 2k tokens), measures the emergence of
every block and prints one row per block and a summary. `--json` writes the full result record.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from .data.entities import entity_list
from .data.icl import DEFAULT_MIN_ENTITIES, list_format, make_icl_sequences
from .estimators import estimator_names
from .metrics.emergence import measure
from .protocols import TARGETS, protocol_names
from .records import EmergenceResult
from .settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_IE_PROTOCOL,
    DEFAULT_PROJECTION_DIM,
    IESettings,
)

__all__ = [
    "add_settings_arguments",
    "build_parser",
    "format_result",
    "load_model",
    "main",
    "settings_from_args",
]


def add_settings_arguments(p: argparse.ArgumentParser) -> None:
    """The IE settings as command-line flags (the profile command and the benchmarks)."""
    p.add_argument(
        "--protocol",
        default=None,
        choices=protocol_names(),
        help=f"a named IE protocol (default {DEFAULT_IE_PROTOCOL}); not with --estimator",
    )
    p.add_argument(
        "--estimator",
        default=None,
        choices=estimator_names(),
        help=f"MI estimator (default that of {DEFAULT_IE_PROTOCOL})",
    )
    p.add_argument("--target", default=None, choices=TARGETS, help="output y or update y - x")
    p.add_argument("--seed", type=int, default=0, help="seed of data, projection and estimator")
    p.add_argument("--layers", type=int, nargs="+", default=None, help="blocks (default: all)")
    p.add_argument(
        "--projection-dim",
        default=str(DEFAULT_PROJECTION_DIM),
        help="random projection width while capturing ('none': the full hidden size)",
    )
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="capture batch size")
    p.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="estimator option, repeatable (e.g. -o steps=500 -o null=true)",
    )


def settings_from_args(args: argparse.Namespace) -> IESettings:
    """The flags of `add_settings_arguments`, through the one parser of the `ie_*` settings."""
    chosen = {
        "ie_protocol": args.protocol,
        "ie_estimator": args.estimator,
        "ie_target": args.target,
    }
    return IESettings.from_mapping(
        {k: v for k, v in chosen.items() if v is not None}
        | {
            "ie_seed": args.seed,
            "ie_layers": args.layers,
            "ie_projection_dim": args.projection_dim,
            "ie_batch_size": args.batch_size,
            "ie_options": args.option,
        }
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the profile command."""
    p = argparse.ArgumentParser(
        prog="python -m lm_eval_emergence.profile",
        description="Information Emergence per block of a causal LM on synthetic ICL lists.",
    )
    p.add_argument("--model", default="default", help="local model directory, or 'default'")
    p.add_argument("--category", default="country", help="country, animal or colour")
    p.add_argument("--k", type=int, default=4, help="entities per list (T = 2k tokens)")
    p.add_argument("--n", type=int, default=2048, help="number of lists")
    add_settings_arguments(p)
    p.add_argument("--per-position", action="store_true", help="also E(l, t) per position")
    p.add_argument("--min-entities", type=int, default=DEFAULT_MIN_ENTITIES)
    p.add_argument("--n-entities", type=int, default=None, help="use only the first n entities")
    p.add_argument(
        "--leading-space",
        choices=("auto", "yes", "no"),
        default="auto",
        help="list convention: 'no' = e1,e2, ; 'yes' = e1, e2, ; auto = keeps more entities",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, default=None, help="write the full result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def load_model(spec: str, device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer): the default SmolLM2 for 'default', else a local directory, offline."""
    if spec == "default":
        from .default_model import load_default_model

        return load_default_model(device)
    path = Path(spec)
    if not path.is_dir():
        raise FileNotFoundError(
            f"--model {spec!r} is not a directory; pass a local Hugging Face model directory "
            "(saved with save_pretrained) or 'default' for SmolLM2-135M-Instruct"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(
        str(path), local_files_only=True, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return model.to(device).eval(), tokenizer


def _f(value: float | None, width: int = 8, digits: int = 3) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def format_result(result: EmergenceResult, extra: dict[str, Any] | None = None) -> str:
    """The per-block table and the summary as text."""
    lines = [
        f"{'block':>5} {'macro':>8} {'micro':>8} {'E':>8}   {'± stderr':<8} {'':>3}",
        "-" * 48,
    ]
    for row in result.per_layer:
        flag = "DIV" if row.diverged else "BAD" if row.implausible else ""
        lines.append(
            f"{row.layer:>5} {_f(row.macro_bits)} {_f(row.micro_bits)} "
            f"{_f(row.emergence_bits)} ± {_f(row.stderr_bits, 6)} {flag:>3}"
        )
    lines.append("(bits; macro = I(last-token in; out), micro = mean_t I(token-alone in; out))")
    lines.append("(DIV: an estimate diverged; BAD: an estimate is negative beyond its noise)")
    lines.extend(f"warning: {w}" for w in result.warnings)
    if result.per_position is not None:
        lines.append("")
        lines.append("position  E(t) mean over blocks  (E(l,t) = I_macro(l,t) - mean_{k<=t} micro)")
        for pos in result.per_position:
            lines.append(f"{pos.position:>8}  {_f(pos.emergence_bits)} ± {_f(pos.stderr_bits, 6)}")
    tok_h = result.token_entropy_bits
    summary = {
        "IE (mean over blocks)": f"{result.ie_bits:.4f} ± {result.ie_stderr_bits:.4f} bits",
        "IE (sum over blocks)": f"{result.ie_sum_bits:.3f} ± {result.ie_sum_stderr_bits:.3f} bits",
        "blocks": f"{len(result.layers)} ({result.layers[0]}..{result.layers[-1]})",
        "N sequences / T tokens": f"{result.n} / {result.seq_len}",
        "estimator ceiling": _f(result.ceiling_bits, 0, 3).strip() + " bits",
        "log2 N": f"{result.log2_n:.3f} bits",
        "sequence entropy (plug-in)": f"{result.sequence_entropy_bits:.3f} bits "
        f"({result.n_distinct_sequences} distinct)",
        "token entropy (mean over t)": f"{sum(tok_h) / len(tok_h):.3f} bits",
        "micro input": result.micro_input,
        "estimator / seed": f"{result.estimator} / {result.seed}",
        "hidden dim": f"{result.hidden_dim}"
        + (" (projected from model width)" if result.projection_dim else ""),
        "diverged blocks": ", ".join(map(str, result.diverged_layers)) or "none",
        "implausible blocks": ", ".join(map(str, result.implausible_layers)) or "none",
        "seconds capture (macro+micro)": f"{result.seconds_capture:.1f} "
        f"({result.seconds_capture_macro:.1f} + {result.seconds_capture_micro:.1f})",
        "seconds estimation": f"{result.seconds_estimation:.1f} "
        f"({result.n_estimates} MI estimates, {result.n_exact_zero} exact zeros)",
        "model": f"{result.model_name} ({result.n_parameters / 1e6:.1f}M parameters)",
    }
    summary.update(extra or {})
    width = max(len(k) for k in summary)
    lines.append("")
    lines.extend(f"{k:<{width}}  {v}" for k, v in summary.items())
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Run the profile; returns the process exit code (0 ok, 2 bad input)."""
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
        t0 = time.perf_counter()
        model, tokenizer = load_model(args.model, args.device)
        seconds_load = time.perf_counter() - t0
        leading = {"auto": None, "yes": True, "no": False}[args.leading_space]
        sequences = make_icl_sequences(
            tokenizer,
            args.category,
            args.k,
            args.n,
            args.seed,
            args.min_entities,
            leading_space=leading,
            n_entities=args.n_entities,
        )
        fmt = list_format(tokenizer, entity_list(args.category), leading_space=leading)
        n_used = min(len(fmt.entities), args.n_entities or len(fmt.entities))
        result = measure(
            model,
            tokenizer,
            sequences,
            settings,
            per_position=args.per_position,
            progress=not args.quiet,
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data = {
        "category": f"{args.category}, k={args.k}, {n_used} single-token entities",
        "list convention": repr(fmt.convention),
        "example": repr(tokenizer.decode(sequences[0])),
        "seconds model load": f"{seconds_load:.1f}",
    }
    print(format_result(result, data), file=out)
    if args.json is not None:
        record = result.to_dict()
        record["data"] = {
            "category": args.category,
            "k": args.k,
            "n": args.n,
            "seed": args.seed,
            "leading_space": fmt.leading_space,
            "entities": list(fmt.entities[:n_used]),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2, allow_nan=False))
        print(f"wrote {args.json}", file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
