"""Fixed-length token windows of natural text, anchored at sentence starts (as in arXiv 2405.12617).

The paper measures natural text on 8-token windows that begin a sentence and rejects windows
containing any of ``: \\n ? - ;``. The package ships a public-domain corpus for this
(`corpus/SOURCE.md`: seven 19th-century novels, one sentence per line).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

__all__ = [
    "PAPER_REJECT_CHARS",
    "TextWindow",
    "corpus_sentences",
    "sentence_starts",
    "windows_from_texts",
]

#: Characters whose presence rejects a window (the paper's filter).
PAPER_REJECT_CHARS = ":\n?-;"

_SENTENCE_START = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z\"'(])")


@dataclass(frozen=True)
class TextWindow:
    """One window: its token ids, its decoded text and where it came from."""

    token_ids: tuple[int, ...]
    text: str
    source: int  # index of the text it was cut from
    offset: int  # character offset of its sentence start in that text


def corpus_sentences() -> list[str]:
    """The shipped corpus, one sentence per line (see corpus/SOURCE.md)."""
    path = resources.files("lm_eval_emergence.data").joinpath("corpus/sentences.txt.gz")
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()]


def sentence_starts(text: str) -> list[int]:
    """Character offsets where sentences begin: 0 and after . ! ? followed by space."""
    starts = [0] if text[:1].strip() else []
    if not starts:
        stripped = len(text) - len(text.lstrip())
        if stripped < len(text):
            starts = [stripped]
    starts.extend(m.end() for m in _SENTENCE_START.finditer(text))
    return sorted(set(starts))


def windows_from_texts(
    tokenizer: Any,
    texts: Sequence[str],
    window: int,
    *,
    reject_chars: str = PAPER_REJECT_CHARS,
    every_sentence: bool = True,
    require_first: bool = False,
) -> list[TextWindow]:
    """Windows of `window` tokens starting at each sentence start of each text (deduplicated).

    A window is tokenized from its sentence start (no special tokens) and cut to `window`
    tokens; it is dropped when the remaining text is shorter or its decoded text contains one of
    `reject_chars`. With `require_first`, a text whose first window is too short is an error
    (the user's own texts: a silent drop would shrink the sample unnoticed).
    """
    if window < 2:
        raise ValueError(f"window must be at least 2 tokens (one has no context), got {window}")
    out: list[TextWindow] = []
    seen: set[tuple[int, ...]] = set()
    for index, text in enumerate(texts):
        anchors = sentence_starts(text) if every_sentence else sentence_starts(text)[:1]
        pieces = [text[a : a + 40 * window] for a in anchors]
        encoded = _encode(tokenizer, pieces) if pieces else []
        for anchor_no, (anchor, ids) in enumerate(zip(anchors, encoded, strict=True)):
            if len(ids) < window:
                if require_first and anchor_no == 0:
                    raise ValueError(
                        f"text {index} has {len(ids)} tokens, fewer than the window of {window}: "
                        f"{text[:60]!r}. Remove such texts or lower the window (metadata "
                        "'window')"
                    )
                continue
            ids = tuple(ids[:window])
            decoded = tokenizer.decode(list(ids))
            if any(ch in decoded for ch in reject_chars) or ids in seen:
                continue
            seen.add(ids)
            out.append(TextWindow(ids, decoded, index, anchor))
    return out


def sample_windows(windows: list[TextWindow], n: int | None, seed: int) -> list[TextWindow]:
    """A seeded subset of n windows (all of them, in a seeded order, when n is None or larger)."""
    order = np.random.default_rng(seed).permutation(len(windows))
    if n is not None:
        order = order[:n]
    return [windows[i] for i in order.tolist()]


def _encode(tokenizer: Any, texts: Iterable[str]) -> list[list[int]]:
    return [list(r) for r in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
