"""A word-level cloze of the shipped corpus: an accuracy task to report next to IE.

Built like LAMBADA and the Children's Book Test, from books: the context is a sentence up to its
last word, the choices are that word and words that end other sentences of the corpus, and the
model has to pick the word that ends the sentence. It needs no tokenizer, so every model is
scored on the same items and the accuracies of a size study compare directly; chance is
1 / n_choices.

Which sentences qualify (`qualifies`): at least `MIN_WORDS` words, none of the characters in
`CLOZE_REJECT_CHARS` (so no questions, no dialogue, no hyphenated or possessive words), and a
last word of at least `MIN_ANSWER_LETTERS` ASCII letters followed only by `.` or `!`.

The task (`tasks/emergence_cloze/emergence_cloze.yaml`) is a plain lm-eval multiple-choice task,
so any lm-eval model runs it (`hf`, `hf-emergence`, ...); its documents come from
`harness.documents.cloze_documents`, its options (`cloze_items`, `n_choices`, `data_seed`) from
`harness/options.py`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

__all__ = [
    "CLOZE_REJECT_CHARS",
    "MIN_ANSWER_LETTERS",
    "MIN_WORDS",
    "cloze_items",
    "qualifies",
]

#: A sentence needs this many words (its context then has at least MIN_WORDS - 1).
MIN_WORDS = 8
#: The answer (the last word without its final punctuation) needs this many letters.
MIN_ANSWER_LETTERS = 3
#: Sentences with any of these characters are skipped: questions, dialogue and quotes, and
#: hyphenated or possessive words, whose last word is not a plain word.
CLOZE_REJECT_CHARS = ":;?-'\"()[]"

_LAST_WORD = re.compile(rf"([A-Za-z]{{{MIN_ANSWER_LETTERS},}})[.!]+")


def qualifies(sentence: str) -> tuple[str, str] | None:
    """(context, answer) of a sentence that can be a cloze item, or None (module docstring)."""
    if any(ch in sentence for ch in CLOZE_REJECT_CHARS):
        return None
    words = sentence.split()
    if len(words) < MIN_WORDS:
        return None
    match = _LAST_WORD.fullmatch(words[-1])
    if match is None:
        return None
    return " ".join(words[:-1]), match.group(1)


def cloze_items(
    sentences: Sequence[str], n_items: int, n_choices: int, seed: int
) -> list[dict[str, Any]]:
    """`n_items` seeded cloze items of `sentences`, each with `n_choices` distinct choices.

    Rows: "context" (the sentence up to its last word, whitespace collapsed), "choices", "gold"
    (the index of the real last word among them) and "source" (the sentence's index in
    `sentences`; for the shipped corpus, its line, which SOURCE.md maps to a book). Sentences are
    drawn without replacement; the distractors are last words of other qualifying sentences,
    each qualifying sentence equally likely, so they follow the answers' own word frequencies and
    a guess of the commonest ending word does no better than chance. Distinct means distinct
    ignoring case. Items are drawn one after another from one generator, so the first m items
    for n_items > m are the items for n_items = m (as lm-eval's --limit takes them).
    """
    if n_choices < 2:
        raise ValueError(f"n_choices must be at least 2 (one choice is no test), got {n_choices}")
    if n_items < 1:
        raise ValueError(f"n_items must be at least 1, got {n_items}")
    pool = [(i, *found) for i, s in enumerate(sentences) if (found := qualifies(s)) is not None]
    if len(pool) < n_items:
        raise ValueError(
            f"only {len(pool)} of {len(sentences)} sentences qualify as cloze items, fewer than "
            f"the {n_items} asked for"
        )
    distinct = len({answer.lower() for _, _, answer in pool})
    if distinct < n_choices:
        raise ValueError(
            f"the qualifying sentences end in only {distinct} distinct words, fewer than the "
            f"{n_choices} choices asked for"
        )
    rng = random.Random(seed)
    order = list(range(len(pool)))
    rows = []
    for i in range(n_items):
        # a lazy Fisher-Yates shuffle: item i's draws come right after item i - 1's
        j = rng.randrange(i, len(pool))
        order[i], order[j] = order[j], order[i]
        source, context, answer = pool[order[i]]
        seen = {answer.lower()}
        distractors: list[str] = []
        while len(distractors) < n_choices - 1:
            word = pool[rng.randrange(len(pool))][2]
            if word.lower() not in seen:
                seen.add(word.lower())
                distractors.append(word)
        gold = rng.randrange(n_choices)
        choices = [*distractors[:gold], answer, *distractors[gold:]]
        rows.append({"context": context, "choices": choices, "gold": gold, "source": source})
    return rows
