"""The tasks' document options: one parser, one default per option and task kind, and a
misspelt option is an error naming the valid ones."""

from __future__ import annotations

import pytest

from lm_eval_emergence.harness.options import TaskOptions
from lm_eval_emergence.settings import EmergenceConfigError


def test_each_kind_gets_its_own_defaults_and_reads_only_its_options():
    icl = TaskOptions.of("icl", {"version": 1.0, "category": "animal", "k": 5})
    assert (icl.n_docs, icl.data_seed, icl.category, icl.k) == (2000, 1234, "animal", 5)
    natural = TaskOptions.of("natural", {"window": "12", "n_docs": 100, "k": 7})
    assert (natural.n_docs, natural.window, natural.k) == (100, 12, 4)  # k is not its option
    assert TaskOptions.of("text", {}).n_docs is None  # a text task keeps every window
    shots = TaskOptions.of("shots", {"max_shots": 6})
    assert (shots.max_shots, shots.n_docs) == (6, 2000)
    # the cloze task's own count wins over the n_docs shared with the emergence tasks
    assert TaskOptions.of("cloze", {}).cloze_count == 500
    assert TaskOptions.of("cloze", {"n_docs": 30}).cloze_count == 30
    assert TaskOptions.of("cloze", {"n_docs": 30, "cloze_items": 12}).cloze_count == 12


def test_bad_values_name_the_option_and_the_fix():
    for kind, metadata, message in [
        ("icl", {"n_docs": 0}, "n_docs must be an integer >= 1, got 0"),
        ("icl", {"data_seed": "x"}, "data_seed must be an integer >= 0"),
        ("shots", {"max_shots": 11}, "max_shots must be at most 10, got 11"),
        ("natural", {"window": 1}, "window must be an integer >= 2"),
        ("text", {"text_field": 3}, "text_field must be a string"),
    ]:
        with pytest.raises(EmergenceConfigError, match=message):
            TaskOptions.of(kind, metadata)


def test_a_misspelt_option_is_an_error_naming_the_valid_ones():
    # with the model's arguments known, any other key is a typo
    model_arguments = {"pretrained", "dtype", "ie_seed"}
    metadata = {"pretrained": "m", "dtype": "float32", "ie_seed": 3, "n_doc": 100}
    with pytest.raises(EmergenceConfigError) as caught:
        TaskOptions.of("icl", metadata, model_arguments)
    message = str(caught.value)
    assert "unknown task option 'n_doc' (did you mean 'n_docs'?)" in message
    assert "the options are: n_docs, data_seed, category" in message
    with pytest.raises(EmergenceConfigError, match="unknown task option 'revison'"):
        TaskOptions.of("icl", {"revison": "main"}, model_arguments)
    # unknown the model's arguments (the cloze task under any model): only near misses
    TaskOptions.of("cloze", {"revision": "main", "trust_remote_code": True})
    with pytest.raises(EmergenceConfigError, match="did you mean 'data_seed'"):
        TaskOptions.of("cloze", {"data_sed": 1})
    # the settings' keys are checked by the settings, not here
    assert TaskOptions.of("icl", {"ie_projections": 2}, model_arguments).n_docs == 2000
