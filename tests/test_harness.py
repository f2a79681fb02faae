"""The lm-eval adapter in-process: registrations, settings, payloads, the cached estimate."""

from __future__ import annotations

import json

import pytest
import torch

import lm_eval_emergence
from lm_eval_emergence.data.windows import sentence_starts, windows_from_texts
from lm_eval_emergence.harness.aggregate import estimate_task, metric_value
from lm_eval_emergence.harness.features import TokenTable, merge_tables
from lm_eval_emergence.harness.settings import EmergenceConfigError, IESettings


def test_every_metric_key_and_the_model_are_registered():
    from lm_eval.api.registry import (
        get_aggregation,
        get_metric,
        get_metric_aggregation,
        get_model,
        is_higher_better,
    )

    from lm_eval_emergence.harness.metrics import EMERGENCE_METRICS
    from lm_eval_emergence.harness.model import HFEmergenceLM

    assert get_model("hf-emergence") is HFEmergenceLM
    assert get_model("hf") is not HFEmergenceLM  # built-in models are still there
    for key in EMERGENCE_METRICS:
        assert get_metric(key) is not None, key
        assert get_metric_aggregation(key) is get_aggregation(key), key
    assert is_higher_better("emergence") is True
    assert is_higher_better("emergence_stderr") is False
    assert (
        "emergence_shot10" in EMERGENCE_METRICS and "emergence_shot10_stderr" in EMERGENCE_METRICS
    )


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
# settings


def test_settings_parse_model_argument_strings():
    s = IESettings.from_mapping(
        {
            "ie_estimator": "gaussian",
            "ie_layers": "0;5-7;3",
            "ie_projection_dim": "none",
            "ie_seed": 3,
            "ie_options": "null=true;reduce=pca",
        }
    )
    assert s.estimator == "gaussian"
    assert s.layers == (0, 3, 5, 6, 7)
    assert s.projection_dim is None
    assert s.seed == 3
    assert s.options == {"null": True, "reduce": "pca"}
    assert IESettings.from_mapping({"ie_layers": "all"}).layers is None
    assert IESettings.from_mapping({"ie_options": '{"steps": 5}'}).options == {"steps": 5}
    # later mappings override earlier ones, options merge
    t = IESettings.from_mapping({"ie_steps": 7}, base=IESettings.from_mapping({"ie_seed": 2}))
    assert (t.seed, t.options) == (2, {"steps": 7})


@pytest.mark.parametrize(
    ("mapping", "fragment"),
    [
        ({"ie_estimator": "kde"}, "choose one of: gaussian, infonce"),
        ({"ie_estimater": "gaussian"}, "unknown emergence setting(s) ie_estimater"),
        ({"ie_layers": "a;b"}, "ie_layers must be"),
        ({"ie_projection_dim": 0}, "ie_projection_dim must be an integer >= 1"),
        ({"ie_estimator": "gaussian", "ie_steps": 10}, "unknown option(s) 'steps'"),
        ({"ie_options": "nokeyvalue"}, "not key=value"),
        ({"ie_noise_std": "loud"}, "ie_noise_std must be a number"),
    ],
)
def test_bad_settings_name_the_problem(mapping, fragment):
    with pytest.raises(EmergenceConfigError) as info:
        IESettings.from_mapping(mapping)
    assert fragment in str(info.value)


# --------------------------------------------------------------------------------------------
# windows of natural text


def test_sentence_starts_and_windows():
    text = "The cat sat on the mat. A dog ran to the door! Why not? Then it rained."
    starts = sentence_starts(text)
    assert [text[s : s + 4] for s in starts] == ["The ", "A do", "Why ", "Then"]

    class Words:  # a whitespace tokenizer
        vocab: dict[str, int] = {}

        def __call__(self, texts, add_special_tokens=False):
            return {
                "input_ids": [
                    [self.vocab.setdefault(w, len(self.vocab)) for w in t.split()] for t in texts
                ]
            }

        def decode(self, ids):
            inverse = {v: k for k, v in self.vocab.items()}
            return " ".join(inverse[i] for i in ids)

    tok = Words()
    windows = windows_from_texts(tok, [text], 4)
    # "Why not? Then" holds '?': rejected (the paper's filter); "Then it rained." is too short
    assert [w.text for w in windows] == ["The cat sat on", "A dog ran to"]
    assert windows_from_texts(tok, [text], 4, reject_chars="")[-1].text == "Why not? Then it"
    with pytest.raises(ValueError, match="fewer than the window of 4"):
        windows_from_texts(tok, ["Too short."], 4, require_first=True)


# --------------------------------------------------------------------------------------------
# payloads and the estimate


def test_token_table_lookup_and_merge():
    a = TokenTable(torch.tensor([5, 2]), torch.arange(4.0).reshape(1, 2, 2), -torch.ones(1, 2, 2))
    b = TokenTable(torch.tensor([2, 9]), torch.full((1, 2, 2), 7.0), torch.zeros(1, 2, 2))
    merged = merge_tables([a, b, a])
    ids = torch.tensor([[2, 9], [5, 5]])
    inputs, outputs = merged.lookup(ids)
    assert inputs.shape == (1, 2, 2, 2)
    assert inputs[0, 0, 0].tolist() == [2.0, 3.0]  # token 2 keeps its first entry (table a)
    assert inputs[0, 0, 1].tolist() == [7.0, 7.0]
    assert inputs[0, 1, 0].tolist() == [0.0, 1.0]
    with pytest.raises(RuntimeError, match="no micro state"):
        a.lookup(torch.tensor([[9]]))


class _Request:
    """The part of lm-eval's Instance that HFEmergenceLM.emergence reads."""

    def __init__(self, token_ids, doc_id, tokenizer_fp, positions=None, settings=None):
        spec = {
            "token_ids": token_ids,
            "positions": positions or [len(token_ids) - 1],
            "next_token": True,
            "tokenizer": tokenizer_fp,
            "settings": settings or {},
        }
        self.args = ("", json.dumps(spec))
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
    a = estimate_task(whole)
    b = estimate_task(halves)
    assert a.result.ie_bits == pytest.approx(b.result.ie_bits, abs=1e-9)
    # cached: every metric key reads the same estimate
    assert estimate_task(halves) is b
    assert metric_value(b, "emergence") == b.result.ie_bits
    assert metric_value(b, "emergence_stderr") == b.result.ie_stderr_bits
    # the library on the same sequences (float32 states; payloads are float16)
    ref = measure_emergence(tiny_lm.model, tok, seqs, estimator="infonce", micro_bos=None)
    assert [r["layer"] for r in ref.per_layer] == a.result.layers
    assert a.result.ie_bits == pytest.approx(ref.ie_bits, abs=0.1)


def test_task_settings_override_the_model_arguments(tiny_lm):
    from lm_eval_emergence import make_icl_sequences
    from lm_eval_emergence.harness.model import tokenizer_fingerprint

    seqs = make_icl_sequences(tiny_lm.tokenizer, "animal", 5, 4, seed=0)
    fp = tokenizer_fingerprint(tiny_lm.tokenizer)
    out = tiny_lm.emergence(
        [
            _Request(s, i, fp, settings={"ie_layers": "1", "ie_projection_dim": 8})
            for i, s in enumerate(seqs)
        ]
    )
    assert out[0].info.layers == [1]
    assert out[0].macro_inputs.shape == (1, 1, 8)
    assert out[0].settings.layers == (1,)
    with pytest.raises(EmergenceConfigError, match="tokenizer"):
        tiny_lm.emergence([_Request(seqs[0], 0, "other|5")])


def test_too_few_documents_is_a_clear_error(tiny_lm):
    from lm_eval_emergence import make_icl_sequences
    from lm_eval_emergence.harness.model import tokenizer_fingerprint

    seqs = make_icl_sequences(tiny_lm.tokenizer, "country", 4, 10, seed=0)
    fp = tokenizer_fingerprint(tiny_lm.tokenizer)
    feats = tiny_lm.emergence([_Request(s, i, fp) for i, s in enumerate(seqs)])
    with pytest.raises(EmergenceConfigError, match="raise or drop --limit"):
        estimate_task(feats)


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
        task_manager=TaskManager(
            include_path=lm_eval_emergence.TASKS_DIR, metadata={"ie_layers": "1"}
        ),
    )
    row = out["results"]["emergence_icl_color"]
    from lm_eval_emergence.harness import completed_tasks

    done = completed_tasks()["emergence_icl_color"]
    assert done.result.estimator == "gaussian"  # model argument
    assert done.result.layers == [1]  # task metadata
    assert row["emergence,none"] == done.result.ie_bits
    assert row["emergence_stderr,none"] == done.result.ie_stderr_bits
