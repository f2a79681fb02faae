"""How the documents print numbers: the Jinja2 filters every template uses.

One place decides the minus sign (a true minus, U+2212), thousands separators and the ± form, so
a number reads the same wherever it is quoted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

MINUS = "\u2212"


def _checked(value: object) -> float:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a template formats a number, got {value!r}; fix its expression")
    if not math.isfinite(value):
        raise ValueError(f"a template formats a non-finite number ({value}); fix its expression")
    return float(value)


def num(value: float, digits: int = 2) -> str:
    """`value` with `digits` decimals and a true minus sign."""
    text = f"{_checked(value):.{digits}f}"
    if set(text) <= set("-0.") and text.startswith("-"):
        text = text[1:]  # no "−0.00"
    return text.replace("-", MINUS)


def signed(value: float, digits: int = 2) -> str:
    """`value` with an explicit sign: +0.12, −0.12."""
    text = num(value, digits)
    return text if text.startswith(MINUS) else f"+{text}"


def count(value: float) -> str:
    """A whole number with thousands separators: 2,000."""
    v = _checked(value)
    if v != round(v):
        raise ValueError(f"count() prints whole numbers, got {value}; round it in the expression")
    return f"{int(round(v)):,}".replace("-", MINUS)


def grouped(value: float, digits: int = 1) -> str:
    """`value` with thousands separators and `digits` decimals: 1,234.5."""
    return f"{_checked(value):,.{digits}f}".replace("-", MINUS)


def pct(value: float, digits: int = 0) -> str:
    """A fraction as a percentage number (the template writes the % sign)."""
    return num(100 * _checked(value), digits)


def pm(pair: tuple[float, float] | list[float], digits: int = 2) -> str:
    """A value and its standard error: 20.44 ± 0.09."""
    value, stderr = pair
    return f"{num(value, digits)} ± {num(stderr, digits)}"


def span(values: Iterable[float], digits: int = 2) -> str:
    """The range of `values`: 0.12–0.34."""
    vs = [_checked(v) for v in values]
    if not vs:
        raise ValueError("span() of no values; fix its expression")
    return f"{num(min(vs), digits)}–{num(max(vs), digits)}"


def join(values: Iterable[float], digits: int = 2, sep: str = ", ") -> str:
    """Several numbers, each formatted like `num`."""
    return sep.join(num(v, digits) for v in values)


FILTERS: dict[str, Callable] = {
    "num": num,
    "signed": signed,
    "count": count,
    "grouped": grouped,
    "pct": pct,
    "pm": pm,
    "span": span,
    "join": join,
}
