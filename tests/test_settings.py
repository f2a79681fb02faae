"""The settings of an IE measurement: one parser of the `ie_*` keys, defaults in one place."""

from __future__ import annotations

import pytest

from lm_eval_emergence.settings import (
    DEFAULT_IE_ESTIMATOR,
    DEFAULT_IE_PROTOCOL,
    DEFAULT_PROJECTION_DIM,
    DEFAULT_PROJECTIONS,
    CaptureSettings,
    EmergenceConfigError,
    EstimationSettings,
    IESettings,
    parse_options,
)


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
    assert s.estimation.estimator == "gaussian"
    assert s.capture.layers == (0, 3, 5, 6, 7)
    assert s.capture.projection_dim is None
    assert s.capture.seed == 3 and s.estimation.seed == 3
    assert s.estimation.options == {"null": True, "reduce": "pca"}
    assert IESettings.from_mapping({"ie_layers": "all"}).capture.layers is None
    json_options = {"ie_estimator": "infonce", "ie_options": '{"steps": 5}'}
    assert IESettings.from_mapping(json_options).estimation.options == {"steps": 5}
    # later mappings override earlier ones, options merge
    first = IESettings.from_mapping(
        {"ie_seed": 2, "ie_estimator": "infonce", "ie_options": "null=true"}
    )
    t = IESettings.from_mapping({"ie_steps": 7}, base=first)
    assert (t.capture.seed, t.estimation.options) == (2, {"null": True, "steps": 7})
    assert IESettings.from_mapping({"ie_bos": "none"}).capture.bos is None
    assert IESettings.from_mapping({"ie_bos": "7"}).capture.bos == 7
    assert IESettings.from_mapping({"ie_batch_size": "auto"}).capture.batch_size == "auto"


def test_protocols_name_estimator_options_and_target():
    s = IESettings.from_mapping({"ie_protocol": "floor-update", "ie_seed": 4})
    assert s.estimation == EstimationSettings("gaussian-floor", {"kappa": 0.25}, 4, "update")
    assert s.estimation.protocol == "floor-update"
    assert IESettings().estimation.protocol == "floor-update"  # the default is a protocol
    paper = IESettings.from_mapping({"ie_protocol": "paper"}).estimation
    assert (paper.estimator, paper.target, paper.protocol) == ("mine-paper", "output", "paper")
    # any option that differs from the protocol's makes the settings custom, recorded as such
    fewer = IESettings.from_mapping({"ie_protocol": "paper", "ie_steps": 100}).estimation
    assert fewer.protocol == "custom" and fewer.options == {"steps": 100}
    # the same settings reached without the name are still that protocol
    by_hand = {"ie_estimator": "gaussian-floor", "ie_target": "update", "ie_options": "kappa=0.25"}
    assert IESettings.from_mapping(by_hand).estimation.protocol == "floor-update"
    # a protocol in task metadata replaces the model's estimator and options
    base = IESettings.from_mapping({"ie_estimator": "gaussian", "ie_seed": 2})
    t = IESettings.from_mapping({"ie_protocol": "infonce"}, base=base)
    assert (t.estimation.estimator, t.estimation.seed, t.estimation.protocol) == (
        "infonce",
        2,
        "infonce",
    )


def test_the_default_settings_are_the_default_protocol():
    assert EstimationSettings().protocol == DEFAULT_IE_PROTOCOL
    assert IESettings().estimation == EstimationSettings.of_protocol(DEFAULT_IE_PROTOCOL)
    assert (
        EstimationSettings().resolved_options()
        == EstimationSettings.of_protocol(DEFAULT_IE_PROTOCOL).resolved_options()
    )
    # another estimator starts from its own option defaults, not the previous one's
    base = IESettings.from_mapping({"ie_estimator": "gaussian-floor", "ie_options": "kappa=2"})
    other = IESettings.from_mapping({"ie_estimator": "infonce"}, base=base)
    assert (other.estimation.estimator, other.estimation.options) == ("infonce", {})


def test_defaults_live_in_one_place():
    s = IESettings()
    assert s.capture == CaptureSettings(
        layers=None, projection_dim=DEFAULT_PROJECTION_DIM, projections=DEFAULT_PROJECTIONS
    )
    assert (s.capture.seed, s.capture.salt, s.capture.bos, s.capture.batch_size) == (
        0, 0, "auto", None
    )  # fmt: skip
    assert s.estimation == EstimationSettings(DEFAULT_IE_ESTIMATOR, {"kappa": 0.25}, 0)
    assert (DEFAULT_IE_PROTOCOL, DEFAULT_IE_ESTIMATOR) == ("floor-update", "gaussian-floor")
    assert (s.estimation.target, DEFAULT_PROJECTION_DIM, DEFAULT_PROJECTIONS) == ("update", 64, 4)
    # the default protocol is bias-corrected (its estimator's default)
    assert s.estimation.resolved_options()["bias"] == "jackknife"
    # the profile command's repeated --option and the ie_options text give the same options
    assert (
        parse_options(["steps=500", "null=true", "reduce=pca"])
        == parse_options("steps=500;null=true;reduce=pca")
        == {"steps": 500, "null": True, "reduce": "pca"}
    )


def test_option_and_number_texts_become_their_values():
    # "none" is a value of reduce, not "unset"
    assert parse_options("reduce=none;null=true") == {"reduce": "none", "null": True}
    s = IESettings.from_mapping({"ie_options": "reduce=none"})
    assert s.estimation.resolved_options()["reduce"] == "none"
    # every field holds its one type, whatever text it came from
    c = CaptureSettings(projection_dim="32", seed="2", bos="7", batch_size="8")
    assert (c.projection_dim, c.seed, c.bos, c.batch_size) == (32, 2, 7, 8)
    assert EstimationSettings(seed="1").seed == 1


def test_settings_round_trip_through_their_dicts():
    capture = CaptureSettings(layers=(2, 0), projection_dim=None, seed=4, bos=None, batch_size=8)
    assert capture.layers == (0, 2)
    assert CaptureSettings.from_dict(capture.to_dict()) == capture
    assert EstimationSettings("gaussian", {"reduce_dim": 4, "null": None}).options == {
        "reduce_dim": 4
    }


@pytest.mark.parametrize(
    ("mapping", "fragment"),
    [
        ({"ie_estimator": "kde"}, "choose one of: gaussian, infonce"),
        ({"ie_estimater": "gaussian"}, "unknown emergence setting(s) ie_estimater"),
        ({"ie_layers": "a;b"}, "ie_layers must be"),
        (
            {"ie_projection_dim": 0},
            "projection_dim (ie_projection_dim) must be an integer >= 1 or 'none'",
        ),
        ({"ie_estimator": "gaussian", "ie_steps": 10}, "unknown option(s) 'steps'"),
        ({"ie_options": "nokeyvalue"}, "not key=value"),
        ({"ie_noise_std": "loud"}, "noise_std must be a number >= 0, got 'loud'"),
        ({"ie_bos": "start"}, "bos (ie_bos) must be 'auto', 'none' or a token id >= 0"),
        ({"ie_seed": "none"}, "seed (ie_seed) must be an integer >= 0"),
        ({"ie_protocol": "nope"}, "unknown IE protocol 'nope' (ie_protocol); choose one of: paper"),
        ({"ie_protocol": "paper", "ie_estimator": "infonce"}, "names its own estimator"),
        ({"ie_target": "input"}, "unknown target 'input' (ie_target); choose one of: output"),
        ({"ie_protocol": "floor-update", "ie_options": "kappa=0"}, "kappa must be a number > 0"),
        ({"ie_protocol": "floor-update", "ie_options": "kappa=-1"}, "kappa must be a number > 0"),
    ],
)
def test_bad_settings_name_the_problem(mapping, fragment):
    with pytest.raises(EmergenceConfigError) as info:
        IESettings.from_mapping(mapping)
    assert fragment in str(info.value)
