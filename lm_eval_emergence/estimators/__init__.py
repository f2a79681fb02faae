"""MI estimators: closed-form Gaussian, trained variational bounds, the paper's MINE.

Every module of this package is imported here, so each registers its estimators
(`registry.register_estimator`): a new estimator is one new module.
"""

import importlib
import pkgutil

from .api import DEFAULT_MI_ESTIMATOR, estimate_mi, estimate_mi_many, estimator_options
from .inputs import MIN_SAMPLES, require_samples
from .registry import estimator_names, get_estimator, register_estimator
from .result import MIEstimate

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "DEFAULT_MI_ESTIMATOR",
    "MIN_SAMPLES",
    "MIEstimate",
    "estimate_mi",
    "estimate_mi_many",
    "estimator_names",
    "estimator_options",
    "get_estimator",
    "register_estimator",
    "require_samples",
]
