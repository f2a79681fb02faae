"""`build_report`: the Markdown report and its figures, section by section."""

from __future__ import annotations

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
from .figures import curve_figure, layers_figure, outcome_figure, scaling_figure, scatter_figure
from .runs import ACCURACY_METRICS, UNRECORDED, Run, load_runs
from .stats import ci_text, correlate
from .text import (
    NA,
    acc_label,
    fmt,
    layers_text,
    merge,
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


def build_report(
    paths: Iterable[str | Path], out_dir: str | Path, *, bootstrap: int = 2000, seed: int = 0
) -> Path:
    """Write `report.md` and its PNG figures into `out_dir`; return the Markdown file's path.

    Raises ReportInputError for an input that is not an lm-eval results file.
    """
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
    md += _layers_section(runs, etasks, out)
    md += _curves_section(runs, etasks, out)
    md += _outcomes_section(runs, etasks, out)
    md += _correlation_section(runs, etasks, subtasks, out, bootstrap, seed)
    md += _scaling_section(runs, etasks, subtasks, out)
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
            acc_label(task, key).split(": ", 1)[1],
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


def _accuracy_keys(runs: Sequence[Run]) -> list[tuple[str, str]]:
    """(task, metric key) of every accuracy metric with a value in some run."""
    keys = set()
    for r in runs:
        for task, metrics in r.metrics.items():
            for key, value in metrics.items():
                if key.partition(",")[0] in ACCURACY_METRICS and value is not None:
                    keys.add((task, key))
    return sorted(keys)


def _correlation_pairs(
    runs: Sequence[Run], etasks: list[str], subtasks: set[str]
) -> list[tuple[str, str, str, list[tuple[Run, float, float]]]]:
    """(IE task, accuracy task, key, points) for every pair with data, most relevant first:
    the task's own accuracy, then top-level pairs, then the rest."""
    pairs = []
    for etask in etasks:
        for atask, key in _accuracy_keys(runs):
            points = [
                (r, ie, acc)
                for r in runs
                if (ie := r.value(etask, IE_KEY)) is not None
                and (acc := r.value(atask, key)) is not None
            ]
            if points:
                rank = 0 if atask == etask else 1 if {etask, atask}.isdisjoint(subtasks) else 2
                pairs.append((rank, -len(points), etask, atask, key, points))
    pairs.sort(key=lambda p: p[:5])
    return [(etask, atask, key, points) for *_, etask, atask, key, points in pairs]


def _correlation_row(
    etask: str, atask: str, key: str, points: list, bootstrap: int, seed: int
) -> tuple[list[str], Any, list[str]]:
    """The table row of one pair, its correlation and its warnings."""
    used = [p[0] for p in points]
    protocols = {r.label: r.settings.get(etask, {}).get("protocol", UNRECORDED) for r in used}
    if len(set(protocols.values())) > 1:
        # different protocols are different quantities: no coefficient between them
        mixed = grouped_by_value(protocols)
        cells = [f"not computed: runs of different protocols ({mixed})", "", ""]
        row = [etask, acc_label(atask, key), str(len(points)), *cells, "protocols differ"]
        return row, None, ["protocols differ"]
    corr = correlate([p[1] for p in points], [p[2] for p in points], bootstrap=bootstrap, seed=seed)
    warnings = []
    if setting_differences(used, etask):
        warnings.append("settings differ")
    if any(reliability_issues(r, etask) for r in used):
        warnings.append("unreliable estimates")
    if corr.note:
        cells = [corr.note, "", ""]
    else:
        cells = [
            f"{corr.spearman:.3f} {ci_text(corr.spearman_ci)}",
            f"{corr.pearson:.3f} {ci_text(corr.pearson_ci)}",
            f"{corr.resamples_used}/{corr.resamples}",
        ]
    row = [etask, acc_label(atask, key), str(corr.n), *cells, ", ".join(warnings)]
    return row, corr, warnings


def _correlation_section(
    runs: Sequence[Run],
    etasks: list[str],
    subtasks: set[str],
    out: Path,
    bootstrap: int,
    seed: int,
) -> list[str]:
    md = ["", "## IE against accuracy", ""]
    pairs = _correlation_pairs(runs, etasks, subtasks)
    if not pairs:
        return md + ["No run has both an IE number and an accuracy metric."]
    md += [
        "One point per run. Spearman ρ and Pearson r over runs (scipy.stats); 95% intervals from "
        f"a percentile bootstrap that resamples runs ({bootstrap} resamples, seed {seed}); "
        "resamples in which a variable is constant are skipped, 'used' counts the others. With "
        "few runs a percentile interval understates the uncertainty: [1.00, 1.00] only says that "
        "every resample kept the order of the runs, not that the relation is certain. No "
        "p-values: the asymptotic ones are wrong for a handful of runs.",
        "",
    ]
    if len({r.model for r in runs}) < len(runs):
        md += [f"{WARN} a model appears in more than one run; its points are not independent.", ""]
    rows, figures, not_drawn = [], [], []
    for etask, atask, key, points in pairs:
        row, corr, warnings = _correlation_row(etask, atask, key, points, bootstrap, seed)
        rows.append(row)
        label = row[1]
        if len(points) < 2 or corr is None:
            continue
        if len(figures) >= MAX_SCATTER_FIGURES:
            not_drawn.append(f"{etask} vs {label}")
            continue
        name = f"scatter_{slug(etask)}__{slug(atask)}_{slug(key.split(',')[0])}.png"
        xy = [(p[0].label, p[1], p[2]) for p in points]
        fig = scatter_figure(xy, f"IE of {etask} (bits)", label, corr, name, out)
        figures.append((etask, label, fig, warnings))
    header = ["IE of", "accuracy", "runs", "Spearman ρ [95% CI]", "Pearson r [95% CI]"]
    md += table([*header, "resamples used", "warnings"], rows)
    md += [
        "",
        "settings differ: the runs of the pair differ in estimator settings or N (see "
        "Comparability), so the coefficient compares unlike numbers. unreliable estimates: a run "
        "of the pair has flagged blocks, is at the ceiling or has estimator warnings (see "
        "Reliability).",
    ]
    for etask, label, fig, warnings in figures:
        md += ["", f"### IE of {etask} vs {label}", ""]
        if warnings:
            md += [f"{WARN} {', '.join(warnings)} (see Comparability and Reliability).", ""]
        md.append(f"![IE of {etask} vs {label}]({fig})")
    if not_drawn:
        md += [
            "",
            f"Not drawn (at most {MAX_SCATTER_FIGURES} scatter figures; the numbers are in the "
            f"table): {'; '.join(not_drawn)}.",
        ]
    return md


def _scaling_section(
    runs: Sequence[Run], etasks: list[str], subtasks: set[str], out: Path
) -> list[str]:
    md = ["", "## IE and accuracy against parameter count", ""]
    with_params = [r for r in runs if r.n_parameters]
    left_out = [r.label for r in runs if not r.n_parameters]
    if left_out:
        md += [f"Left out (no parameter count): {', '.join(left_out)}.", ""]
    ie = [(t, IE_KEY) for t in etasks if any(r.value(t, IE_KEY) is not None for r in with_params)]
    acc = sorted(_accuracy_keys(with_params), key=lambda k: (k[0] in subtasks, k))
    if not ie and not acc:
        return md + ["No run has a parameter count and a metric to plot."]
    for what, series in (("IE", ie), ("accuracy", acc)):
        if len(series) > MAX_SERIES:
            omitted = ", ".join(
                acc_label(*s) if what == "accuracy" else s[0] for s in series[MAX_SERIES:]
            )
            md += [f"Not plotted ({what}, at most {MAX_SERIES} series): {omitted}.", ""]
    ie, acc = ie[:MAX_SERIES], acc[:MAX_SERIES]
    mixed = [task for task, _ in ie if setting_differences(with_params, task)]
    md += [
        f"- {WARN} IE of {task} mixes runs with different estimator settings or N "
        "(see Comparability)."
        for task in mixed
    ]
    md += [""] if mixed else []
    md += [
        "One point per run, log scale: IE (left, ± 1 stderr), the intrinsic score, next to "
        "accuracy (right), the performance on which emergence is usually read.",
        "",
        f"![IE and accuracy against parameters]({scaling_figure(with_params, ie, acc, out)})",
    ]
    return md
