"""emergence_cloze: the seeded cloze items of the shipped corpus and the plain lm-eval task."""

from __future__ import annotations

import math

import pytest

import lm_eval_emergence
import lm_eval_emergence.harness  # noqa: F401  (registers hf-emergence)
from lm_eval_emergence.data.cloze import cloze_items, qualifies
from lm_eval_emergence.data.windows import corpus_sentences
from lm_eval_emergence.harness.documents import cloze_documents
from lm_eval_emergence.settings import EmergenceConfigError

DEFAULT_CLOZE_DOCS, DEFAULT_N_CHOICES = 500, 4  # the task's defaults (harness/options.py)


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return corpus_sentences()


@pytest.fixture(scope="module")
def items(sentences) -> list[dict]:
    return cloze_items(sentences, 300, 4, seed=7)


def test_the_same_seed_gives_the_same_items_and_another_seed_others(sentences, items):
    assert cloze_items(sentences, 300, 4, seed=7) == items
    other = cloze_items(sentences, 300, 4, seed=8)
    assert other != items
    assert len({r["source"] for r in other} & {r["source"] for r in items}) < 100
    # items are drawn one after another: fewer items are the first ones (as --limit takes them)
    assert cloze_items(sentences, 50, 4, seed=7) == items[:50]


def test_gold_is_the_sentences_last_word_and_the_context_its_start(sentences, items):
    for row in items:
        sentence = sentences[row["source"]]
        answer = row["choices"][row["gold"]]
        assert answer == sentence.split()[-1].rstrip(".!")
        assert row["context"] + " " + answer == sentence.rstrip(".!")
        assert len(row["context"].split()) >= 7
        assert answer.isalpha() and len(answer) >= 3


def test_choices_are_distinct_last_words_and_gold_is_shuffled(sentences, items):
    endings = {q[1] for q in map(qualifies, sentences) if q is not None}
    for row in items:
        assert len(row["choices"]) == 4
        assert len({c.lower() for c in row["choices"]}) == 4
        assert set(row["choices"]) <= endings
    assert len({r["source"] for r in items}) == len(items)  # no sentence twice
    golds = [r["gold"] for r in items]
    assert {0, 1, 2, 3} == set(golds)
    assert max(golds.count(g) for g in range(4)) < 0.4 * len(golds)
    for n in (2, 3, 7):
        assert {len(r["choices"]) for r in cloze_items(sentences, 40, n, seed=1)} == {n}


def test_only_plain_sentences_qualify():
    assert qualifies("The family of Dashwood had long been settled in Sussex.") == (
        "The family of Dashwood had long been settled in",
        "Sussex",
    )
    assert qualifies("He said it again and again, very loudly, to us all!") == (
        "He said it again and again, very loudly, to us",
        "all",
    )
    rejected = [
        "Too short a sentence here.",  # fewer than 8 words
        "Did he ever come back to the house at all?",
        "He came back to the house; she did not come.",
        "He came back to the house at half-past ten.",
        "He came back to the house of his old friend's.",
        "He came back to the house and then he left it.",  # answer of 2 letters
        "He came back to the house and then he left it",  # no final punctuation
    ]
    assert [qualifies(s) for s in rejected] == [None] * len(rejected)


def test_impossible_requests_are_value_errors(sentences):
    with pytest.raises(ValueError, match="n_choices must be at least 2"):
        cloze_items(sentences, 10, 1, seed=0)
    few = [f"The quiet old man walked slowly along the {w}." for w in ("road", "river", "wall")]
    with pytest.raises(ValueError, match="only 3 of 3 sentences qualify"):
        cloze_items(few, 5, 2, seed=0)
    with pytest.raises(ValueError, match="only 3 distinct words"):
        cloze_items(few, 3, 4, seed=0)
    assert len(cloze_items(few, 3, 3, seed=0)) == 3


def test_task_documents_and_their_errors(sentences):
    docs = cloze_documents(version=1.0, n_docs=30, data_seed=5)
    # its own count wins over the n_docs of the emergence tasks in the same --metadata
    assert len(cloze_documents(n_docs=30, cloze_items=12)["test"]) == 12
    assert list(docs) == ["test"]
    assert docs["test"].to_list() == cloze_items(sentences, 30, DEFAULT_N_CHOICES, seed=5)
    assert len(cloze_documents()["test"]) == DEFAULT_CLOZE_DOCS
    bad = [
        ({"n_choices": 1}, "n_choices must be an integer >= 2"),
        ({"n_docs": 0}, "n_docs must be an integer >= 1"),
        ({"n_docs": "many"}, "n_docs must be an integer >= 1"),
        ({"data_seed": -1}, "data_seed must be an integer >= 0"),
        ({"n_docs": 10**6}, "lower cloze_items or n_choices"),
        ({"n_chocies": 3}, "unknown task option 'n_chocies' \\(did you mean 'n_choices'\\?\\)"),
    ]
    for options, message in bad:
        with pytest.raises(EmergenceConfigError, match=message):
            cloze_documents(**options)


def test_lm_eval_loads_it_as_a_plain_multiple_choice_task(sentences):
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=lm_eval_emergence.TASKS_DIR)
    assert "emergence_cloze" in manager.all_tasks
    task = manager.load(["emergence_cloze"])["tasks"]["emergence_cloze"]
    assert type(task).__name__ == "ConfigurableTask"
    assert task.OUTPUT_TYPE == "multiple_choice"
    doc = task.test_docs()[0]
    expected = cloze_items(sentences, DEFAULT_CLOZE_DOCS, DEFAULT_N_CHOICES, seed=1234)[0]
    assert task.doc_to_text(doc) == expected["context"]
    assert task.doc_to_choice(doc) == expected["choices"]
    assert task.doc_to_target(doc) == expected["gold"]


@pytest.mark.parametrize("model", ["hf", "hf-emergence"])
def test_simple_evaluate_reports_accuracy_with_any_model(tiny_gpt2_dir, model):
    import lm_eval
    from lm_eval.tasks import TaskManager

    limit = 20
    out = lm_eval.simple_evaluate(
        model=model,
        model_args=f"pretrained={tiny_gpt2_dir},dtype=float32",
        tasks=["emergence_cloze"],
        device="cpu",
        batch_size=8,
        limit=limit,
        log_samples=True,
        task_manager=TaskManager(include_path=lm_eval_emergence.TASKS_DIR),
    )
    row = out["results"]["emergence_cloze"]
    samples = out["samples"]["emergence_cloze"]
    assert len(samples) == limit
    correct = []
    for sample in samples:
        loglikelihoods = [resp[0][0] for resp in sample["resps"]]
        assert len(loglikelihoods) == DEFAULT_N_CHOICES
        best = max(range(len(loglikelihoods)), key=loglikelihoods.__getitem__)
        correct.append(float(best == sample["doc"]["gold"]))
        assert sample["acc"] == correct[-1]
    assert row["acc,none"] == pytest.approx(sum(correct) / limit, abs=1e-12)
    assert 0.0 <= row["acc_norm,none"] <= 1.0
    assert math.isfinite(row["acc_stderr,none"])


def test_the_command_lets_any_model_run_the_cloze_task_but_not_the_emergence_tasks():
    from lm_eval_emergence.cli import _wrong_model_message

    assert _wrong_model_message(["--model", "hf", "--tasks", "emergence_cloze"]) is None
    message = _wrong_model_message(["--model", "hf", "--tasks", "emergence_cloze,emergence_icl"])
    assert message is not None and "cannot run emergence_icl:" in message
