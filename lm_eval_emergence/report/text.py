"""Number and Markdown formatting for the report: a missing value is "n/a", never NaN."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

NA = "n/a"


def num(value: Any) -> float | None:
    """`value` as a finite float, or None (for "N/A", None, NaN, strings, booleans)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def canon(value: Any) -> str:
    """A canonical string of a JSON value, to compare settings."""
    return json.dumps(value, sort_keys=True, default=str)


def merge(values: dict[str, Any]) -> Any:
    """One value if the subtasks agree, else {subtask: value} (so differences stay visible)."""
    if not values:
        return None
    if len({canon(v) for v in values.values()}) == 1:
        return next(iter(values.values()))
    return {"mixed": dict(sorted(values.items()))}


def fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, dict) and "mixed" in value:
        return "mixed"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    v = num(value)
    if v is None:
        return NA if value is None or isinstance(value, float) else str(value)
    return f"{v:.{digits}f}"


def plus_minus(value: float | None, stderr: float | None, digits: int = 3) -> str:
    if value is None:
        return NA
    return f"{value:.{digits}f} ± {stderr:.2g}" if stderr is not None else f"{value:.{digits}f}"


def params_text(n: int | None) -> str:
    if n is None:
        return NA
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)


def layers_text(layers: Any) -> str:
    if isinstance(layers, list) and layers and all(isinstance(v, int) for v in layers):
        if layers == list(range(layers[0], layers[-1] + 1)) and len(layers) > 2:
            return f"{layers[0]}-{layers[-1]} ({len(layers)})"
        return ",".join(str(v) for v in layers)
    return fmt(layers)


def setting_text(value: Any) -> str:
    if isinstance(value, dict) and "mixed" in value:
        return "mixed: " + "; ".join(f"{k}={setting_text(v)}" for k, v in value["mixed"].items())
    if isinstance(value, list):
        return layers_text(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "{}"
    return fmt(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"
