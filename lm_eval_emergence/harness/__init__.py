"""The lm-eval adapter: the `hf-emergence` model, the emergence metrics and the task classes.

Importing it registers everything with lm-eval (`lm_eval_emergence` imports it).
"""

from . import metrics, model, task
from .aggregate import completed_tasks
from .model import HFEmergenceLM
from .settings import SETTING_KEYS, EmergenceConfigError, IESettings

__all__ = [
    "SETTING_KEYS",
    "EmergenceConfigError",
    "HFEmergenceLM",
    "IESettings",
    "completed_tasks",
    "metrics",
    "model",
    "task",
]
