"""`build_report`: the Markdown report and its figures, section by section."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .checks import (
    CEILING_MARGIN_BITS,
    grouped_by_value,
    reliability_issues,
    setting_differences,
    subtasks_of,
    table_tags,
)
from .figures import curve_figure, layers_figure, outcome_figure, scatter_figure, series_figure
from .runs import (
    ABILITY_METRICS,
    ACCURACY_METRICS,
    INTRINSIC_METRICS,
    RANKING_SETTINGS,
    UNRECORDED,
    Run,
    load_runs,
)
from .stats import Breakpoint, breakpoint_fit, ci_text, correlate
from .text import (
    NA,
    fmt,
    layers_text,
    merge,
    metric_label,
    num,
    params_text,
    plus_minus,
    slug,
    stderr_key,
    table,
)

#: Scatter figures drawn at most (the table lists every pair).
MAX_SCATTER_FIGURES = 12
#: Series per panel of the parameter-count figure.
MAX_SERIES = 8
WARN = "**Warning:**"
IE_KEY = "emergence,none"


#: What the series section can put on its x axis: log10 parameters, or log10(1 + step).
X_AXES = ("params", "step")


def build_report(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    bootstrap: int = 2000,
    seed: int = 0,
    x: str = "params",
    rank_mixed: bool = False,
) -> Path:
    """Write `report.md` and its PNG figures into `out_dir`; return the Markdown file's path.

    `x`: the series section's axis, "params" (log10 of the parameter count) or "step" (log10
    of 1 + the training step the runs' model arguments or paths name). `rank_mixed`: rank runs
    whose N, blocks, projection or protocol differ (refused by default). Raises
    ReportInputError for an input that is not an lm-eval results file.
    """
    if x not in X_AXES:
        raise ValueError(f"x must be one of {X_AXES}, got {x!r}")
    from .. import __version__

    runs = load_runs(paths)
    runs.sort(key=lambda r: (r.n_parameters is None, r.n_parameters or 0, r.label, str(r.path)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    etasks = sorted({t for r in runs for t in r.emergence_tasks()})
    subtasks = subtasks_of(runs)
    # top-level tasks first (groups and standalone tasks), then subtasks
    etasks.sort(key=lambda t: (t in subtasks, t))
    differs = {t: setting_differences(runs, t) for t in etasks}

    md = [
        "# Information Emergence report",
        "",
        f"{len(runs)} run(s); lm-eval-emergence {__version__}; bootstrap {bootstrap} resamples, "
        f"seed {seed}. IE and its macro and micro terms are in bits; ± is one standard error; "
        f"{NA} marks a value the files do not hold.",
    ]
    md += _runs_section(runs)
    md += _comparability_section(differs)
    md += _reliability_section(runs, subtasks)
    md += _results_section(runs, etasks, differs)
    md += _ranking_section(runs, etasks, rank_mixed)
    md += _layers_section(runs, etasks, out)
    md += _curves_section(runs, etasks, out)
    md += _outcomes_section(runs, etasks, out)
    md += _correlation_section(runs, subtasks, out, bootstrap, seed)
    md += _series_section(runs, subtasks, out, x)
    path = out / "report.md"
    path.write_text("\n".join(md).rstrip() + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------- sections


def _runs_section(runs: Sequence[Run]) -> list[str]:
    md = ["", "## Runs", ""]
    md += table(
        ["run", "model", "parameters", "lm-eval", "results file", "sidecar"],
        [
            [
                r.label,
                r.model,
                params_text(r.n_parameters),
                r.lm_eval_version or NA,
                str(r.path),
                r.sidecar_path.name if r.sidecar_path else "none",
            ]
            for r in runs
        ],
    )
    md.append("")
    md += [f"- {r.label}: {note}." for r in runs for note in r.notes]
    no_sidecar = [r.label for r in runs if r.sidecar is None]
    if no_sidecar:
        md.append(
            f"- No sidecar for {', '.join(no_sidecar)}: their scalar metrics are in the tables; "
            "the per-block, shot and position figures skip them."
        )
    return md


def _comparability_section(differs: dict[str, list[str]]) -> list[str]:
    md = ["", "## Comparability", ""]
    if not any(differs.values()):
        return md + ["All runs that share a task use the same estimator settings and N."]
    md += [
        "IE numbers of one task compare only under the same protocol, estimator, estimator "
        "options, target, projection, seed, block selection (`all` = every block) and N. "
        "These differ, so the figures and coefficients that mix them carry a warning (and "
        "no coefficient is computed across protocols):",
        "",
    ]
    md += [f"- {WARN} {task}: {line}" for task, lines in differs.items() for line in lines]
    return md


def _reliability_section(runs: Sequence[Run], subtasks: set[str]) -> list[str]:
    md = ["", "## Reliability", ""]
    rows = []
    for r in runs:
        for task in r.emergence_tasks():
            if task in r.groups and task not in (r.sidecar or {}):
                continue  # its subtasks are listed themselves
            rows += [f"- {r.label}, {task}: {text}" for _, text in reliability_issues(r, task)]
    if not rows:
        return md + ["No flagged block, no estimate at the estimator's ceiling, no warning."]
    md += [
        "Flagged blocks: estimates that diverged or lie outside the range the estimator can "
        "read; the task's IE includes them. At the ceiling: the macro term is within "
        f"{CEILING_MARGIN_BITS} bit of the most the estimator can read from N samples "
        "(`ceiling_bits`) in most blocks, so IE is a lower bound and differences between runs "
        "are not meaningful.",
        "",
    ]
    return md + rows


def _result_field(run: Run, task: str, key: str) -> Any:
    """`key` of the sidecar result of `task`; for a group, merged over its subtasks."""
    subs = [task] if task in (run.sidecar or {}) else run.groups.get(task, [])
    return merge({s: getattr(res, key) for s in subs if (res := run.result(s))})


def _result_row(r: Run, task: str, differs: dict[str, list[str]]) -> list[str]:
    """One row of the results table: a run's IE for one task, with its settings."""

    def get(key: str) -> Any:
        return _result_field(r, task, key)

    n = get("n")
    return [
        r.label,
        r.model,
        params_text(r.n_parameters),
        task,
        plus_minus(r.value(task, IE_KEY), r.value(task, "emergence_stderr,none")),
        plus_minus(
            r.value(task, "emergence_vs_random,none"),
            r.value(task, "emergence_vs_random_stderr,none"),
        ),
        fmt(r.value(task, "emergence_macro,none")),
        fmt(r.value(task, "emergence_micro,none")),
        fmt(r.value(task, "emergence_flagged_blocks,none"), 0),
        fmt(r.sample_len.get(task) if n is None else n),
        fmt(get("seq_len")),
        fmt(get("ceiling_bits"), 2),
        fmt(get("log2_n"), 2),
        fmt(get("protocol")),
        fmt(get("estimator")),
        fmt(get("projection_dim")),
        layers_text(get("layers")),
        fmt(get("seed")),
        *(
            plus_minus(r.value(task, f"{m},none"), r.value(task, f"{m}_stderr,none"))
            for m in ACCURACY_METRICS
        ),
        table_tags(r, task, differs),
    ]


def _results_section(
    runs: Sequence[Run], etasks: list[str], differs: dict[str, list[str]]
) -> list[str]:
    md = ["", "## Results", ""]
    header = [
        "run",
        "model",
        "parameters",
        "task",
        "IE",
        "IE − random",
        "macro",
        "micro",
        "flagged blocks",
        "N",
        "seq_len",
        "ceiling bits",
        "log2 N",
        "protocol",
        "estimator",
        "projection",
        "layers",
        "seed",
        *ACCURACY_METRICS,
        "notes",
    ]
    rows = [
        _result_row(r, task, differs)
        for r in runs
        for task in (t for t in etasks if t in r.emergence_tasks())
    ]
    md += table(header, rows) if rows else ["No run has an emergence task."]
    md.append("")
    md.append(
        "N: documents per estimate (a group: per subtask); `mixed`: a group's subtasks differ. "
        "IE of a group is the unweighted mean over its subtasks. IE − random: the model's IE "
        "minus that of a random-weights copy of it (runs with ie_control=random)."
    )
    others = [
        [
            r.label,
            r.model,
            task,
            metric_label(task, key).split(": ", 1)[1],
            plus_minus(r.value(task, key), r.value(task, stderr_key(key))),
            fmt(r.sample_len.get(task)),
        ]
        for r in runs
        for task, key in _accuracy_keys([r])
        if task not in etasks
    ]
    if others:
        md += ["", "### Other tasks", ""]
        md += table(["run", "model", "task", "metric", "value", "N"], others)
    return md


#: Two IE values are separated when they differ by more than this many combined standard errors.
SEPARATION_SE = 2.0


def _ranking_rows(ranked: list[tuple[Run, float, float | None]]) -> list[list[str]]:
    rows = []
    for i, (run, value, se) in enumerate(ranked):
        if i + 1 < len(ranked):
            _, below, below_se = ranked[i + 1]
            combined = math.hypot(se or 0.0, below_se or 0.0)
            gap = (value - below) / combined if combined > 0 else math.inf
            verdict = (
                f"yes ({gap:.1f} se)"
                if gap > SEPARATION_SE
                else f"**not separated** ({gap:.1f} se)"
            )
        else:
            verdict = "—"
        rows.append([str(i + 1), run.label, run.model, plus_minus(value, se), verdict])
    return rows


def _ranking_section(runs: Sequence[Run], etasks: list[str], rank_mixed: bool) -> list[str]:
    md = ["", "## Ranking", ""]
    md.append(
        f"Runs ordered by IE on each task. A run is separated from the next only when their IE "
        f"differ by more than {SEPARATION_SE:g} combined standard errors (each ± covers the "
        "documents and the projections); runs of different N, blocks, projection width or "
        "protocol are not ranked together unless `--rank-mixed` is given."
    )
    ranked_any = False
    for task in etasks:
        having = [r for r in runs if r.value(task, IE_KEY) is not None]
        if len(having) < 2:
            continue
        ranked_any = True
        md += ["", f"### {task}", ""]
        differs = setting_differences(having, task, RANKING_SETTINGS)
        if differs and not rank_mixed:
            md.append("Not ranked: " + "; ".join(differs) + ". `--rank-mixed` ranks them anyway.")
            continue
        if differs:
            md += [f"{WARN} ranked although " + "; ".join(differs) + ".", ""]
        ranked = sorted(
            ((r, r.value(task, IE_KEY), r.value(task, "emergence_stderr,none")) for r in having),
            key=lambda item: -item[1],
        )
        md += table(
            ["rank", "run", "model", "IE", "separated from the next"], _ranking_rows(ranked)
        )
    if not ranked_any:
        md.append("")
        md.append("No task has IE from two or more runs.")
    return md


def _mix_warning(runs: Sequence[Run], task: str) -> list[str]:
    if not setting_differences(runs, task):
        return []
    return [
        f"{WARN} these runs of {task} differ in estimator settings or N (see Comparability); "
        "their curves are not directly comparable.",
        "",
    ]


def _skipped(runs: Sequence[Run], task: str, shown: Sequence[Run]) -> list[str]:
    missing = [r.label for r in runs if task in r.emergence_tasks() and r not in shown]
    if not missing:
        return []
    return [f"Not shown (no sidecar data for {task}): {', '.join(missing)}.", ""]


def _layers_section(runs: Sequence[Run], etasks: list[str], out: Path) -> list[str]:
    md = ["", "## Per-block emergence", ""]
    drawn = 0
    for task in etasks:
        having = [r for r in runs if (res := r.result(task)) and res.per_layer]
        if not having:
            continue
        drawn += 1
        series = [
            (r.label, r.result(task).per_layer, num(r.result(task).ceiling_bits)) for r in having
        ]
        md += [f"### {task}", ""] + _mix_warning(having, task)
        md += [f"![{task} per block]({layers_figure(task, series, out)})", ""]
        md += _skipped(runs, task, having)
    groups = sorted({g for r in runs for g in r.groups if g in etasks})
    if groups:
        md.append(
            f"Groups ({', '.join(groups)}) have no per-block data of their own; see their subtasks."
        )
    elif not drawn:
        md.append("No run has per-block data (no sidecar).")
    return md


def _curves_section(runs: Sequence[Run], etasks: list[str], out: Path) -> list[str]:
    md = ["", "## Shot and position curves", ""]
    drawn = 0
    for task in etasks:
        with_shots = [
            r for r in runs if (entry := (r.sidecar or {}).get(task)) and entry.shot_curve
        ]
        with_positions = [
            r for r in runs if r not in with_shots and (res := r.result(task)) and res.per_position
        ]
        for kind, having in (("shots", with_shots), ("positions", with_positions)):
            if not having:
                continue
            drawn += 1
            if kind == "shots":
                series = [(r.label, r.sidecar[task].shot_curve) for r in having]
                title = f"### {task}: E at the end of each shot"
            else:
                series = [(r.label, r.result(task).per_position) for r in having]
                title = f"### {task}: E per token position"
            md += [title, ""] + _mix_warning(having, task)
            md += [f"![{task} {kind}]({curve_figure(task, kind, series, out)})", ""]
    if not drawn:
        md.append("No run has a shot curve or a per-position curve.")
    return md


def _outcomes_section(runs: Sequence[Run], etasks: list[str], out: Path) -> list[str]:
    """IE split by what the model did next (the shots task's `emergence_outcome_*`)."""
    md = []
    for task in etasks:
        having = [r for r in runs if (e := (r.sidecar or {}).get(task)) and e.outcomes]
        if not having:
            continue
        md += ["", f"## {task}: IE by what the model does next", ""]
        md += [
            "correct: names an unlisted entity; repeat: a listed one; other: anything else. "
            "Within a run every group is estimated on the same number of documents (IE depends "
            "on N); a group below the estimator's minimum has no number.",
            "",
        ]
        rows = []
        for r in having:
            groups = r.sidecar[task].outcomes
            cells = [
                f"{plus_minus(g.ie_bits, g.ie_stderr_bits)} ({g.n_docs})"
                if g.ie_bits is not None
                else f"{NA} ({g.n_docs})"
                for g in groups
            ]
            rows.append([r.label, *cells, str(max(g.n_used for g in groups))])
        names = [g.outcome for g in having[0].sidecar[task].outcomes]
        md += table(["run", *[f"{n} (docs)" for n in names], "docs per estimate"], rows)
        series = [(r.label, r.sidecar[task].outcomes) for r in having]
        md += ["", f"![{task} outcomes]({outcome_figure(task, series, out)})", ""]
    return md


def _metric_keys(runs: Sequence[Run], names: Sequence[str]) -> list[tuple[str, str]]:
    """(task, lm-eval key) of every metric named in `names` with a value in some run, in the
    order of `names`, then by task."""
    keys = set()
    for r in runs:
        for task, metrics in r.metrics.items():
            for key, value in metrics.items():
                if key.partition(",")[0] in names and value is not None:
                    keys.add((task, key))
    return sorted(keys, key=lambda k: (names.index(k[1].partition(",")[0]), k))


def _accuracy_keys(runs: Sequence[Run]) -> list[tuple[str, str]]:
    return _metric_keys(runs, ACCURACY_METRICS)


#: The intrinsic metrics whose numbers depend on the IE protocol (never correlated across
#: protocols); the spectral ones do not.
_PROTOCOL_METRICS = ("emergence", "emergence_vs_random")


def _correlation_pairs(
    runs: Sequence[Run], subtasks: set[str]
) -> list[tuple[str, str, str, str, list[tuple[Run, float, float]]]]:
    """(intrinsic task, key, ability task, key, points) for every pair with data: a task's
    intrinsic metric against the same task's ability, and top-level tasks against each other
    (a subtask against another task's ability is left out). IE first, own-task pairs first."""
    pairs = []
    for itask, ikey in _metric_keys(runs, INTRINSIC_METRICS):
        for atask, akey in _metric_keys(runs, ABILITY_METRICS):
            own = itask == atask
            if not own and not {itask, atask}.isdisjoint(subtasks):
                continue
            points = [
                (r, v, a)
                for r in runs
                if (v := r.value(itask, ikey)) is not None
                and (a := r.value(atask, akey)) is not None
            ]
            if points:
                order = (
                    INTRINSIC_METRICS.index(ikey.partition(",")[0]),
                    not own,
                    itask in subtasks,
                    ABILITY_METRICS.index(akey.partition(",")[0]),
                )
                pairs.append((order, -len(points), itask, ikey, atask, akey, points))
    pairs.sort(key=lambda p: p[:6])
    return [p[2:] for p in pairs]


def _correlation_row(
    itask: str, ikey: str, atask: str, akey: str, points: list, bootstrap: int, seed: int
) -> tuple[list[str], Any, list[str]]:
    """The table row of one pair, its correlation and its warnings."""
    used = [p[0] for p in points]
    first = [metric_label(itask, ikey), metric_label(atask, akey)]
    protocols = {r.label: r.settings.get(itask, {}).get("protocol", UNRECORDED) for r in used}
    if ikey.partition(",")[0] in _PROTOCOL_METRICS and len(set(protocols.values())) > 1:
        # different protocols are different quantities: no coefficient between them
        mixed = grouped_by_value(protocols)
        cells = [f"not computed: runs of different protocols ({mixed})", "", ""]
        return [*first, str(len(points)), *cells, "protocols differ"], None, ["protocols differ"]
    corr = correlate([p[1] for p in points], [p[2] for p in points], bootstrap=bootstrap, seed=seed)
    warnings = []
    if setting_differences(used, itask):
        warnings.append("settings differ")
    if any(reliability_issues(r, itask) for r in used):
        warnings.append("unreliable estimates")
    if corr.note:
        cells = [corr.note, "", ""]
    else:
        cells = [
            f"{corr.spearman:.3f} {ci_text(corr.spearman_ci)}",
            f"{corr.pearson:.3f} {ci_text(corr.pearson_ci)}",
            f"{corr.resamples_used}/{corr.resamples}",
        ]
    return [*first, str(corr.n), *cells, ", ".join(warnings)], corr, warnings


def _correlation_section(
    runs: Sequence[Run],
    subtasks: set[str],
    out: Path,
    bootstrap: int,
    seed: int,
) -> list[str]:
    md = ["", "## Intrinsic metrics against ability", ""]
    pairs = _correlation_pairs(runs, subtasks)
    if not pairs:
        return md + ["No run has both an intrinsic metric and an ability metric."]
    md += [
        "Every intrinsic metric (IE `emergence`, `emergence_vs_random`, Diff-eRank `diff_erank`, "
        "`erank`, `matrix_entropy`) against every ability metric (`acc`, `acc_norm`, and the "
        "continuous `logprob_correct`): a task's own, and top-level tasks against each other. "
        "One point per run. Spearman ρ and Pearson r over runs (scipy.stats); 95% intervals from "
        f"a percentile bootstrap that resamples runs ({bootstrap} resamples, seed {seed}); "
        "resamples in which a variable is constant are skipped, 'used' counts the others. With "
        "few runs a percentile interval understates the uncertainty: [1.00, 1.00] only says that "
        "every resample kept the order of the runs, not that the relation is certain. No "
        "p-values: the asymptotic ones are wrong for a handful of runs. Signs as measured: "
        "erank and matrix entropy are read by their papers as lower for the abler model.",
        "",
    ]
    if len({r.model for r in runs}) < len(runs):
        md += [f"{WARN} a model appears in more than one run; its points are not independent.", ""]
    rows, figures, not_drawn = [], [], []
    for itask, ikey, atask, akey, points in pairs:
        row, corr, warnings = _correlation_row(itask, ikey, atask, akey, points, bootstrap, seed)
        rows.append(row)
        ilabel, alabel = row[0], row[1]
        if len(points) < 2 or corr is None:
            continue
        if len(figures) >= MAX_SCATTER_FIGURES:
            not_drawn.append(f"{ilabel} vs {alabel}")
            continue
        iname, aname = ikey.split(",")[0], akey.split(",")[0]
        prefix = "" if iname == "emergence" else f"{iname}_"
        name = f"scatter_{prefix}{slug(itask)}__{slug(atask)}_{slug(aname)}.png"
        xy = [(p[0].label, p[1], p[2]) for p in points]
        fig = scatter_figure(xy, ilabel, alabel, corr, name, out)
        figures.append((ilabel, alabel, fig, warnings))
    header = ["intrinsic", "ability", "runs", "Spearman ρ [95% CI]", "Pearson r [95% CI]"]
    md += table([*header, "resamples used", "warnings"], rows)
    md += [
        "",
        "settings differ: the runs of the pair differ in estimator settings or N (see "
        "Comparability), so the coefficient compares unlike numbers. unreliable estimates: a run "
        "of the pair has flagged blocks, is at the ceiling or has estimator warnings (see "
        "Reliability).",
    ]
    for ilabel, alabel, fig, warnings in figures:
        md += ["", f"### {ilabel} vs {alabel}", ""]
        if warnings:
            md += [f"{WARN} {', '.join(warnings)} (see Comparability and Reliability).", ""]
        md.append(f"![{ilabel} vs {alabel}]({fig})")
    if not_drawn:
        md += [
            "",
            f"Not drawn (at most {MAX_SCATTER_FIGURES} scatter figures; the numbers are in the "
            f"table): {'; '.join(not_drawn)}.",
        ]
    return md


def _x_of(run: Run, x: str) -> float | None:
    """The run's position on the series axis: log10 parameters, or log10(1 + step)."""
    if x == "params":
        return math.log10(run.n_parameters) if run.n_parameters else None
    return None if run.step is None else math.log10(1 + run.step)


def _x_text(value: float, x: str) -> str:
    """A position on the series axis in its own units (a parameter count or a step)."""
    return params_text(round(10**value)) if x == "params" else f"{10**value - 1:,.0f}"


def _breakpoint_cells(fit: Breakpoint, x: str) -> list[str]:
    """Breakpoint, interval, slope after it, R² of the hinge and of one line."""
    if fit.note:
        return [fit.note, "", "", ""]
    lo, hi = fit.ci  # type: ignore[misc]
    low = f"≤ {_x_text(lo, x)}" if fit.open_low else _x_text(lo, x)
    high = f"≥ {_x_text(hi, x)}" if fit.open_high else _x_text(hi, x)
    where = _x_text(fit.at, x)  # type: ignore[arg-type]
    if fit.at == lo and fit.open_low:
        where += " (no bend inside the runs: one line fits as well)"
    return [f"{where} [{low}, {high}]", f"{fit.slope:+.3g}", f"{fit.r2:.2f}", f"{fit.r2_line:.2f}"]


def _series_section(runs: Sequence[Run], subtasks: set[str], out: Path, x: str) -> list[str]:
    """Every metric against scale on one figure, with where each one starts to change."""
    what = "parameter count" if x == "params" else "training step"
    md = ["", f"## Intrinsic and ability metrics against {what}", ""]
    placed = [r for r in runs if _x_of(r, x) is not None]
    left_out = [r.label for r in runs if _x_of(r, x) is None]
    if left_out:
        reason = "no parameter count" if x == "params" else "no training step in its model name"
        md += [f"Left out ({reason}): {', '.join(left_out)}.", ""]
    keys = [
        k
        for k in _metric_keys(placed, (*ABILITY_METRICS, *INTRINSIC_METRICS))
        if k[0] not in subtasks
    ]
    if not keys:
        return md + [f"No run has a {what} and a metric to plot."]
    by_metric: dict[str, list[tuple[str, str]]] = {}
    for task, key in keys:
        by_metric.setdefault(key.partition(",")[0], []).append((task, key))
    omitted = [metric_label(*k) for series in by_metric.values() for k in series[MAX_SERIES:]]
    if omitted:
        md += [f"Not plotted (at most {MAX_SERIES} tasks a panel): {', '.join(omitted)}.", ""]
    intrinsic_tasks = {t for t, k in keys if k.partition(",")[0] in INTRINSIC_METRICS}
    mixed = sorted(t for t in intrinsic_tasks if setting_differences(placed, t))
    md += [
        f"- {WARN} {task} mixes runs with different estimator settings or N (see Comparability)."
        for task in mixed
    ]
    md += [""] if mixed else []
    panels, rows = [], []
    for metric, series_keys in by_metric.items():
        series = []
        for task, key in series_keys[:MAX_SERIES]:
            pts = sorted(
                (
                    (_x_of(r, x), v, r.value(task, stderr_key(key)))
                    for r in placed
                    if (v := r.value(task, key)) is not None
                ),
                key=lambda p: p[:2],  # a stderr may be None
            )
            xs, ys, ses = (list(c) for c in zip(*pts, strict=True))
            fit = breakpoint_fit(xs, ys)
            bends = fit.at is not None and fit.at > min(xs)  # at the first run: one line
            series.append((task, xs, ys, ses, fit if bends else None))
            rows.append([metric, task, str(len(pts)), *_breakpoint_cells(fit, x)])
        panels.append((metric, series))
    xlabel = "log10 parameters" if x == "params" else "log10(1 + training step)"
    figure = series_figure(panels, xlabel, f"series_{x}.png", out)
    md += [
        f"One panel per metric, one point per run, against the log of the {what}: ability first "
        "(`acc`, discontinuous; `logprob_correct`, the continuous log-probability of a correct "
        "next entity), then the intrinsic metrics. Where each one starts to change: the hinge "
        "y = a + b·max(0, x − c) fitted by least squares over the breakpoint c (at least two runs "
        "above it), with the profile 95% interval of c (the breakpoints whose residual sum of "
        "squares is within the F(1, n − 3) bound of the best; approximate: on simulated series "
        "it covered the true breakpoint in 87–95% of them); 'b' is the slope after c per "
        "unit of log10, and R² compares the hinge with one straight line. With a handful of "
        "runs the interval is wide and an end marked ≤ / ≥ is not bounded by the data.",
        "",
        f"![metrics against {what}]({figure})",
        "",
    ]
    md += table(
        ["metric", "task", "runs", "starts to change at [95% interval]", "slope after", "R²",
         "R² line"],
        rows,
    )  # fmt: skip
    return md
