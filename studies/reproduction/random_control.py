"""Write a random-weights control: a shipped model's architecture and tokenizer, untrained.

A model that has learned nothing, measured with the same commands as the trained one, separates
what IE reads from training from what it reads from the architecture, the data and the estimator.

    python -m studies.reproduction.random_control runs/smollm2-random
    python -m studies.reproduction.random_control runs/qwen15-random \
        --model qwen2.5-coder-1.5b-instruct
"""

from __future__ import annotations

import argparse
import sys

from transformers import AutoConfig, AutoTokenizer

from lm_eval_emergence.controls import random_weights_from_config
from lm_eval_emergence.default_model import DEFAULT_MODEL_KEY
from studies.models import MODELS, model_dir


def main(argv: list[str] | None = None) -> int:
    """Save the control to the given directory; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="directory to write the model and tokenizer to")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random initialisation")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL_KEY, choices=sorted(MODELS), help="whose copy"
    )
    args = parser.parse_args(argv)
    source = model_dir(args.model)
    config = AutoConfig.from_pretrained(source)
    config._name_or_path = f"{args.model}-random-seed{args.seed}"
    model = random_weights_from_config(config, args.seed)
    model.save_pretrained(args.out)
    AutoTokenizer.from_pretrained(source).save_pretrained(args.out)
    print(f"wrote {args.out}: {sum(p.numel() for p in model.parameters()):,} random parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
