"""The package's version and where its shipped task YAMLs lie: a leaf module, importing nothing."""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODEL_NAME", "__version__", "tasks_dir"]

__version__ = "0.1.0"
#: The name the plugin's lm-eval model registers under (`harness/model.py`).
MODEL_NAME = "hf-emergence"


def tasks_dir() -> Path:
    """The directory of the plugin's task YAMLs (the package `lm_eval_emergence.tasks`)."""
    from importlib import resources

    return Path(str(resources.files("lm_eval_emergence.tasks")))
