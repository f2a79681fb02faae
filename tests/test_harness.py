"""The lm-eval adapter in-process: registrations, settings, payloads, the cached estimate."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

import lm_eval_emergence
import lm_eval_emergence.harness  # noqa: F401  (registers the model, metrics and tasks)
from lm_eval_emergence.harness.aggregate import ESTIMATES, TaskEstimate
from lm_eval_emergence.metrics.table import (
    metric_keys,
    metric_value,
    value_keys,
    with_stderr_keys,
)
from lm_eval_emergence.settings import (
    CaptureSettings,
    EmergenceConfigError,
    EstimationSettings,
    IESettings,
)


def test_every_key_a_task_returns_is_registered_with_its_own_aggregation(tiny_lm):
    """The keys a real task returns for a document (process_results), looked up in lm-eval's
    registries: each is there, aggregated by the plugin's own function (never by a hub metric)
    with the arrow spelled out here; and the model resolves to the plugin's class."""
    from lm_eval.api.registry import (
        get_aggregation,
        get_metric,
        get_metric_aggregation,
        get_model,
        is_higher_better,
    )
    from lm_eval.tasks import TaskManager

    from lm_eval_emergence.harness.model import HFEmergenceLM, tokenizer_fingerprint
    from lm_eval_emergence.harness.task import IclTask

    assert get_model("hf-emergence") is HFEmergenceLM
    assert get_model("hf") is not HFEmergenceLM  # built-in models are still there
    manager = TaskManager(include_path=lm_eval_emergence.TASKS_DIR)
    task = manager.load(["emergence_icl_country"])["tasks"]["emergence_icl_country"]
    assert isinstance(task, IclTask)
    doc = task.eval_docs[0]
    fp = tokenizer_fingerprint(tiny_lm.tokenizer)
    (features,) = tiny_lm.emergence([_Request(doc["token_ids"], 0, fp)])
    returned = task.process_results(doc, [features])
    assert {"emergence", "emergence_stderr", "erank", "dispersion", "acc"} <= set(returned)
    for key in returned:
        assert get_metric(key) is not None, key
        if key not in ("acc", "logprob_correct"):  # averaged per document by lm-eval's mean
            assert get_metric_aggregation(key) is get_aggregation(key), key
            assert get_aggregation(key).__name__ == f"aggregate_{key}", key
    arrows = {k: is_higher_better(k) for k in ("emergence", "erank", "emergence_stderr")}
    assert arrows == {"emergence": True, "erank": None, "emergence_stderr": None}


def test_metric_keys_are_the_values_then_the_stderr_of_each_that_has_one():
    from lm_eval_emergence.metrics.table import definition

    values = value_keys(2, control=True, outcomes=True)
    keys = metric_keys(2, control=True, outcomes=True)
    assert keys == with_stderr_keys(values) and keys[: len(values)] == values
    stderr = keys[len(values) :]
    assert stderr[:2] == ["emergence_stderr", "emergence_macro_stderr"]
    with_stderr = {"diff_erank", "emergence_shot02", "emergence_outcome_other"}
    assert {f"{k}_stderr" for k in with_stderr} <= set(stderr)
    no_stderr = {"emergence_flagged_blocks", "emergence_shot02_layer_std"}
    no_stderr |= {"emergence_outcome_other_docs", "emergence_outcome_used_docs"}
    assert no_stderr <= set(values) and not {f"{k}_stderr" for k in no_stderr} & set(keys)
    assert all(definition(k).higher_is_better is None for k in stderr)  # no arrow on a ±
    with pytest.raises(KeyError, match="unknown emergence metric 'emergence_nope'"):
        with_stderr_keys(["emergence_nope"])


def test_task_manager_finds_the_plugin_tasks():
    from lm_eval.tasks import TaskManager

    names = set(TaskManager(include_path=lm_eval_emergence.TASKS_DIR).all_tasks)
    expected = {
        "emergence_icl",
        "emergence_icl_country",
        "emergence_icl_animal",
        "emergence_icl_color",
        "emergence_icl_shots",
        "emergence_natural",
        "emergence_text",
    }
    assert expected <= names


# --------------------------------------------------------------------------------------------
# payloads and the estimate


class _Request:
    """The part of lm-eval's Instance that HFEmergenceLM.emergence reads."""

    def __init__(
        self, token_ids, doc_id, tokenizer_fp, positions=None, capture=None, base=None, stream=None
    ):
        from lm_eval_emergence.capture import StreamSpec
        from lm_eval_emergence.harness.requests import RequestContext, RequestSpec

        context = RequestContext(
            tokenizer=tokenizer_fp,
            capture=capture or CaptureSettings(),
            model_settings=base or IESettings(),
            stream=None if stream is None else StreamSpec.from_dict(stream),
        )
        spec = RequestSpec(
            token_ids=tuple(token_ids),
            positions=tuple(positions or [len(token_ids) - 1]),
            next_token=True,
            score_ids=None,
            context=context,
        )
        self.args = ("", spec)
        self.task_name = "emergence_test"
        self.doc_id = doc_id


@pytest.fixture(scope="module")
def tiny_lm(tiny_gpt2_dir):
    from lm_eval_emergence.harness.model import HFEmergenceLM

    return HFEmergenceLM(
        pretrained=str(tiny_gpt2_dir), device="cpu", dtype="float32", batch_size=16
    )


def test_payloads_give_the_library_estimate_and_do_not_depend_on_the_rank_split(tiny_lm):
    from lm_eval_emergence import make_icl_sequences, measure_emergence
    from lm_eval_emergence.harness.model import tokenizer_fingerprint

    tok = tiny_lm.tokenizer
    seqs = make_icl_sequences(tok, "country", 4, 160, seed=1)
    fp = tokenizer_fingerprint(tok)
    requests = [_Request(s, i, fp) for i, s in enumerate(seqs)]
    whole = tiny_lm.emergence(requests)
    assert repr(whole[0]).startswith("EmergenceFeatures(T=8, layers=2, k=32")
    assert whole[0].macro_inputs.dtype == torch.float16
    assert all(f.micro is whole[0].micro for f in whole)  # one shared table per call
    # two "ranks": interleaved halves, each with its own micro table
    halves = tiny_lm.emergence(requests[0::2]) + tiny_lm.emergence(requests[1::2])
    a = TaskEstimate(EstimationSettings()).record(whole)
    estimate = TaskEstimate(EstimationSettings())
    b = estimate.record(halves)
    assert a.result.ie_bits == pytest.approx(b.result.ie_bits, abs=1e-9)
    # cached: every metric key reads the same estimate
    assert estimate.record(halves) is b
    assert estimate.aggregation("emergence")(halves) == b.result.ie_bits
    assert metric_value(b, "emergence_stderr") == b.result.ie_stderr_bits
    assert b.metrics == {key: metric_value(b, key) for key in metric_keys()}
    # a key this task does not report says why
    for key, why in [
        ("emergence_vs_random_stderr", "task emergence_test has no random-weights control"),
        ("diff_erank", "task emergence_test has no random-weights control"),
        ("emergence_shot01", "task emergence_test has 0 shots, no shot 1"),
        ("emergence_outcome_used_docs", "task emergence_test reports no IE by outcome"),
        ("emergence_nope", "unknown emergence metric 'emergence_nope'"),
    ]:
        with pytest.raises(KeyError, match=why):
            metric_value(b, key)
    assert ESTIMATES.records()["emergence_test"] is b
    # the library on the same sequences (float32 states; payloads are float16)
    ref = measure_emergence(tiny_lm.model, tok, seqs, micro_bos=None)  # the same default
    assert [r.layer for r in ref.per_layer] == a.result.layers
    assert a.result.ie_bits == pytest.approx(ref.ie_bits, abs=0.1)


def test_requests_carry_the_capture_settings(tiny_lm):
    from lm_eval_emergence import make_icl_sequences
    from lm_eval_emergence.harness.model import tokenizer_fingerprint

    seqs = make_icl_sequences(tiny_lm.tokenizer, "animal", 5, 4, seed=0)
    fp = tokenizer_fingerprint(tiny_lm.tokenizer)
    capture = CaptureSettings(layers=(1,), projection_dim=8)
    out = tiny_lm.emergence([_Request(s, i, fp, capture=capture) for i, s in enumerate(seqs)])
    assert out[0].info.layers == [1]
    assert out[0].macro_inputs.shape == (1, 1, 4 * 8)  # the block's 4 projections side by side
    assert out[0].info.settings == capture
    assert out[0].info.state_dim == 8 and out[0].info.state_dtype == "float16"
    assert out[0].info.projections == 4
    with pytest.raises(EmergenceConfigError, match="out of range"):
        tiny_lm.emergence([_Request(seqs[0], 0, fp, capture=CaptureSettings(layers=(5,)))])
    # a task resolved against another model's ie_* arguments is refused, not run silently
    other = IESettings.from_mapping({"ie_layers": "0"})
    with pytest.raises(EmergenceConfigError, match="another hf-emergence model"):
        tiny_lm.emergence([_Request(seqs[0], 0, fp, base=other)])
    # payloads captured under other settings than the task's (a stale request cache)
    estimate = TaskEstimate(EstimationSettings(), capture=CaptureSettings(layers=(0,)))
    more = make_icl_sequences(tiny_lm.tokenizer, "animal", 5, 80, seed=0)
    payloads = tiny_lm.emergence([_Request(s, i, fp, capture=capture) for i, s in enumerate(more)])
    with pytest.raises(EmergenceConfigError, match="--cache_requests refresh"):
        estimate.record(payloads)
    with pytest.raises(EmergenceConfigError, match="tokenizer"):
        tiny_lm.emergence([_Request(seqs[0], 0, "other|5")])


def test_too_few_documents_is_a_clear_error(tiny_lm):
    from lm_eval_emergence import make_icl_sequences
    from lm_eval_emergence.harness.model import tokenizer_fingerprint

    seqs = make_icl_sequences(tiny_lm.tokenizer, "country", 4, 10, seed=0)
    fp = tokenizer_fingerprint(tiny_lm.tokenizer)
    feats = tiny_lm.emergence([_Request(s, i, fp) for i, s in enumerate(seqs)])
    with pytest.raises(EmergenceConfigError, match="raise or drop --limit"):
        TaskEstimate(EstimationSettings()).record(feats)


def test_simple_evaluate_from_python(tiny_gpt2_dir):
    """The Python API: import the package, pass its task directory to lm-eval's TaskManager."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    out = lm_eval.simple_evaluate(
        model="hf-emergence",
        model_args=f"pretrained={tiny_gpt2_dir},dtype=float32,ie_estimator=gaussian",
        tasks=["emergence_icl_color"],
        device="cpu",
        batch_size="auto",  # emergence requests then use max_batch_size
        limit=200,  # the Gaussian fit needs more held-out rows than dimensions
        log_samples=True,
        task_manager=TaskManager(
            include_path=lm_eval_emergence.TASKS_DIR, metadata={"ie_layers": "1"}
        ),
    )
    row = out["results"]["emergence_icl_color"]
    # logprob_correct: ln of the next-token mass on the ids acc counts, checked by hand on a few
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir).eval()
    samples = out["samples"]["emergence_icl_color"]
    for sample in samples[:5]:
        doc = sample["doc"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([doc["token_ids"]])).logits[0, -1]
        want = torch.logsumexp(torch.log_softmax(logits.double(), -1)[doc["next_ok_ids"]], 0)
        assert sample["logprob_correct"] == pytest.approx(float(want), abs=1e-5)
    mean = sum(s["logprob_correct"] for s in samples) / len(samples)
    assert row["logprob_correct,none"] == pytest.approx(mean, rel=1e-9)
    assert row["logprob_correct_stderr,none"] > 0
    done = ESTIMATES.records()["emergence_icl_color"]
    assert done.result.estimator == "gaussian"  # model argument
    assert done.result.layers == [1]  # task metadata
    assert row["emergence,none"] == done.result.ie_bits
    assert row["emergence_stderr,none"] == done.result.ie_stderr_bits
    assert done.estimation == {
        "estimator": "gaussian",
        "options": {},
        "seed": 0,
        "target": "update",  # the default protocol's target stays
        "form": "ie",
    }
    # gaussian on the update is no named protocol; the results JSON's task config says so
    assert done.result.protocol == "custom"
    assert out["configs"]["emergence_icl_color"]["metadata"]["emergence_protocol"] == "custom"
    assert done.capture["settings"]["layers"] == [1]


def test_random_control_is_reported_next_to_the_model(tiny_gpt2_dir):
    """ie_control=random: the same documents on a seeded random-weights copy, IE minus IE.

    The fixture model is itself transformers' initialisation under seed 0, so a control seeded
    with 0 would be the model itself (and read exactly 0 against it): seed 1 here.
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    out = lm_eval.simple_evaluate(
        model="hf-emergence",
        model_args=f"pretrained={tiny_gpt2_dir},dtype=float32,ie_estimator=gaussian-floor,ie_seed=1",
        tasks=["emergence_icl_color"],
        device="cpu",
        batch_size=32,
        limit=128,
        task_manager=TaskManager(
            include_path=lm_eval_emergence.TASKS_DIR, metadata={"ie_control": "random"}
        ),
    )
    row = out["results"]["emergence_icl_color"]
    done = ESTIMATES.records()["emergence_icl_color"]
    assert done.control is not None and done.capture["settings"]["control"] == "random"
    model_ie, control_ie = done.result.ie_bits, done.control.ie_bits
    assert row["emergence_random,none"] == control_ie != model_ie
    assert row["emergence_vs_random,none"] == pytest.approx(model_ie - control_ie, abs=1e-12)
    # paired: the jackknife of the fold-by-fold differences (the same documents and folds; the
    # tiny model is not projected), not the two errors combined as if independent
    model_folds = done.result.ie_spread["left_out"]
    control_folds = done.control.ie_spread["left_out"]
    differences = [a - b for a, b in zip(model_folds, control_folds, strict=True)]
    mean = sum(differences) / len(differences)
    paired = (0.9 * sum((d - mean) ** 2 for d in differences)) ** 0.5
    assert len(differences) == 10 and done.result.projections == 1
    assert row["emergence_vs_random_stderr,none"] == pytest.approx(paired, rel=1e-9)
    evidence = done.evidence()  # carried into the results JSON's task metadata
    assert out["configs"]["emergence_icl_color"]["metadata"]["emergence_evidence"] == evidence
    assert evidence["separation_se"] == pytest.approx((model_ie - control_ie) / paired, rel=1e-9)
    assert (evidence["n_docs"], evidence["n_blocks"], evidence["projections"]) == (128, 2, 1)
    assert done.control.n == done.result.n == 128
    # the state statistics of the same states, and Diff-eRank = control minus model
    stats, control_stats = done.statistics, done.control_statistics
    assert set(stats) == set(control_stats) == {"erank", "matrix_entropy", "dispersion"}
    for name, stat in stats.items():
        assert row[f"{name},none"] == stat.value
        assert row[f"{name}_random,none"] == control_stats[name].value != stat.value
        assert row[f"{name}_stderr,none"] == stat.stderr > 0
        assert [r.layer for r in stat.per_layer] == done.result.layers
        assert stat.value == pytest.approx(sum(r.value for r in stat.per_layer) / 2, rel=1e-12)
        assert stat.n == 128
    rank = stats["erank"]
    assert row["diff_erank,none"] == pytest.approx(control_stats["erank"].value - rank.value)
    assert row["diff_erank_stderr,none"] > 0 and 1 <= rank.value <= rank.state_dim
    assert 0 < stats["dispersion"].value < 2
    # the sidecar's copy reads back as the same record
    from lm_eval_emergence.records import TaskRecord

    again = TaskRecord.from_dict(done.to_dict())
    assert again.control.ie_bits == control_ie
    assert again.statistics == stats and again.control_statistics == control_stats


def test_psi_form_on_a_per_position_task_fails_before_any_forward_pass(tiny_gpt2_dir):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from lm_eval_emergence.settings import EmergenceConfigError

    with pytest.raises(EmergenceConfigError, match="emergence_icl_shots reports E per position"):
        lm_eval.simple_evaluate(
            model="hf-emergence",
            model_args=f"pretrained={tiny_gpt2_dir},dtype=float32,ie_protocol=psi-update",
            tasks=["emergence_icl_shots"],
            device="cpu",
            limit=64,
            task_manager=TaskManager(include_path=lm_eval_emergence.TASKS_DIR),
        )


def test_ie_by_outcome_estimates_each_group_on_the_same_number_of_documents(tiny_lm):
    """Groups of 150 / 90 / 30 documents: the two usable ones are each estimated on 90 documents
    (the group's own estimate of a seeded draw), the one below 64 is NaN with its size."""
    import dataclasses
    import math

    import numpy as np

    from lm_eval_emergence import make_icl_sequences
    from lm_eval_emergence.harness.model import tokenizer_fingerprint

    tok = tiny_lm.tokenizer
    seqs = make_icl_sequences(tok, "country", 4, 270, seed=2)
    fp = tokenizer_fingerprint(tok)
    feats = tiny_lm.emergence([_Request(s, i, fp) for i, s in enumerate(seqs)])
    labels = ["correct"] * 150 + ["repeat"] * 90 + ["other"] * 30
    items = [dataclasses.replace(f, outcome=o) for f, o in zip(feats, labels, strict=True)]
    settings = EstimationSettings()
    record = TaskEstimate(settings).record(items)
    assert metric_value(record, "emergence_outcome_correct_docs") == 150
    assert metric_value(record, "emergence_outcome_repeat_docs") == 90
    assert metric_value(record, "emergence_outcome_other_docs") == 30
    assert metric_value(record, "emergence_outcome_used_docs") == 90
    assert math.isnan(metric_value(record, "emergence_outcome_other"))
    groups = {g.outcome: g for g in record.outcomes}
    assert groups["other"].reason.startswith("30 documents, below the 64")
    # the correct group's number is the estimate of 90 of its documents drawn with the seed
    rng = np.random.default_rng(settings.seed)
    pick = sorted(rng.permutation(150)[:90].tolist())
    alone = TaskEstimate(settings).record([items[i] for i in pick])
    assert metric_value(record, "emergence_outcome_correct") == pytest.approx(
        alone.result.ie_bits, abs=1e-9
    )
    assert metric_value(record, "emergence_outcome_correct_stderr") > 0
    # the repeat group uses all 90 of its documents
    whole = TaskEstimate(settings).record(items[150:240])
    assert metric_value(record, "emergence_outcome_repeat") == pytest.approx(
        whole.result.ie_bits, abs=1e-9
    )
    # and the outcome groups survive the sidecar's round trip
    from lm_eval_emergence.records import TaskRecord

    again = TaskRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert [g.n_used for g in again.outcomes] == [90, 90, 0]


@pytest.mark.parametrize(
    ("protocol", "streams"),
    [("floor-update", True), ("floor-output", True), ("infonce", False), ("usable-update", False)],
)
def test_the_protocol_not_the_document_count_decides_what_a_task_keeps(
    tiny_lm, protocol, streams, monkeypatch
):
    """Issue 35: a protocol that reads second moments streams at every N; one that needs
    samples keeps the states whatever N; the shots task keeps them for its outcome groups."""
    import weakref

    from lm_eval.tasks import TaskManager

    from lm_eval_emergence.capture import StreamSpec
    from lm_eval_emergence.harness import model as model_mod

    # the tasks build their documents with the live model's tokenizer: this module's model,
    # whatever another test built last
    monkeypatch.setattr(model_mod, "_LIVE", weakref.ref(tiny_lm))

    target = EstimationSettings.of_protocol(protocol).target
    metadata = {"ie_protocol": protocol, "n_docs": 200}
    manager = TaskManager(include_path=lm_eval_emergence.TASKS_DIR, metadata=metadata)
    tasks = manager.load(["emergence_icl_country", "emergence_icl_shots"])["tasks"]
    for (name, task), n in itertools.product(tasks.items(), (64, 200)):
        task.build_all_requests(limit=n, rank=0, world_size=1)
        stream = task.instances[0].args[1].context.stream
        if streams and name != "emergence_icl_shots":
            assert stream == StreamSpec(n, 10, 0, target), (name, n)
        else:
            assert stream is None, (name, n)


def test_streamed_payloads_hold_no_states_and_give_the_kept_states_estimate(tiny_lm):
    """Streamed payloads: moments per rank, added up on rank 0; a padded duplicate is counted
    once. The same documents kept (the payloads of a protocol that needs samples) give the same
    estimate to the float16 payloads' rounding."""
    from lm_eval_emergence import make_icl_sequences, measure_emergence
    from lm_eval_emergence.harness.model import tokenizer_fingerprint

    tok = tiny_lm.tokenizer
    seqs = make_icl_sequences(tok, "country", 4, 160, seed=1)
    fp = tokenizer_fingerprint(tok)
    stream = {"rows": 160, "folds": 10, "seed": 0, "target": "update"}
    kept = tiny_lm.emergence([_Request(s, i, fp) for i, s in enumerate(seqs)])
    requests = [_Request(s, i, fp, stream=stream) for i, s in enumerate(seqs)]
    whole = tiny_lm.emergence(requests)
    assert whole[0].macro_inputs is None and whole[0].payload_bytes == 8 * 8
    assert all(f.moments is whole[0].moments for f in whole)
    assert [f.next_token_id for f in whole] == [f.next_token_id for f in kept]
    # two "ranks", the second padded with a copy of its last request (as lm-eval does)
    first = tiny_lm.emergence(requests[0::2])
    second = tiny_lm.emergence([*requests[1::2], requests[-1]])[:-1]
    assert first[0].moments.macro[0].n == 80
    a = TaskEstimate(EstimationSettings()).record(kept)
    b = TaskEstimate(EstimationSettings()).record(whole)
    c = TaskEstimate(EstimationSettings()).record(first + second)
    assert b.capture["streamed"] and not a.capture["streamed"]
    assert c.result.ie_bits == pytest.approx(b.result.ie_bits, abs=1e-6)
    assert c.result.ie_stderr_bits == pytest.approx(b.result.ie_stderr_bits, abs=1e-6)
    # streamed moments come from the float32 states: the library's macro terms exactly; kept
    # payloads are float16, whose rounding moves a macro term by up to 0.02 bit here
    ref = measure_emergence(tiny_lm.model, tok, seqs, micro_bos=None)
    for row, lib in zip(b.result.per_layer, ref.per_layer, strict=True):
        assert row.macro_bits == pytest.approx(lib.macro_bits, abs=1e-5)
        assert row.micro_bits == pytest.approx(lib.micro_bits, abs=1e-3)  # float16 micro table
    assert b.result.ie_bits == pytest.approx(a.result.ie_bits, abs=0.02)
    assert b.result.ie_stderr_bits == pytest.approx(a.result.ie_stderr_bits, rel=0.05)
    assert abs(a.result.ie_bits) > 0.5
    # the state statistics: the same from the ranks' moments (and unit sums) as from one
    # rank's, and from the float16 payloads to their rounding
    for name in ("erank", "matrix_entropy", "dispersion"):
        assert c.statistics[name].value == pytest.approx(b.statistics[name].value, rel=1e-9)
        assert b.statistics[name].value == pytest.approx(a.statistics[name].value, rel=1e-3)
        assert b.statistics[name].stderr == pytest.approx(a.statistics[name].stderr, rel=0.02)
    # a document missing from the moments is an error, not a silently smaller N
    with pytest.raises(RuntimeError, match="each must be added once"):
        TaskEstimate(EstimationSettings()).record(first + second[:-1])
