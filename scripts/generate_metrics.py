"""Write what follows from the metric table (`lm_eval_emergence/metrics/table.py`), or check it.

- pyproject.toml: the `lm_eval.metrics` and `lm_eval.aggregations` entry points, one per
  registered key (read by lm-eval releases with plugin discovery);
- each group YAML under tasks/: its `aggregate_metric_list` (the rows a group aggregates);
- docs/lm-eval.md: the metric table between its markers.

    python scripts/generate_metrics.py          # rewrite them
    python scripts/generate_metrics.py --check  # exit 1, listing each file that differs

A test runs `--check` (tests/test_metric_table.py), so the files cannot drift from the table.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lm_eval_emergence.metrics.table import METRICS, group_metrics, registered  # noqa: E402

MODULE = "lm_eval_emergence.harness.metrics"
DOC = ROOT / "docs" / "lm-eval.md"
DOC_BEGIN = "<!-- metric table: written by scripts/generate_metrics.py -->"
DOC_END = "<!-- end of the metric table -->"
#: The group YAMLs and their subtasks' order (the rest of each file is written here too).
GROUPS = {
    "emergence_icl": ["emergence_icl_country", "emergence_icl_animal", "emergence_icl_color"],
}


def entry_points() -> str:
    """The two entry-point sections of pyproject.toml."""
    rows = registered()
    metrics = [f'{m.key} = "{MODULE}:passthrough"' for m in rows]
    aggregations = [f'{m.key} = "{MODULE}:aggregate_{m.key}"' for m in rows if m.value is not None]
    return "\n".join(
        [
            '[project.entry-points."lm_eval.metrics"]',
            *metrics,
            "",
            '[project.entry-points."lm_eval.aggregations"]',
            *aggregations,
        ]
    )


def pyproject(text: str) -> str:
    """pyproject.toml with its two entry-point sections rewritten."""
    pattern = re.compile(
        r'\[project\.entry-points\."lm_eval\.metrics"\]\n.*?'
        r'\[project\.entry-points\."lm_eval\.aggregations"\]\n(?:[^\n\[]+\n)*',
        re.DOTALL,
    )
    if not pattern.search(text):
        raise SystemExit("pyproject.toml has no lm_eval.metrics / lm_eval.aggregations sections")
    return pattern.sub(lambda _: entry_points() + "\n", text, count=1)


def group_yaml(group: str, subtasks: list[str]) -> str:
    lines = [f"group: {group}", "task:"]
    lines += [f"  - {task}" for task in subtasks]
    lines.append("aggregate_metric_list:")
    for row in group_metrics():
        weighted = str(row.group == "weighted").lower()
        lines += [f"  - metric: {row.key}", f"    weight_by_size: {weighted}"]
    lines += ["metadata:", "  version: 1.0"]
    return "\n".join(lines) + "\n"


def _arrow(better: bool | None) -> str:
    return {True: "↑", False: "↓", None: ""}[better]


def doc_table() -> str:
    """The docs' table of every key (shot and stderr rows summarised)."""
    lines = [
        DOC_BEGIN,
        "",
        "| key | what it measures | arrow | ± | needs the control | computed in |",
        "|---|---|---|---|---|---|",
    ]
    for row in METRICS:
        if row.key.endswith("_stderr") or re.match(r"emergence_shot(0[2-9]|10)", row.key):
            continue
        key = row.key.replace("shot01", "shotNN")
        meaning = row.meaning.replace("shot 1", "shot NN")
        plus_minus = "yes" if row.stderr is not None else ("lm-eval's" if row.value is None else "")
        control = "yes" if row.control else ""
        lines.append(
            f"| `{key}` | {meaning} | {_arrow(row.higher_is_better)} | {plus_minus} | {control} "
            f"| `{row.computed_in}` |"
        )
    lines += ["", DOC_END]
    return "\n".join(lines)


def doc(text: str) -> str:
    start, end = text.find(DOC_BEGIN), text.find(DOC_END)
    if start < 0 or end < 0:
        raise SystemExit(f"{DOC} has no metric table markers ({DOC_BEGIN} ... {DOC_END})")
    return text[:start] + doc_table() + text[end + len(DOC_END) :]


def targets() -> dict[Path, str]:
    """Every generated file and the text it must hold."""
    out = {ROOT / "pyproject.toml": pyproject((ROOT / "pyproject.toml").read_text())}
    for group, subtasks in GROUPS.items():
        out[ROOT / "tasks" / group / f"{group}.yaml"] = group_yaml(group, subtasks)
    out[DOC] = doc(DOC.read_text(encoding="utf-8"))
    return out


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv not in ([], ["--check"]):
        print("usage: python scripts/generate_metrics.py [--check]", file=sys.stderr)
        return 2
    stale = []
    for path, text in targets().items():
        if path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
    for path in stale:
        verb = "differs from the metric table" if check else "rewritten from the metric table"
        print(f"{path.relative_to(ROOT)} {verb}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
