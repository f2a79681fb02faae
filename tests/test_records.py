"""The typed records: what the writers produce reads back into the same objects."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lm_eval_emergence import measure_emergence
from lm_eval_emergence.records import (
    EmergenceResult,
    Sidecar,
    TaskRecord,
    json_ready,
    shot_curve,
    sidecar_path_for,
)


def test_a_measured_result_reads_back_unchanged(tiny_gpt2):
    ids = torch.randint(1, 60, (96, 4), generator=torch.Generator().manual_seed(1))
    result = measure_emergence(
        tiny_gpt2, None, ids, estimator="gaussian", per_position=True, reduce_dim=4
    )
    text = json.dumps(result.to_dict(), allow_nan=False)
    back = EmergenceResult.from_dict(json.loads(text))
    assert back.to_dict() == result.to_dict()
    assert back.per_layer[1].layer == 1 and back.per_position[3].per_layer[2].layer == 2
    # the shot curve reads the per-position rows it names
    curve = shot_curve(back, [1, 3])
    assert [p.position for p in curve] == [1, 3]
    assert curve[1].emergence_bits == back.per_position[3].emergence_bits
    layer_e = [r.emergence_bits for r in back.per_position[1].per_layer]
    mean = sum(layer_e) / 3
    std = math.sqrt(sum((e - mean) ** 2 for e in layer_e) / 3)
    assert curve[0].layer_std_bits == pytest.approx(std, rel=1e-12)


def test_sidecar_round_trip_keeps_a_failed_estimate_failed(tiny_gpt2):
    ids = torch.randint(1, 60, (96, 4), generator=torch.Generator().manual_seed(2))
    result = measure_emergence(tiny_gpt2, None, ids, estimator="gaussian", reduce_dim=4)
    result.ie_bits = float("nan")  # what a failed estimate looks like
    record = TaskRecord(
        task="t",
        n_docs=96,
        capture={"layers": [0, 1, 2]},
        estimation={"estimator": "gaussian", "options": {"reduce_dim": 4}, "seed": 0},
        seconds_forward=1.0,
        seconds_estimation=2.0,
        metrics={"emergence": float("nan")},
        shot_curve=None,
        result=result,
    )
    sidecar = Sidecar(
        results_file="r.json", created="now", versions={}, model=None, tasks={"t": record}
    )
    data = json.loads(json.dumps(sidecar.to_dict(), allow_nan=False))
    assert data["tasks"]["t"]["result"]["ie_bits"] is None  # written as null, not a number
    assert data["tasks"]["t"]["metrics"]["emergence"] is None
    back = Sidecar.from_dict(data)
    assert back.tasks["t"].result.ie_bits is None  # read back failed, not as 0 or a number
    assert back.tasks["t"].estimation == record.estimation
    # everything else reads back as written: the per-block rows, the seed, the settings
    rows = [row.emergence_bits for row in back.tasks["t"].result.per_layer]
    assert rows == [row.emergence_bits for row in result.per_layer] and len(rows) == 3
    assert back.tasks["t"].result.seed == result.seed == 0
    assert json.loads(json.dumps(back.to_dict(), allow_nan=False)) == data  # a fixed point
    assert json_ready({"a": (1, float("inf")), "b": float("nan")}) == {"a": [1, None], "b": None}


def test_sidecar_path_sits_next_to_the_results_file(tmp_path):
    assert sidecar_path_for(tmp_path / "results_2026.json").name == "emergence_2026.json"
    assert sidecar_path_for(tmp_path / "mine.json").name == "mine_emergence.json"
