"""The lm-eval adapter: the `hf-emergence` model, the emergence metrics and the task classes.

Importing it registers everything with lm-eval (the `lm-eval-emergence` command does; a Python
user of `lm_eval.simple_evaluate` imports it first).
"""

from . import metrics, model, task
from .aggregate import ESTIMATES
from .model import HFEmergenceLM

__all__ = ["ESTIMATES", "HFEmergenceLM", "metrics", "model", "task"]
