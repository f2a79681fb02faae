"""The metric table is the only source: what follows from it is generated, and cannot drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lm_eval_emergence.metrics.table import METRICS, definition, metric_keys

ROOT = Path(__file__).resolve().parents[1]


def test_the_generated_files_are_the_table_s():
    """pyproject's entry points, the group YAML's metric list and the docs' table equal what
    scripts/generate_metrics.py writes from the table."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_metrics.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_key_is_declared_once_with_its_companion():
    keys = [row.key for row in METRICS]
    assert len(keys) == len(set(keys))
    for row in METRICS:
        if row.stderr is not None:
            assert definition(f"{row.key}_stderr").value is row.stderr
    # what a task without the control reports never needs it, and a control task adds it
    plain, control = set(metric_keys()), set(metric_keys(control=True))
    assert not any(definition(k).control for k in plain)
    assert control - plain == {
        "emergence_random", "emergence_vs_random", "erank_random", "matrix_entropy_random",
        "dispersion_random", "diff_erank", "emergence_random_stderr",
        "emergence_vs_random_stderr", "erank_random_stderr", "matrix_entropy_random_stderr",
        "dispersion_random_stderr", "diff_erank_stderr",
    }  # fmt: skip
