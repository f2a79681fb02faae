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
    ie_seed            seed of the projection, the data split and the critic, default 0
    ie_bos             BOS before each token alone and each sequence: "auto" (the tokenizer's
                       rule, `capture.model_bos_token_id`), "none" or a token id
    ie_batch_size      forward-pass batch size ("auto": lm-eval's max_batch_size); default the
                       caller's (--batch_size in lm-eval, 64 in the library)
    ie_stream          keep the states ("off") or only their second moments ("on"), which bounds
                       memory whatever the number of documents and needs a closed-form
                       estimator (gaussian-floor); "auto" (default) streams where that
                       estimator is used and the moments are smaller than the states
    ie_control         "random": also measure the architecture with fresh weights (seeded by
                       ie_seed) and report emergence_random and emergence_vs_random; "none"
    ie_steps           critic training steps (neural estimators)
    ie_noise_std       Gaussian noise added to the states before estimation
    ie_options         any other estimator option: "null=true;reduce=pca" or a JSON dict

In lm-eval 0.4.13 the precedence is: defaults < task YAML `metadata` < model arguments <
`--metadata` (lm-eval merges the model arguments into the metadata it lays over each YAML's).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .estimators.api import resolve_options
from .estimators.registry import estimator_names
from .protocols import FORMS, TARGETS, get_protocol, protocol_name

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_IE_ESTIMATOR",
    "DEFAULT_IE_PROTOCOL",
    "DEFAULT_PROJECTION_DIM",
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
#: Forward-pass batch size where the caller sets none (the library and the profile command).
DEFAULT_BATCH_SIZE = 64
#: The controls an lm-eval run can carry next to the model (`controls.py`).
CONTROLS = (None, "random")
#: What a capture keeps: "off" the states, "on" only their moments, "auto" the smaller.
STREAM_MODES = ("auto", "on", "off")

SETTING_KEYS = (
    "ie_protocol",
    "ie_estimator",
    "ie_target",
    "ie_form",
    "ie_layers",
    "ie_projection_dim",
    "ie_seed",
    "ie_bos",
    "ie_batch_size",
    "ie_stream",
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


def _parse_bos(value: Any) -> int | str | None:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    return parse_int("ie_bos", value, 0)


def _parse_batch_size(value: Any) -> int | str | None:
    if isinstance(value, str) and value.strip() == "auto":
        return "auto"
    return parse_int("ie_batch_size", value, 1)


def ie_keys(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The `ie_*` entries of `mapping`; an unknown `ie_*` key (a typo) is an error."""
    found = {k: v for k, v in mapping.items() if isinstance(k, str) and k.startswith("ie_")}
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
    seed: int = 0  # of the projection
    bos: int | str | None = "auto"  # "auto": the tokenizer's rule; None: no BOS
    batch_size: int | str | None = None  # None: the caller's default; "auto": lm-eval's
    control: str | None = None  # "random": also capture a random-weights copy (lm-eval)
    stream: str = "auto"  # keep the states ("off"), only their moments ("on"), or the smaller

    def __post_init__(self) -> None:
        """Check every field and store it in its one type (an int's text becomes the int)."""
        if self.layers is not None:
            object.__setattr__(self, "layers", parse_layers(list(self.layers)))
        if self.projection_dim is not None:
            dim = parse_int("projection_dim (ie_projection_dim)", self.projection_dim, 1)
            object.__setattr__(self, "projection_dim", dim)
        object.__setattr__(self, "seed", parse_int("seed", self.seed, 0, allow_none=False))
        if self.bos != "auto" and self.bos is not None:
            try:
                bos = parse_int("bos", self.bos, 0, allow_none=False)
            except EmergenceConfigError:
                raise EmergenceConfigError(
                    f"micro_bos (ie_bos) must be 'auto', None or a token id, got {self.bos!r}"
                ) from None
            object.__setattr__(self, "bos", bos)
        if self.batch_size not in (None, "auto"):
            batch = parse_int("batch_size (ie_batch_size)", self.batch_size, 1)
            object.__setattr__(self, "batch_size", batch)
        stream = {True: "on", False: "off"}.get(self.stream, self.stream)  # type: ignore[call-overload]
        stream = stream.strip().lower() if isinstance(stream, str) else stream
        if stream not in STREAM_MODES:
            raise EmergenceConfigError(
                f"ie_stream must be one of {', '.join(STREAM_MODES)}, got {self.stream!r}"
            )
        object.__setattr__(self, "stream", stream)
        if self.control not in CONTROLS:
            raise EmergenceConfigError(
                f"ie_control must be 'random' (a random-weights copy of the model) or 'none', "
                f"got {self.control!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        names = ("projection_dim", "seed", "bos", "batch_size", "control", "stream")
        out = {k: getattr(self, k) for k in names}
        return {"layers": None if self.layers is None else list(self.layers), **out}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaptureSettings:
        layers = data.get("layers")
        return cls(**{**data, "layers": None if layers is None else tuple(layers)})


@dataclass(frozen=True)
class EstimationSettings:
    """What the estimate computed from captured states depends on; checked when built."""

    estimator: str = DEFAULT_IE_ESTIMATOR
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    target: str = _DEFAULT.target  # "output" y, or "update": the block's output minus its input
    form: str = _DEFAULT.form  # "ie", or "psi": micro inputs against the macro output

    def __post_init__(self) -> None:
        if self.estimator not in estimator_names():
            raise EmergenceConfigError(
                f"unknown estimator {self.estimator!r} (ie_estimator); choose one of: "
                f"{', '.join(estimator_names())}"
            )
        if self.target not in TARGETS:
            raise EmergenceConfigError(
                f"unknown target {self.target!r} (ie_target); choose one of: {', '.join(TARGETS)}"
            )
        if self.form not in FORMS:
            raise EmergenceConfigError(
                f"unknown form {self.form!r} (ie_form); choose one of: {', '.join(FORMS)}"
            )
        object.__setattr__(self, "seed", parse_int("seed", self.seed, 0, allow_none=False))
        options = {k: v for k, v in dict(self.options).items() if v is not None}
        object.__setattr__(self, "options", options)
        try:
            resolve_options(self.estimator, options)
        except ValueError as exc:
            raise EmergenceConfigError(
                f"{exc} Set estimator options with ie_steps, ie_noise_std or ie_options."
            ) from None

    def resolved_options(self) -> dict[str, Any]:
        """Every option of the estimator, defaults filled in."""
        return resolve_options(self.estimator, self.options)

    @property
    def protocol(self) -> str:
        """The named protocol these settings are, or "custom" (`protocols.protocol_name`)."""
        return protocol_name(self.estimator, self.options, self.target, self.form)

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
        capture: dict[str, Any] = {}
        estimation: dict[str, Any] = {}
        base_estimation = base.estimation
        if "ie_protocol" in keys:
            if "ie_estimator" in keys:
                raise EmergenceConfigError(
                    "ie_protocol and ie_estimator are both set; a protocol names its own "
                    "estimator: drop one (ie_options still adjusts a protocol's options)"
                )
            name = str(keys["ie_protocol"]).strip()
            base_estimation = EstimationSettings.of_protocol(name, base.estimation.seed)
        if "ie_estimator" in keys:
            estimation["estimator"] = str(keys["ie_estimator"]).strip()
            if estimation["estimator"] != base_estimation.estimator:
                # options belong to an estimator: another one starts from its own defaults
                base_estimation = replace(base_estimation, options={})
        if "ie_target" in keys:
            estimation["target"] = str(keys["ie_target"]).strip().lower()
        if "ie_form" in keys:
            estimation["form"] = str(keys["ie_form"]).strip().lower()
        if "ie_layers" in keys:
            capture["layers"] = parse_layers(keys["ie_layers"])
        if "ie_projection_dim" in keys:
            value = keys["ie_projection_dim"]
            try:
                capture["projection_dim"] = parse_int("ie_projection_dim", value, 1)
            except EmergenceConfigError:
                raise EmergenceConfigError(
                    f"ie_projection_dim must be an integer >= 1 or 'none' (the full hidden "
                    f"size), got {value!r}"
                ) from None
        if "ie_seed" in keys:
            seed = parse_int("ie_seed", keys["ie_seed"], 0, allow_none=False)
            capture["seed"] = estimation["seed"] = seed
        if "ie_bos" in keys:
            capture["bos"] = _parse_bos(keys["ie_bos"])
        if "ie_batch_size" in keys:
            capture["batch_size"] = _parse_batch_size(keys["ie_batch_size"])
        if "ie_stream" in keys:
            capture["stream"] = parse_scalar(str(keys["ie_stream"]))
        if "ie_control" in keys:
            value = keys["ie_control"]
            capture["control"] = None if _is_none(value) else str(value).strip().lower()
        options = dict(base_estimation.options)
        if "ie_options" in keys:
            options.update(parse_options(keys["ie_options"]))
        if "ie_steps" in keys:
            options["steps"] = parse_int("ie_steps", keys["ie_steps"], 1)
        if "ie_noise_std" in keys:
            try:
                options["noise_std"] = float(keys["ie_noise_std"])
            except (TypeError, ValueError):
                raise EmergenceConfigError(
                    f"ie_noise_std must be a number >= 0, got {keys['ie_noise_std']!r}"
                ) from None
        estimation["options"] = options
        return cls(
            capture=replace(base.capture, **capture),
            estimation=replace(base_estimation, **estimation),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"capture": self.capture.to_dict(), "estimation": self.estimation.to_dict()}
