"""The rendered documents: the check catches any changed number, the lint any typed one."""

from __future__ import annotations

import random
import shutil

import pytest

from studies.render import formatting
from studies.render.documents import DOCUMENTS, ROOT, differences, lint, render
from studies.render.lint import NUMBER, literals


def test_committed_documents_are_their_rendering() -> None:
    assert differences() == {}, "run python -m studies.render and commit the documents"


def test_no_template_types_a_number() -> None:
    assert [str(x) for x in lint()] == []


def test_a_changed_number_anywhere_in_a_document_fails_the_check(tmp_path) -> None:
    """Twenty numbers of each document, picked at random, each changed by one digit: the check
    names that document every time (and no other)."""
    rng = random.Random(20261207)
    for document in DOCUMENTS:
        text = render(document)
        numbers = [m for m in NUMBER.finditer(text) if any(c.isdigit() for c in m.group(0))]
        assert len(numbers) >= 3, f"{document.path} prints almost no numbers"
        for match in rng.sample(numbers, min(20, len(numbers))):
            digits = [i for i in range(match.start(), match.end()) if text[i].isdigit()]
            i = rng.choice(digits)
            mutated = text[:i] + str((int(text[i]) + rng.randint(1, 9)) % 10) + text[i + 1 :]
            for other in DOCUMENTS:
                target = tmp_path / other.path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ROOT / other.path, target)
            (tmp_path / document.path).write_text(mutated, encoding="utf-8")
            assert list(differences(tmp_path)) == [document.path], (document.path, match.group(0))


def test_the_lint_reads_prose_only() -> None:
    source = (
        "{#- constants: 0.8 2,000 -#}\n"
        "The gate is 0.8 over 2,000 lists; IE is 20.44 bits.\n"
        "SmolLM2-135M and Qwen2.5 are names; `--limit 300` is code; {{ x | num }} an expression.\n"
        "1. a list item\n"
        "```bash\nlm-eval-emergence --limit 50\n```\n"
        "```text\n| 3.25 |\n```\n"
        "See [the paper](https://arxiv.org/abs/2405.12617) and −1.5 bits.\n"
    )
    found = [(x.line, x.text) for x in literals("t.md.j2", source)]
    assert found == [(2, "20.44"), (9, "3.25"), (11, "−1.5")]


def test_numbers_print_one_way() -> None:
    assert formatting.num(-1.25, 1) == "−1.2"
    assert formatting.num(-0.001, 2) == "0.00"
    assert formatting.signed(0.017, 3) == "+0.017"
    assert formatting.signed(-0.5, 1) == "−0.5"
    assert formatting.count(300000) == "300,000"
    assert formatting.pm((20.443, 0.0834)) == "20.44 ± 0.08"
    assert formatting.span([0.3, -0.12, 0.2]) == "−0.12–0.30"
    assert formatting.pct(0.925, 1) == "92.5"


@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), "1.0", True])
def test_a_missing_or_failed_value_is_an_error_not_text(bad) -> None:
    with pytest.raises((TypeError, ValueError), match="expression"):
        formatting.num(bad)


def test_count_refuses_a_fraction() -> None:
    with pytest.raises(ValueError, match="whole numbers"):
        formatting.count(2.5)
