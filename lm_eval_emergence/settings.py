"""The settings of one IE measurement: what the forward passes need, and what the estimate needs.

One object, two halves, one parser. `CaptureSettings` is everything the captured states depend on
(blocks, projection, its seed, BOS, batch size); `EstimationSettings` everything the number
computed from them depends on (estimator, its options, its seed). The library, the profile
command, the benchmarks and the lm-eval adapter all build them here, from keyword arguments or
from the `ie_*` keys of `--model_args` and task metadata:

    ie_protocol        a named protocol (`protocols.py`): estimator, options, target and form
                       in one name, e.g. "paper" (the paper's MINE configuration); default
                       DEFAULT_IE_PROTOCOL
    ie_estimator       MI estimator (`estimator_names()`); sets only the estimator (its options
                       start from its defaults); not with ie_protocol, which names its own
    ie_target          what is read of each block: "output" y or "update" y - x (default)
    ie_form            the micro term: "ie" (each token alone, in and out; default) or "psi"
                       (each token alone in, against the sequence's output in context)
    ie_layers          blocks to measure: "all", "0;5;10" or "0-29" (";" because model_args
                       are comma-separated), default all
    ie_projection_dim  seeded random projection width while capturing; "none" keeps the full
                       hidden size, default 64
    ie_projections     independent projections per block, averaged, whose spread enters every
                       standard error (`uncertainty.py`); default DEFAULT_PROJECTIONS
    ie_seed            seed of the projection, the data split and the critic, default 0
    ie_bos             BOS before each token alone and each sequence: "auto" (the tokenizer's
                       rule, `capture.model_bos_token_id`), "none" or a token id
    ie_batch_size      forward-pass batch size ("auto": lm-eval's max_batch_size); default the
                       caller's (--batch_size in lm-eval, 64 in the library)
    ie_control         "random": also measure the architecture with fresh weights (seeded by
                       ie_seed) and report emergence_random and emergence_vs_random; "none"
    ie_steps           critic training steps (neural estimators)
    ie_noise_std       Gaussian noise added to the states before estimation
    ie_options         any other estimator option: "null=true;reduce=pca" or a JSON dict

`ie_stream` is gone (issue 35): the protocol decides what a capture keeps (an estimator that reads
second moments always streams them, one that needs samples keeps the states), so the key is an
error that says so.

In lm-eval 0.4.13 the precedence is: defaults < task YAML `metadata` < model arguments <
`--metadata` (lm-eval merges the model arguments into the metadata it lays over each YAML's).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .estimators.api import resolve_options
from .estimators.moments import DEFAULT_FOLDS
from .estimators.registry import estimator_names
from .protocols import FORMS, TARGETS, get_protocol, protocol_name

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_IE_ESTIMATOR",
    "DEFAULT_IE_PROTOCOL",
    "DEFAULT_PROJECTION_DIM",
    "DEFAULT_PROJECTIONS",
    "SETTING_KEYS",
    "CaptureSettings",
    "EmergenceConfigError",
    "EstimationSettings",
    "IESettings",
    "ie_keys",
    "parse_int",
    "parse_options",
]

#: The protocol of IE where none is chosen (`protocols.py`; docs/validity.md says why this one).
#: Its options must be its estimator's defaults, so that `EstimationSettings()` is this protocol.
DEFAULT_IE_PROTOCOL = "floor-update"
_DEFAULT = get_protocol(DEFAULT_IE_PROTOCOL)
#: The estimator of the default protocol.
DEFAULT_IE_ESTIMATOR = _DEFAULT.estimator
#: Width of the seeded random projection applied while capturing: bounds memory and makes the
#: 30-block SmolLM2 profile fit in 5 minutes on 2 cores (docs/performance.md).
DEFAULT_PROJECTION_DIM = 64
#: Independent random projections of every block, captured in the same forward passes: IE is
#: the mean over them, and their spread is part of its standard error (docs/method-notes.md;
#: the number is chosen from the estimation's cost in docs/performance.md).
DEFAULT_PROJECTIONS = 4
#: Forward-pass batch size where the caller sets none (the library and the profile command).
DEFAULT_BATCH_SIZE = 64
#: The controls an lm-eval run can carry next to the model (`controls.py`).
CONTROLS = (None, "random")
#: Keys that chose something once and no longer do: the key, and why it is an error now.
REMOVED_KEYS = {
    "ie_stream": (
        "ie_stream was removed (issue 35): what a capture keeps is the protocol's to decide, "
        "not a setting; an estimator that reads second moments (gaussian-floor: floor-update, "
        "floor-output) always streams them, one that needs samples keeps the states. Drop "
        "ie_stream from --model_args or the task metadata"
    ),
}

SETTING_KEYS = (
    "ie_protocol",
    "ie_estimator",
    "ie_target",
    "ie_form",
    "ie_layers",
    "ie_projection_dim",
    "ie_projections",
    "ie_seed",
    "ie_bos",
    "ie_batch_size",
    "ie_control",
    "ie_steps",
    "ie_noise_std",
    "ie_options",
)


class EmergenceConfigError(ValueError):
    """A setting, task option or input that the plugin cannot use; the message names the fix."""


# ------------------------------------------------------------------------------- the parsers


def _is_none(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in ("none", ""))


def parse_scalar(text: str) -> Any:
    """A setting's text as bool, None, int, float or (otherwise) the stripped string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_int(name: str, value: Any, low: int, *, allow_none: bool = True) -> int | None:
    """`value` (an int or its text) as an integer >= `low`; None/"none"/"" give None if allowed."""
    if allow_none and _is_none(value):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise EmergenceConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise EmergenceConfigError(f"{name} must be an integer >= {low}, got {value!r}") from None
    if number < low:
        raise EmergenceConfigError(f"{name} must be an integer >= {low}, got {number}")
    return number


def parse_layers(value: Any) -> tuple[int, ...] | None:
    """Block indices from "all"/None, an int, a list, "0;5;10" or "0-29" (sorted, distinct)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("all", "")):
        return None
    if isinstance(value, bool):
        raise EmergenceConfigError(f"ie_layers must be 'all' or block indices, got {value!r}")
    if isinstance(value, int):
        return (value,)
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = []
        for part in str(value).replace(",", ";").split(";"):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                try:
                    items.extend(range(int(lo), int(hi) + 1))
                except ValueError:
                    raise EmergenceConfigError(
                        f"ie_layers range {part!r} is not 'a-b' with integers a <= b"
                    ) from None
            else:
                items.append(part)
    if any(isinstance(v, bool) for v in items):
        raise EmergenceConfigError(f"ie_layers must be block indices, got {value!r}")
    try:
        layers = [int(v) for v in items]
    except (TypeError, ValueError):
        raise EmergenceConfigError(
            f"ie_layers must be 'all', indices like '0;5;10' or a range like '0-29', got {value!r}"
        ) from None
    if not layers:
        raise EmergenceConfigError("ie_layers is empty; use 'all' or list block indices")
    return tuple(sorted(dict.fromkeys(layers)))


def parse_options(value: Any) -> dict[str, Any]:
    """Estimator options from a dict, a JSON object, "key=value;key=value" or a list of
    "key=value" strings (the profile command's repeated --option)."""
    if _is_none(value):
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (list, tuple)):
        parts = [str(v) for v in value]
    else:
        text = str(value).strip()
        if text.startswith("{"):
            try:
                return dict(json.loads(text))
            except json.JSONDecodeError as exc:
                raise EmergenceConfigError(f"ie_options is not valid JSON: {exc}") from None
        parts = text.split(";")
    out: dict[str, Any] = {}
    for part in parts:
        if not part.strip():
            continue
        key, sep, raw = part.partition("=")
        if not sep or not key.strip():
            raise EmergenceConfigError(
                f"estimator option {part!r} is not key=value; write e.g. "
                "'ie_options=null=true;reduce=pca'"
            )
        value = parse_scalar(raw)
        # "none" is a value of some options (reduce=none); only JSON null means unset
        out[key.strip()] = raw.strip() if value is None else value
    return out


def _parse_projection_dim(value: Any) -> int | None:
    try:
        return parse_int("projection_dim (ie_projection_dim)", value, 1)
    except EmergenceConfigError:
        raise EmergenceConfigError(
            "projection_dim (ie_projection_dim) must be an integer >= 1 or 'none' (the full "
            f"hidden size), got {value!r}"
        ) from None


def _parse_bos(value: Any) -> int | str | None:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return parse_int("bos (ie_bos)", value, 0)
    except EmergenceConfigError:
        raise EmergenceConfigError(
            f"bos (ie_bos) must be 'auto', 'none' or a token id >= 0, got {value!r}"
        ) from None


def _parse_batch_size(value: Any) -> int | str | None:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    return parse_int("batch_size (ie_batch_size)", value, 1)


def _parse_control(value: Any) -> str | None:
    control = None if _is_none(value) else str(value).strip().lower()
    if control not in CONTROLS:
        raise EmergenceConfigError(
            "control (ie_control) must be 'random' (a random-weights copy of the model) or "
            f"'none', got {value!r}"
        )
    return control


def _parse_name(field: str, value: Any, choices: tuple[str, ...], lower: bool = True) -> str:
    name = str(value).strip()
    name = name.lower() if lower else name
    if name not in choices:
        raise EmergenceConfigError(
            f"unknown {field} {value!r} (ie_{field}); choose one of: {', '.join(choices)}"
        )
    return name


def ie_keys(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The `ie_*` entries of `mapping`; an unknown `ie_*` key (a typo) is an error."""
    found = {k: v for k, v in mapping.items() if isinstance(k, str) and k.startswith("ie_")}
    removed = sorted(set(found) & set(REMOVED_KEYS))
    if removed:
        raise EmergenceConfigError(REMOVED_KEYS[removed[0]])
    unknown = sorted(set(found) - set(SETTING_KEYS))
    if unknown:
        raise EmergenceConfigError(
            f"unknown emergence setting(s) {', '.join(unknown)}; the settings are: "
            f"{', '.join(SETTING_KEYS)}"
        )
    return found


# ----------------------------------------------------------------------------- the settings


@dataclass(frozen=True)
class CaptureSettings:
    """What the captured states depend on. Block indices are checked against the model later."""

    layers: tuple[int, ...] | None = None  # None: every block
    projection_dim: int | None = DEFAULT_PROJECTION_DIM  # None: the full hidden size
    projections: int = DEFAULT_PROJECTIONS  # independent projections per block (1 unprojected)
    seed: int = 0  # of the projection
    #: mixed into the projections' seeds, so that measurements under one seed that are meant to
    #: be independent (each lm-eval task) draw independent projections; 0 in the library
    salt: int = 0
    bos: int | str | None = "auto"  # "auto": the tokenizer's rule; None: no BOS
    batch_size: int | str | None = None  # None: the caller's default; "auto": lm-eval's
    control: str | None = None  # "random": also capture a random-weights copy (lm-eval)

    def __post_init__(self) -> None:
        """Check every field and store it in its one type (the one place settings are checked:
        an int's text becomes the int, "none" None, an int `layers` a tuple)."""
        set_ = object.__setattr__
        set_(self, "layers", parse_layers(self.layers))
        set_(self, "projection_dim", _parse_projection_dim(self.projection_dim))
        projections = parse_int(
            "projections (ie_projections)", self.projections, 1, allow_none=False
        )
        set_(self, "projections", projections)
        set_(self, "seed", parse_int("seed (ie_seed)", self.seed, 0, allow_none=False))
        set_(self, "salt", parse_int("salt", self.salt, 0, allow_none=False))
        set_(self, "bos", _parse_bos(self.bos))
        set_(self, "batch_size", _parse_batch_size(self.batch_size))
        set_(self, "control", _parse_control(self.control))

    def to_dict(self) -> dict[str, Any]:
        names = ("projection_dim", "projections", "seed", "salt", "bos", "batch_size", "control")
        out = {k: getattr(self, k) for k in names}
        return {"layers": None if self.layers is None else list(self.layers), **out}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaptureSettings:
        layers = data.get("layers")
        # "stream": written before issue 35, when it was a setting; the protocol decides now
        kept = {k: v for k, v in data.items() if k != "stream"}
        return cls(**{**kept, "layers": None if layers is None else tuple(layers)})


@dataclass(frozen=True)
class EstimationSettings:
    """What the estimate computed from captured states depends on; checked when built."""

    estimator: str = DEFAULT_IE_ESTIMATOR
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    target: str = _DEFAULT.target  # "output" y, or "update": the block's output minus its input
    form: str = _DEFAULT.form  # "ie", or "psi": micro inputs against the macro output
    #: the named protocol these settings are, or "custom" (`protocols.protocol_name`): found
    #: once, when the settings are built
    protocol: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "estimator", _parse_name("estimator", self.estimator, estimator_names(), False))
        set_(self, "target", _parse_name("target", self.target, TARGETS))
        set_(self, "form", _parse_name("form", self.form, FORMS))
        set_(self, "seed", parse_int("seed (ie_seed)", self.seed, 0, allow_none=False))
        options = {k: v for k, v in dict(self.options).items() if v is not None}
        object.__setattr__(self, "options", options)
        try:
            resolve_options(self.estimator, options)
        except ValueError as exc:
            raise EmergenceConfigError(
                f"{exc} Set estimator options with ie_steps, ie_noise_std or ie_options."
            ) from None
        set_(self, "protocol", protocol_name(self.estimator, options, self.target, self.form))

    @classmethod
    def choose(
        cls,
        *,
        protocol: str | None = None,
        estimator: str | None = None,
        options: Mapping[str, Any] | None = None,
        target: str | None = None,
        form: str | None = None,
        seed: Any = None,
        base: EstimationSettings | None = None,
    ) -> EstimationSettings:
        """`base` (default: the default protocol) with what is named here changed.

        A protocol replaces the estimator, its options, the target and the form; an estimator
        other than the base's starts from its own default options; `options`, `target` and
        `form` then adjust either. The one place a protocol and an estimator meet.
        """
        if protocol is not None and estimator is not None:
            raise EmergenceConfigError(
                f"protocol {protocol!r} (ie_protocol) and estimator {estimator!r} "
                "(ie_estimator) are both set; a protocol names its own estimator: drop one "
                "(its options can still be adjusted)"
            )
        base = base if base is not None else cls.of_protocol(DEFAULT_IE_PROTOCOL)
        seed = base.seed if seed is None else seed
        if protocol is not None:
            base = cls.of_protocol(str(protocol).strip(), seed)
        if estimator is not None and str(estimator).strip() != base.estimator:
            # options belong to an estimator: another one starts from its own defaults
            base = cls(str(estimator).strip(), {}, seed, base.target, base.form)
        return replace(
            base,
            options={**base.options, **dict(options or {})},
            target=base.target if target is None else target,
            form=base.form if form is None else form,
            seed=seed,
        )

    def resolved_options(self) -> dict[str, Any]:
        """Every option of the estimator, defaults filled in."""
        return resolve_options(self.estimator, self.options)

    @property
    def folds(self) -> int:
        """The jackknife folds of the estimate (the estimator's `folds` option), which the
        streamed moments and the spectral baselines use too; DEFAULT_FOLDS for an estimator
        without folds."""
        return int(self.resolved_options().get("folds", DEFAULT_FOLDS))

    @classmethod
    def of_protocol(cls, name: str, seed: int = 0) -> EstimationSettings:
        """The settings of the protocol called `name`."""
        try:
            protocol = get_protocol(name)
        except ValueError as exc:
            raise EmergenceConfigError(str(exc)) from None
        return cls(protocol.estimator, dict(protocol.options), seed, protocol.target, protocol.form)

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "options": dict(self.options),
            "seed": self.seed,
            "target": self.target,
            "form": self.form,
        }


@dataclass(frozen=True)
class IESettings:
    """Capture and estimation settings of one IE measurement."""

    capture: CaptureSettings = field(default_factory=CaptureSettings)
    estimation: EstimationSettings = field(
        default_factory=lambda: EstimationSettings.of_protocol(DEFAULT_IE_PROTOCOL)
    )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], base: IESettings | None = None) -> IESettings:
        """`base` (default: the defaults) updated with the `ie_*` keys of `mapping`, validated."""
        keys = ie_keys(mapping)
        base = base if base is not None else cls()
        # the keys say which fields change; the dataclasses check the values
        fields = {
            "ie_layers": "layers",
            "ie_projection_dim": "projection_dim",
            "ie_projections": "projections",
            "ie_seed": "seed",
            "ie_bos": "bos",
            "ie_batch_size": "batch_size",
            "ie_control": "control",
        }
        capture = {field: keys[key] for key, field in fields.items() if key in keys}
        options = parse_options(keys.get("ie_options"))
        if "ie_steps" in keys:
            options["steps"] = parse_scalar(str(keys["ie_steps"]))
        if "ie_noise_std" in keys:
            options["noise_std"] = parse_scalar(str(keys["ie_noise_std"]))
        estimation = EstimationSettings.choose(
            protocol=keys.get("ie_protocol"),
            estimator=keys.get("ie_estimator"),
            options=options,
            target=keys.get("ie_target"),
            form=keys.get("ie_form"),
            seed=keys.get("ie_seed"),
            base=base.estimation,
        )
        return cls(capture=replace(base.capture, **capture), estimation=estimation)

    def to_dict(self) -> dict[str, Any]:
        return {"capture": self.capture.to_dict(), "estimation": self.estimation.to_dict()}
