"""The documents whose numbers come from the studies' results, rendered from templates.

Each document (the README, docs/validity.md, docs/reproduction.md, docs/performance.md,
docs/uncertainty.md, docs/method-notes.md) is a Jinja2 template under `templates/` and a module
under `values/` that names every number the template prints, computed from the committed results
files. `python -m studies.render` writes the documents; `--check` renders them in memory, fails on
any difference from the committed text and on any literal number in a template's prose that the
template does not declare as a constant (`lint.py`). `make check-studies` runs the check; CI too.
"""
