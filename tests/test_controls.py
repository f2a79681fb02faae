"""The random-weights control: the same architecture, fresh seeded weights, nothing learned."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lm_eval_emergence.controls import random_weights_copy
from lm_eval_emergence.settings import EmergenceConfigError, IESettings


def test_a_control_is_seeded_and_leaves_the_global_random_state_alone(tiny_gpt2):
    state = torch.random.get_rng_state()
    a, b, c = (random_weights_copy(tiny_gpt2, seed) for seed in (3, 3, 4))
    assert torch.equal(state, torch.random.get_rng_state())
    weight = lambda m: m.transformer.h[0].attn.c_attn.weight  # noqa: E731
    assert torch.equal(weight(a), weight(b))
    assert not torch.equal(weight(a), weight(c))
    assert not torch.equal(weight(a), weight(tiny_gpt2))
    assert weight(a).shape == weight(tiny_gpt2).shape and not a.training
    assert type(a) is type(tiny_gpt2) and a.config.n_layer == 3


def test_a_model_without_a_config_cannot_have_a_control():
    with pytest.raises(EmergenceConfigError, match="Linear has no .config. Drop ie_control"):
        random_weights_copy(nn.Linear(2, 2), 0)


def test_the_control_setting():
    assert IESettings.from_mapping({"ie_control": "random"}).capture.control == "random"
    assert IESettings.from_mapping({"ie_control": "none"}).capture.control is None
    with pytest.raises(EmergenceConfigError, match="control \\(ie_control\\) must be 'random'"):
        IESettings.from_mapping({"ie_control": "shuffled"})
