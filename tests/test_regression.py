"""The regression snapshot: every number of a fixed set of configurations on the tiny model.

A change that moves any reported number (a value, its standard error or its parts, the N/2
check, the spectral baselines) fails here. When the numbers are meant to move, rewrite the file
in the commit that says why:

    python tests/test_regression.py --write

Closed forms must agree to float rounding; the trained bound (`infonce`) to 1e-3 relative,
since its training steps round differently on other CPUs.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import torch

SNAPSHOT = Path(__file__).with_name("data") / "regression_snapshot.json"

#: name -> keyword arguments of `measure_emergence` on the tiny model's random sequences
CONFIGS: dict[str, dict[str, Any]] = {
    "floor-update": {"protocol": "floor-update"},
    "floor-update projected": {"protocol": "floor-update", "projection_dim": 8},
    "floor-update one projection": {"protocol": "floor-update", "projection_dim": 8,
                                    "projections": 1},
    "floor-update per position": {"protocol": "floor-update", "projection_dim": 8,
                                  "per_position": True},
    "floor-update plug-in": {"protocol": "floor-update", "bias": "none"},
    "floor-output": {"protocol": "floor-output", "projection_dim": 8},
    "psi-update": {"protocol": "psi-update", "projection_dim": 8},
    "usable-update": {"protocol": "usable-update", "projection_dim": 8},
    "infonce": {"protocol": "infonce", "projection_dim": 8, "projections": 2, "steps": 40,
                "eval_every": 20},
}  # fmt: skip
LOOSE = {"infonce"}


def _tiny_model() -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=128, n_positions=64, n_embd=32, n_layer=3, n_head=2)
    return GPT2LMHeadModel(config).eval()


def _ids() -> torch.Tensor:
    ids = torch.randint(0, 128, (300, 5), generator=torch.Generator().manual_seed(7))
    ids[:, 2] = 9  # a constant position: exact zeros
    return ids


def numbers(model: torch.nn.Module, options: dict[str, Any]) -> dict[str, Any]:
    """The reported numbers of one configuration (flat, JSON-ready)."""
    from lm_eval_emergence import measure_emergence

    r = measure_emergence(model, None, _ids(), seed=3, micro_bos=None, **options)
    out = {
        "ie": r.ie_bits,
        "ie_stderr": r.ie_stderr_bits,
        "ie_stderr_documents": r.ie_stderr_documents_bits,
        "ie_stderr_projections": r.ie_stderr_projections_bits,
        "ie_stderr_dof": r.ie_stderr_dof,
        "macro": r.macro_bits,
        "macro_stderr": r.macro_stderr_bits,
        "micro": r.micro_bits,
        "micro_stderr": r.micro_stderr_bits,
        "per_block": [row.emergence_bits for row in r.per_layer],
        "per_block_stderr": [row.stderr_bits for row in r.per_layer],
        "n_check_change": None if r.n_check is None else r.n_check["change"],
        "n_check_stderr": None if r.n_check is None else r.n_check["change_stderr"],
    }
    if r.per_position:
        out["per_position"] = [p.emergence_bits for p in r.per_position]
        out["per_position_stderr"] = [p.stderr_bits for p in r.per_position]
    return out


def spectral_numbers(model: torch.nn.Module) -> dict[str, float]:
    """The state statistics (erank, matrix entropy, dispersion) with their standard errors."""
    from lm_eval_emergence.capture import capture_states, plan_capture
    from lm_eval_emergence.metrics.table import STATE_STATISTICS
    from lm_eval_emergence.settings import CaptureSettings

    plan = plan_capture(model, None, CaptureSettings(projection_dim=8, seed=3, bos=None))
    captured = capture_states(model, _ids(), plan)
    out = {}
    for name, compute in STATE_STATISTICS.items():
        statistic = compute(captured, seed=3)
        out |= {name: statistic.value, f"{name}_stderr": statistic.stderr}
    return out


def snapshot() -> dict[str, Any]:
    model = _tiny_model()
    out = {name: numbers(model, options) for name, options in CONFIGS.items()}
    out["spectral"] = spectral_numbers(model)
    return out


def _close(got: Any, want: Any, rel: float) -> bool:
    if isinstance(want, list):
        return len(got) == len(want) and all(
            _close(g, w, rel) for g, w in zip(got, want, strict=True)
        )
    if want is None or got is None:
        return got is want
    return math.isclose(got, want, rel_tol=rel, abs_tol=rel * 1e-2)


def test_every_number_is_the_snapshot_s():
    want = json.loads(SNAPSHOT.read_text())
    got = json.loads(json.dumps(snapshot()))  # the same float rounding as the file
    assert set(got) == set(want)
    moved = [
        f"{name}.{key}: {got[name][key]} (snapshot {value})"
        for name, entries in want.items()
        for key, value in entries.items()
        if not _close(got[name].get(key), value, 1e-3 if name in LOOSE else 1e-6)
    ]
    assert not moved, "numbers moved:\n" + "\n".join(moved)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/test_regression.py --write")
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(snapshot(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT}")
