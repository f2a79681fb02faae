"""The plugin's IE settings: one vocabulary for model arguments, task metadata and `--metadata`.

Every key starts with ``ie_`` so that it can sit in `--model_args` next to Hugging Face keywords
(HFLM forwards unknown keywords to `from_pretrained`) and be taken out before the model sees it:

    ie_estimator       MI estimator (`lm_eval_emergence.METHODS`), default "infonce"
    ie_layers          blocks to measure: "all", "0;5;10" or "0-29" (";" because model_args
                       are comma-separated), default all
    ie_projection_dim  seeded random projection width while capturing; "none" keeps the full
                       hidden size, default 64
    ie_seed            seed of the projection, the data split and the critic, default 0
    ie_steps           critic training steps (neural estimators)
    ie_noise_std       Gaussian noise added to the states before estimation (method.md §5)
    ie_batch_size      forward-pass batch size for emergence requests (default: --batch_size;
                       "auto" -> max_batch_size)
    ie_options         any other estimator option: "null=true;reduce=pca" or a JSON dict

Precedence: defaults < model arguments < task YAML `metadata` < `--metadata`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..emergence import DEFAULT_ESTIMATOR, DEFAULT_PROJECTION_DIM
from ..estimators import METHODS
from ..estimators.api import resolve_options

__all__ = ["SETTING_KEYS", "EmergenceConfigError", "IESettings", "ie_keys", "parse_int"]

SETTING_KEYS = (
    "ie_estimator",
    "ie_layers",
    "ie_projection_dim",
    "ie_seed",
    "ie_steps",
    "ie_noise_std",
    "ie_batch_size",
    "ie_options",
)


class EmergenceConfigError(ValueError):
    """A setting, task option or input that the plugin cannot use; the message names the fix."""


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


def _parse_scalar(text: str) -> Any:
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


def _parse_layers(value: Any) -> list[int] | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("all", "")):
        return None
    if isinstance(value, bool):
        raise EmergenceConfigError(f"ie_layers must be 'all' or block indices, got {value!r}")
    if isinstance(value, int):
        return [value]
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
    try:
        layers = [int(v) for v in items]
    except (TypeError, ValueError):
        raise EmergenceConfigError(
            f"ie_layers must be 'all', indices like '0;5;10' or a range like '0-29', got {value!r}"
        ) from None
    if not layers:
        raise EmergenceConfigError("ie_layers is empty; use 'all' or list block indices")
    return sorted(dict.fromkeys(layers))


def _parse_options(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    text = str(value).strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EmergenceConfigError(f"ie_options is not valid JSON: {exc}") from None
        return dict(parsed)
    out: dict[str, Any] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise EmergenceConfigError(
                f"ie_options entry {part!r} is not key=value; write e.g. "
                "'ie_options=null=true;reduce=pca'"
            )
        key, raw = part.split("=", 1)
        out[key.strip()] = _parse_scalar(raw)
    return out


def parse_int(name: str, value: Any, low: int, *, allow_none: bool = True) -> int | None:
    """`value` (an int or its text) as an integer >= `low`; None/"none"/"" give None if allowed.

    Model arguments and metadata arrive as ints or strings; anything else is an error naming
    the setting.
    """
    if allow_none and (
        value is None or (isinstance(value, str) and value.strip().lower() in ("none", ""))
    ):
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


@dataclass(frozen=True)
class IESettings:
    """Resolved settings of one IE measurement (capture and estimation)."""

    estimator: str = DEFAULT_ESTIMATOR
    layers: tuple[int, ...] | None = None
    projection_dim: int | None = DEFAULT_PROJECTION_DIM
    seed: int = 0
    batch_size: int | str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], base: IESettings | None = None) -> IESettings:
        """`base` (default: the defaults) updated with the `ie_*` keys of `mapping`, validated."""
        keys = ie_keys(mapping)
        settings = base if base is not None else cls()
        changes: dict[str, Any] = {}
        if "ie_estimator" in keys:
            name = str(keys["ie_estimator"]).strip()
            if name not in METHODS:
                raise EmergenceConfigError(
                    f"unknown estimator ie_estimator={name!r}; choose one of: {', '.join(METHODS)}"
                )
            changes["estimator"] = name
        if "ie_layers" in keys:
            layers = _parse_layers(keys["ie_layers"])
            changes["layers"] = None if layers is None else tuple(layers)
        if "ie_projection_dim" in keys:
            changes["projection_dim"] = parse_int("ie_projection_dim", keys["ie_projection_dim"], 1)
        if "ie_seed" in keys:
            seed = parse_int("ie_seed", keys["ie_seed"], 0)
            if seed is None:
                raise EmergenceConfigError("ie_seed must be an integer >= 0, got None")
            changes["seed"] = seed
        if "ie_batch_size" in keys:
            value = keys["ie_batch_size"]
            changes["batch_size"] = (
                "auto"
                if isinstance(value, str) and value.strip() == "auto"
                else parse_int("ie_batch_size", value, 1)
            )
        options = dict(settings.options)
        if "ie_options" in keys:
            options.update(_parse_options(keys["ie_options"]))
        if "ie_steps" in keys:
            options["steps"] = parse_int("ie_steps", keys["ie_steps"], 1)
        if "ie_noise_std" in keys:
            try:
                options["noise_std"] = float(keys["ie_noise_std"])
            except (TypeError, ValueError):
                raise EmergenceConfigError(
                    f"ie_noise_std must be a number >= 0, got {keys['ie_noise_std']!r}"
                ) from None
        changes["options"] = options
        resolved = replace(settings, **changes)
        resolved.check()
        return resolved

    def check(self) -> None:
        """Fail now, not after the forward passes, on options the estimator does not take."""
        options = {k: v for k, v in self.options.items() if v is not None}
        try:
            resolve_options(self.estimator, options)
        except ValueError as exc:
            raise EmergenceConfigError(
                f"{exc} Set estimator options with ie_steps, ie_noise_std or ie_options."
            ) from None

    def estimator_options(self) -> dict[str, Any]:
        """The options passed to the estimator (None entries dropped)."""
        return {k: v for k, v in self.options.items() if v is not None}

    def capture_key(self) -> tuple[Any, ...]:
        """What the forward passes depend on: requests sharing it share one micro table."""
        return (self.layers, self.projection_dim, self.seed)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["layers"] = None if self.layers is None else list(self.layers)
        return out
