"""What the plugin measures, one module a metric, and the one table that defines them all.

- `emergence`: Information Emergence, IE (the package's subject; `measure_emergence`);
- `spectral`: the effective rank and the matrix entropy of the same states (with the control:
  Diff-eRank);
- `dispersion`: representation dispersion of the same states;
- `statistic`: the common last step of the per-block baselines (a `StateStatistic`);
- `table`: every reported key, its meaning, direction, standard error, control and group
  aggregation (`MetricDef`), the only place a metric is declared.
"""

from .table import METRICS, MetricDef, definition, metric_definitions

__all__ = ["METRICS", "MetricDef", "definition", "metric_definitions"]
