"""python -m studies.render [--check]: write the rendered documents, or check them (CI)."""

from __future__ import annotations

import argparse

from studies.render.documents import differences, lint, selected, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies.render", description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a committed document differs from its rendering or a "
        "template's prose holds an undeclared literal number",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="PATH", help="only these documents (e.g. docs/validity.md)"
    )
    args = parser.parse_args(argv)
    documents = selected(args.only)
    found = lint(documents)
    for literal in found:
        print(literal)
    if not args.check:
        for path in write(documents=documents):
            print(f"wrote {path}")
        return 1 if found else 0
    diffs = differences(documents=documents)
    for path, lines in diffs.items():
        print(f"{path} differs from its rendering (python -m studies.render rewrites it):")
        print("\n".join(lines[:40]) + ("\n..." if len(lines) > 40 else ""))
    print(
        f"{len(documents)} documents rendered: {len(diffs)} differ from the committed text, "
        f"{len(found)} undeclared literal numbers in the templates"
    )
    return 1 if diffs or found else 0


if __name__ == "__main__":
    raise SystemExit(main())
