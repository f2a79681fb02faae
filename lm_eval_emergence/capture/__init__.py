"""Capture the residual stream entering and leaving each decoder block of a Hugging Face causal LM.

`plan_capture` + `capture_states` (or `capture_moments`) are the one path of an IE measurement
(library, lm-eval adapter and benchmarks): capture settings in, one `Capture` (macro states,
micro table, BOS, positions, projection, timings) out. The modules, bottom up:

- `blocks`: finding the decoder blocks, the hooks on them, the projection;
- `passes`: batched forward passes with the hooks on, and the memory they need;
- `tokens`: the micro table, each distinct token fed alone once;
- `plan`: settings resolved for a model, and the captures themselves.
"""

from .blocks import BlocksNotFoundError, RandomProjection, find_blocks, hidden_size, num_layers
from .passes import CaptureResourceError, fitting_batch_size, forward_error
from .plan import (
    Capture,
    CaptureInfo,
    CapturePlan,
    MomentCapture,
    StreamSpec,
    capture_moments,
    capture_states,
    capture_token_table,
    captured_width,
    model_bos_token_id,
    plan_capture,
)
from .tokens import TokenTable, merge_tables

__all__ = [
    "BlocksNotFoundError",
    "Capture",
    "CaptureInfo",
    "CapturePlan",
    "CaptureResourceError",
    "MomentCapture",
    "RandomProjection",
    "StreamSpec",
    "TokenTable",
    "capture_moments",
    "capture_states",
    "capture_token_table",
    "captured_width",
    "find_blocks",
    "fitting_batch_size",
    "forward_error",
    "hidden_size",
    "merge_tables",
    "model_bos_token_id",
    "num_layers",
    "plan_capture",
]
