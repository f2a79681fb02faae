"""The report's figures: matplotlib `Figure`s rendered by Agg (no pyplot, no global backend).

Beside each PNG, `<name>.json` holds the data the figure draws, read back from its axes (every
line's and every point set's label and coordinates, each axis' title and labels): a reader can
take the numbers behind a figure, and the tests check the data, not the pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..records import LayerEmergence
from .stats import Breakpoint, Correlation, corr_text
from .text import num, slug


def _figure(width: float = 6.0, height: float = 4.0, ncols: int = 1) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    # fixed margins (a layout engine would draw every figure again); `_save` keeps whatever
    # reaches beyond them
    fig.subplots_adjust(
        left=0.1 if ncols == 1 else 0.06, right=0.98, bottom=0.12, top=0.91, wspace=0.2
    )
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig, axes


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="x-small")


def _plotted(fig: Any) -> list[dict[str, Any]]:
    """What each axis of `fig` draws: its labels, lines (x, y) and point sets (scatter)."""
    out = []
    for ax in fig.axes:
        lines = [
            {
                "label": line.get_label(),
                "x": [num(v) for v in np.asarray(line.get_xdata(), dtype=float).tolist()],
                "y": [num(v) for v in np.asarray(line.get_ydata(), dtype=float).tolist()],
            }
            for line in ax.lines
        ]
        points = [
            {
                "label": collection.get_label(),
                "x": [num(v) for v in offsets[:, 0].tolist()],
                "y": [num(v) for v in offsets[:, 1].tolist()],
            }
            for collection in ax.collections
            if (offsets := np.asarray(collection.get_offsets(), dtype=float)).ndim == 2
            and len(offsets)
            and type(collection).__name__ == "PathCollection"
        ]
        legend = ax.get_legend()
        out.append(
            {
                "title": ax.get_title(),
                "xlabel": ax.get_xlabel(),
                "ylabel": ax.get_ylabel(),
                "lines": lines,
                "points": points,
                "legend": [] if legend is None else [t.get_text() for t in legend.get_texts()],
            }
        )
    return out


def _save(fig: Any, out_dir: Path, name: str) -> str:
    import json

    # the whole drawing, whatever its labels' length: no axis label is cut off
    fig.savefig(out_dir / name, dpi=100, bbox_inches="tight", pad_inches=0.1)
    data = {"figure": name, "axes": _plotted(fig)}
    (out_dir / name).with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    return name


def _color(i: int) -> str:
    return f"C{i % 10}"


def _column(rows: Sequence[Any], key: str, missing: float = np.nan) -> np.ndarray:
    values = [num(getattr(row, key, None)) for row in rows]
    return np.array([missing if v is None else v for v in values], dtype=float)


#: One run of `layers_figure`: (label, its per-block rows, its ceiling in bits or None, its
#: control's per-block rows or None).
Blocks = tuple[str, Sequence[LayerEmergence], float | None, Sequence[LayerEmergence] | None]


def layers_figure(task: str, series: Sequence[Blocks], out_dir: Path) -> str:
    """E(l) per block with a ±1 stderr band, and the control's E(l) (dashed) in the same axes
    (left); the macro (solid) and micro (dashed) MI per block, with the estimator's ceiling
    (dotted) where it has one (right). Each legend lists only what is drawn."""
    from matplotlib.lines import Line2D

    fig, (ax, ax2) = _figure(10.0, 4.0, ncols=2)
    ceilings = False
    for i, (label, rows, ceiling, control) in enumerate(series):
        for what, data, style in ((label, rows, "-"), (f"{label} control", control, "--")):
            if not data:
                continue
            x = [r.layer for r in data]
            e, se = _column(data, "emergence_bits"), _column(data, "stderr_bits", 0.0)
            ax.plot(x, e, marker=".", ls=style, color=_color(i), label=what)
            ax.fill_between(x, e - se, e + se, color=_color(i), alpha=0.25)
        x = [r.layer for r in rows]
        ax2.plot(x, _column(rows, "macro_bits"), ".-", color=_color(i), label=f"{label} macro")
        ax2.plot(x, _column(rows, "micro_bits"), ".--", color=_color(i), label=f"{label} micro")
        if ceiling is not None:
            ax2.axhline(ceiling, color=_color(i), lw=0.8, ls=":", label=f"{label} ceiling")
            ceilings = True
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set(title=f"{task}: E(l) ± 1 stderr", xlabel="block", ylabel="bits")
    ax2.set(title="macro and micro MI (colours as left)", xlabel="block", ylabel="bits")
    _legend(ax)
    styles = [("-", "macro"), ("--", "micro")] + ([(":", "ceiling")] if ceilings else [])
    handles = [Line2D([], [], color="black", ls=ls, label=text) for ls, text in styles]
    ax2.legend(handles=handles, fontsize="x-small")
    return _save(fig, out_dir, f"layers_{slug(task)}.png")


def curve_figure(task: str, kind: str, series: list[tuple[str, list[Any]]], out_dir: Path) -> str:
    """The shot curve (`kind` "shots": E at the end of each shot, ±1 stderr band, std across
    blocks as error bars) or the per-position curve (`kind` "positions"), one line per run."""
    fig, (ax,) = _figure()
    for i, (label, rows) in enumerate(series):
        x = np.array(
            [getattr(r, "shot" if kind == "shots" else "position") for r in rows], dtype=float
        )
        y, se = _column(rows, "emergence_bits"), _column(rows, "stderr_bits", 0.0)
        ax.plot(x, y, marker="o", ms=3, color=_color(i), label=label)
        ax.fill_between(x, y - se, y + se, color=_color(i), alpha=0.25)
        if kind == "shots":
            spread = _column(rows, "layer_std_bits", 0.0)
            ax.errorbar(x, y, yerr=spread, fmt="none", ecolor=_color(i), alpha=0.5, capsize=3)
    ax.axhline(0.0, color="grey", lw=0.8)
    if kind == "shots":
        ax.set(title=f"{task}: E at the end of each shot", xlabel="shot", ylabel="bits")
        ax.text(
            0.01,
            0.01,
            "band: ±1 stderr; bars: std across blocks",
            transform=ax.transAxes,
            fontsize="x-small",
            va="bottom",
        )
    else:
        ax.set(title=f"{task}: E per position ± 1 stderr", xlabel="token position", ylabel="bits")
    _legend(ax)
    return _save(fig, out_dir, f"{kind}_{slug(task)}.png")


def outcome_figure(task: str, series: list[tuple[str, list[Any]]], out_dir: Path) -> str:
    """IE of each outcome group ±1 stderr, one column of points per run (groups side by side)."""
    fig, (ax,) = _figure(width=max(6.0, 1.2 * len(series) + 2), height=4.6)
    fig.subplots_adjust(bottom=0.25)
    names = [g.outcome for g in series[0][1]]
    for j, name in enumerate(names):
        xs, ys, es = [], [], []
        for i, (_, groups) in enumerate(series):
            g = next((g for g in groups if g.outcome == name), None)
            if g is not None and g.ie_bits is not None:
                xs.append(i + (j - (len(names) - 1) / 2) * 0.2)
                ys.append(g.ie_bits)
                es.append(g.ie_stderr_bits or 0.0)
        ax.errorbar(xs, ys, yerr=es, fmt="o", color=_color(j), label=name, capsize=3)
    ax.set_xticks(range(len(series)), [label for label, _ in series], rotation=15, ha="right")
    ax.set(title=f"{task}: IE by what the model does next", ylabel="bits")
    _legend(ax)
    return _save(fig, out_dir, f"outcomes_{slug(task)}.png")


def scatter_figure(
    points: list[tuple[str, float, float]],
    xlabel: str,
    ylabel: str,
    corr: Correlation,
    name: str,
    out_dir: Path,
) -> str:
    """One point per run, labelled; the coefficients (or why there are none) as the title."""
    fig, (ax,) = _figure()
    for i, (label, x, y) in enumerate(points):
        ax.scatter([x], [y], color=_color(i))
        ax.annotate(label, (x, y), fontsize="x-small", xytext=(3, 3), textcoords="offset points")
    ax.margins(x=0.2, y=0.1)  # room for the labels
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.set_title(corr_text(corr), fontsize="small")
    return _save(fig, out_dir, name)


#: One series of a panel of `series_figure`: (label, x, y, stderr or None, its breakpoint fit).
Series = tuple[str, Sequence[float], Sequence[float], Sequence[float | None], Breakpoint | None]


def series_figure(
    panels: list[tuple[str, list[Series]]], xlabel: str, name: str, out_dir: Path
) -> str:
    """One panel per metric against a shared x (log parameters or training step), one line per
    task, ±1 stderr bars; each fitted breakpoint as a dashed line over its shaded interval."""
    from matplotlib.figure import Figure

    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(3.6 * ncols, 3.0 * nrows + 0.4), dpi=100)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.1, top=0.9, wspace=0.32, hspace=0.45)
    first = None
    for k, (title, series) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1, sharex=first)
        first = first or ax
        ax.grid(alpha=0.3)
        for i, (label, x, y, se, fit) in enumerate(series):
            ax.errorbar(
                x,
                y,
                yerr=[0.0 if v is None else v for v in se],
                marker="o",
                ms=3,
                capsize=2,
                color=_color(i),
                label=label,
            )
            if fit is not None and fit.at is not None and fit.ci is not None:
                ax.axvline(fit.at, color=_color(i), ls="--", lw=0.9)
                ax.axvspan(*fit.ci, color=_color(i), alpha=0.12)
        ax.set_title(title, fontsize="small")
        ax.set_xlabel(xlabel, fontsize="small")
        ax.tick_params(labelsize="x-small")
        _legend(ax)
    fig.suptitle("dashed: fitted breakpoint; band: its 95% interval", fontsize="small")
    return _save(fig, out_dir, name)
