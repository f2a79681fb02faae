"""MI estimators: closed-form Gaussian, trained variational bounds, the paper's MINE."""

from .api import DEFAULT_METHOD, METHODS, estimate_mi, estimate_mi_many, method_options
from .inputs import MIN_SAMPLES
from .result import MIEstimate

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "MIN_SAMPLES",
    "MIEstimate",
    "estimate_mi",
    "estimate_mi_many",
    "method_options",
]
