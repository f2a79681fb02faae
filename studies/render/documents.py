"""Which documents are rendered, from which template and which values, and the check.

`render(document)` computes the document's values from the committed results and fills its
template; `check(root)` renders every document and compares it with the file under `root`.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from pathlib import Path

import jinja2

from studies.render.formatting import FILTERS
from studies.render.lint import Literal, literals

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class Document:
    """A rendered document: its path in the repository, its template, its values module."""

    path: str
    template: str
    values: tuple[str, ...]  # modules under studies.render.values, each `values() -> dict`

    def banner(self) -> str:
        return (
            f"<!-- Rendered from studies/render/templates/{self.template} by "
            "`python -m studies.render`: edit the template, not this file. -->\n"
        )


DOCUMENTS: tuple[Document, ...] = (
    Document("README.md", "README.md.j2", ("readme",)),
    Document(
        "docs/validity.md",
        "validity.md.j2",
        ("validity_round1", "validity_baselines", "validity_round2"),
    ),
    Document("docs/reproduction.md", "reproduction.md.j2", ("reproduction",)),
    Document(
        "docs/performance.md",
        "performance.md.j2",
        ("performance", "performance_projections", "performance_readme_command"),
    ),
    Document("docs/method-notes.md", "method-notes.md.j2", ("method_notes",)),
    Document("docs/uncertainty.md", "uncertainty.md.j2", ("uncertainty",)),
)


def environment() -> jinja2.Environment:
    """The one Jinja2 environment: strict (an unknown name is an error), no HTML escaping."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(FILTERS)
    return env


def render(document: Document, env: jinja2.Environment | None = None) -> str:
    """The text of `document`, from its template and the values of the committed results."""
    env = env or environment()
    namespace: dict = {}
    for name in document.values:
        values = importlib.import_module(f"studies.render.values.{name}").values()
        clash = namespace.keys() & values.keys()
        if clash:
            raise ValueError(f"{document.path}: values named twice: {sorted(clash)}")
        namespace.update(values)
    return document.banner() + env.get_template(document.template).render(**namespace)


def templates_of(document: Document) -> list[Path]:
    """`document`'s template and its parts (the templates in the folder named after it)."""
    main = TEMPLATES / document.template
    parts = TEMPLATES / document.template.removesuffix(".md.j2")
    return [main, *sorted(parts.rglob("*.j2"))]


def lint(documents: tuple[Document, ...] = DOCUMENTS) -> list[Literal]:
    """Every undeclared literal number in the prose of `documents`' templates and parts."""
    found = []
    for document in documents:
        for path in templates_of(document):
            name = str(path.relative_to(TEMPLATES))
            found += literals(name, path.read_text(encoding="utf-8"))
    return found


def selected(only: list[str] | None = None) -> tuple[Document, ...]:
    """The documents whose path is in `only` (every document without it)."""
    if not only:
        return DOCUMENTS
    known = {d.path: d for d in DOCUMENTS}
    unknown = [p for p in only if p not in known]
    if unknown:
        raise SystemExit(f"not a rendered document: {unknown}; choose from {sorted(known)}")
    return tuple(known[p] for p in only)


def differences(
    root: Path = ROOT, documents: tuple[Document, ...] = DOCUMENTS
) -> dict[str, list[str]]:
    """Per document whose file under `root` differs from its rendering: the unified diff."""
    env = environment()
    out = {}
    for document in documents:
        path = root / document.path
        committed = path.read_text(encoding="utf-8") if path.exists() else ""
        rendered = render(document, env)
        if committed != rendered:
            out[document.path] = list(
                difflib.unified_diff(
                    committed.splitlines(),
                    rendered.splitlines(),
                    f"{document.path} (committed)",
                    f"{document.path} (rendered)",
                    lineterm="",
                    n=0,
                )
            )
    return out


def write(root: Path = ROOT, documents: tuple[Document, ...] = DOCUMENTS) -> list[str]:
    """Render `documents` into `root`; the paths whose text changed."""
    env = environment()
    changed = []
    for document in documents:
        path = root / document.path
        text = render(document, env)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(document.path)
    return changed
