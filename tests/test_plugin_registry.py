"""The entry points as lm-eval's plugin discovery reads them (upstream PRs #4013-#4015): declared
for every registered name, each loading alone in a fresh process, with no name lm-eval has."""

from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lm_eval_emergence.cli import plugin_task_names
from lm_eval_emergence.harness.metrics import EMERGENCE_METRICS
from lm_eval_emergence.metrics.table import definition, registered

PLUGIN_METRICS = [row.key for row in registered()]

PROBE = Path(__file__).with_name("registry_probe.py")


def _declared(group: str) -> dict[str, str]:
    return {
        ep.name: ep.value
        for ep in md.entry_points(group=group)
        if ep.dist and ep.dist.name == "lm-eval-emergence"
    }


def test_every_registered_name_has_its_entry_point():
    assert _declared("lm_eval.models") == {
        "hf-emergence": "lm_eval_emergence.harness.model:HFEmergenceLM"
    }
    assert _declared("lm_eval.metrics") == {
        key: "lm_eval_emergence.harness.metrics:passthrough" for key in PLUGIN_METRICS
    }
    assert _declared("lm_eval.aggregations") == {
        key: f"lm_eval_emergence.harness.metrics:aggregate_{key}" for key in EMERGENCE_METRICS
    }
    assert _declared("lm_eval.tasks") == {"emergence": "lm_eval_emergence.tasks"}


@pytest.fixture(scope="module", params=["entrypoint", "string"])
def probe(request, tmp_path_factory) -> dict:
    """The probe's answers (registry_probe.py), run from an empty directory: a fresh process
    that sees the installed distribution only."""
    proc = subprocess.run(
        [sys.executable, str(PROBE), request.param],
        capture_output=True,
        text=True,
        cwd=tmp_path_factory.mktemp("probe"),
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_each_entry_point_loads_alone_with_what_the_evaluator_needs(probe):
    assert probe["failed"] == {}
    loaded = probe["loaded"]
    assert loaded.pop("lm_eval.models:hf-emergence") == {"class": "HFEmergenceLM", "is_lm": True}
    tasks = loaded.pop("lm_eval.tasks:emergence")["tasks"]
    assert set(tasks) == plugin_task_names() | {"emergence_cloze"}
    # the arrows the registry hands out, spelled out for a few keys
    arrow = {k: loaded[f"lm_eval.metrics:{k}"]["higher_is_better"] for k in ("emergence", "erank")}
    assert arrow == {"emergence": True, "erank": None}  # no direction the studies show
    assert loaded["lm_eval.metrics:emergence_stderr"]["higher_is_better"] is None
    for key in PLUGIN_METRICS:
        metric = loaded.pop(f"lm_eval.metrics:{key}")
        assert metric["passes_through"], key
        if key == "logprob_correct":
            assert (metric["aggregation"], metric["higher_is_better"]) == ("mean", True)
        else:
            assert metric["aggregation"] == f"aggregate_{key}", key
            assert metric["higher_is_better"] is definition(key).higher_is_better, key
    for key in EMERGENCE_METRICS:
        assert loaded.pop(f"lm_eval.aggregations:{key}") == {"aggregation": f"aggregate_{key}"}
    assert loaded == {}  # nothing declared beyond what is checked above


def test_no_name_clashes_with_lm_evals_own(probe):
    assert probe["clashes"] == []


def test_a_name_lm_eval_already_holds_stops_the_plugin():
    from lm_eval.api.registry import Registry

    from lm_eval_emergence.harness.registration import PluginNameClashError, claim

    def builtin(items: list) -> float:
        return 0.0

    def ours(items: list) -> float:
        return 1.0

    registry = Registry("aggregation")
    registry.register("erank", target=builtin)
    with pytest.raises(PluginNameClashError, match="already holds 'erank'"):
        claim(registry, "erank", ours)
    # a placeholder of our own object resolves to it and is kept
    registry.register("ours", target="lm_eval_emergence.harness.metrics:passthrough")
    from lm_eval_emergence.harness.metrics import passthrough

    assert claim(registry, "ours", passthrough) is passthrough
