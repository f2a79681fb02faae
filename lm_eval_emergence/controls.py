"""Controls that know the answer: the same architecture with weights that learned nothing.

A score that gives a trained network and an untrained copy of it the same number measures the
architecture, the data and the estimator, not what was learned. `random_weights_copy` builds the
copy every IE measurement can carry next to it (lm-eval: `ie_control=random`).
"""

from __future__ import annotations

import torch
from torch import nn

from .settings import EmergenceConfigError

__all__ = ["random_weights_copy", "random_weights_from_config"]


def random_weights_from_config(
    config: object, seed: int, dtype: torch.dtype = torch.float32
) -> nn.Module:
    """A causal LM built from `config` with transformers' initialisation under `seed`.

    Seeded without touching the global random state; in eval mode, on the CPU.
    """
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return fresh.eval()


def random_weights_copy(model: nn.Module, seed: int) -> nn.Module:
    """`model`'s architecture (its config) with fresh weights from transformers' initialisation.

    Seeded without touching the global random state; same dtype and device as `model`, in eval
    mode. Raises EmergenceConfigError when the model cannot be rebuilt from its config.
    """
    config = getattr(model, "config", None)
    if config is None:
        raise EmergenceConfigError(
            f"a random-weights control needs a Hugging Face model built from a config; "
            f"{type(model).__name__} has no .config. Drop ie_control (or build the control "
            "yourself and measure it as a second model)"
        )
    first = next(model.parameters(), None)
    dtype = first.dtype if first is not None else torch.float32
    device = first.device if first is not None else torch.device("cpu")
    try:
        fresh = random_weights_from_config(config, seed, dtype)
    except Exception as exc:  # noqa: BLE001 - any failure to rebuild is the same user error
        raise EmergenceConfigError(
            f"cannot build a random-weights control of {type(model).__name__} from its config "
            f"({type(exc).__name__}: {exc}); drop ie_control for this model"
        ) from None
    return fresh.to(device).eval()
