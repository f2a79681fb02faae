"""Information Emergence (IE) of language models, measured from hidden states, for lm-eval.

The pipeline, one module a step: ``capture`` (hidden states at block inputs and outputs) ->
``estimators`` (mutual information) -> ``emergence`` (IE per block) -> lm-eval adapter -> report.
"""

from .data import make_icl_sequences, single_token_entities
from .emergence import EmergenceResult, measure_emergence
from .estimators import (
    DEFAULT_METHOD,
    METHODS,
    MIEstimate,
    estimate_mi,
    estimate_mi_many,
    method_options,
)

__version__ = "0.1.0"

# The lm-eval adapter last: it imports the modules above. Importing the package registers the
# `hf-emergence` model and the emergence metrics with lm-eval.
from . import harness  # noqa: E402
from .cli import tasks_dir  # noqa: E402

#: The plugin's task YAMLs, for `--include_path` or `TaskManager(include_path=...)`.
TASKS_DIR = str(tasks_dir())

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "TASKS_DIR",
    "EmergenceResult",
    "MIEstimate",
    "estimate_mi",
    "estimate_mi_many",
    "harness",
    "make_icl_sequences",
    "measure_emergence",
    "method_options",
    "single_token_entities",
]
