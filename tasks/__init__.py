"""The plugin's lm-eval task YAMLs (installed as `lm_eval_emergence.tasks`)."""
