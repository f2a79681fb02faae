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

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "EmergenceResult",
    "MIEstimate",
    "estimate_mi",
    "estimate_mi_many",
    "make_icl_sequences",
    "measure_emergence",
    "method_options",
    "single_token_entities",
]
