"""Information Emergence (IE) of language models, measured from hidden states, for lm-eval.

The pipeline, one module a step: ``capture`` (hidden states at block inputs and outputs) ->
``estimators`` (mutual information) -> ``emergence`` (IE per block) -> ``harness`` (the lm-eval
adapter) -> ``report``. Importing this package loads the core only, not lm-eval; importing
``lm_eval_emergence.harness`` registers the `hf-emergence` model and the emergence metrics.
"""

from .data import make_icl_sequences, single_token_entities
from .estimators import (
    DEFAULT_MI_ESTIMATOR,
    MIEstimate,
    estimate_mi,
    estimate_mi_many,
    estimator_names,
    estimator_options,
    register_estimator,
)
from .meta import __version__, tasks_dir
from .metrics.emergence import measure_emergence
from .records import EmergenceResult
from .settings import CaptureSettings, EstimationSettings, IESettings

#: The plugin's task YAMLs, for `--include_path` or `TaskManager(include_path=...)`.
TASKS_DIR = str(tasks_dir())

__all__ = [
    "DEFAULT_MI_ESTIMATOR",
    "TASKS_DIR",
    "CaptureSettings",
    "EmergenceResult",
    "EstimationSettings",
    "IESettings",
    "MIEstimate",
    "__version__",
    "estimate_mi",
    "estimate_mi_many",
    "estimator_names",
    "estimator_options",
    "make_icl_sequences",
    "measure_emergence",
    "register_estimator",
    "single_token_entities",
]
