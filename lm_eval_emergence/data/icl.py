"""Synthetic in-context-learning lists, as in the paper: "e1,e2,...,ek," of single-token entities.

One shot is an entity followed by the separator, two tokens, so a list of k entities has exactly
T = 2k tokens and every position holds the same kind of token in every list (entity at even
positions, separator at odd ones). Two list conventions exist:

- GPT-2 style, ``leading_space=False``: "France,Spain,China," - every entity is written bare;
- SentencePiece/Llama style, ``leading_space=True``: "France, Spain, China," - entities after the
  first carry a leading space (the token " Spain" / "▁Spain").

The paper writes the second convention "e1, e2, ..., ek, " with a trailing space. That space
belongs to a next entity that is never written: byte-level BPE tokenizers would make it a token of
its own (T = 2k + 1), so the lists here end with the separator. An entity is kept only if it is
one token both as the first item and as a later item; the chosen convention is the one keeping
more entities (ties: GPT-2 style). Every built list is re-tokenized and checked.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .entities import entity_list

__all__ = [
    "IclLists",
    "ListFormat",
    "build_icl_lists",
    "list_format",
    "make_icl_sequences",
    "next_entity_ids",
    "sample_selections",
    "single_token_entities",
]

#: Default floor on the number of usable entities (the paper's smallest category has 15).
DEFAULT_MIN_ENTITIES = 10


@dataclass(frozen=True)
class ListFormat:
    """How lists are written for one tokenizer: convention, kept entities and their token ids."""

    separator: str
    leading_space: bool
    separator_id: int | None  # None when no entity fits (then `entities` is empty)
    entities: tuple[str, ...]
    first_ids: tuple[int, ...]  # token id of each entity as the first item
    later_ids: tuple[int, ...]  # token id of each entity as a later item
    tokenizer_name: str

    @property
    def convention(self) -> str:
        """A readable name of the convention, e.g. 'e1,e2,...,ek,' or 'e1, e2, ..., ek,'."""
        sep = self.separator
        gap = " " if self.leading_space else ""
        return f"e1{sep}{gap}e2{sep}{gap}...{sep}{gap}ek{sep}"

    def text(self, items: Sequence[int]) -> str:
        """The list text of the entities with indices `items` (into `entities`)."""
        gap = " " if self.leading_space else ""
        return "".join(
            (gap if j else "") + self.entities[i] + self.separator for j, i in enumerate(items)
        )

    def token_ids(self, items: Sequence[int]) -> list[int]:
        """The 2k token ids of the list of entities with indices `items`."""
        out: list[int] = []
        for j, i in enumerate(items):
            out.append(self.later_ids[i] if j else self.first_ids[i])
            out.append(self.separator_id)  # type: ignore[arg-type]  # set when entities exist
        return out


def _name(tokenizer: Any) -> str:
    return str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)


def _encode(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    return [list(r) for r in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _format_for(
    tokenizer: Any, entities: Sequence[str], separator: str, leading_space: bool
) -> ListFormat:
    if not separator or separator != separator.strip():
        raise ValueError(f"separator must be non-empty without spaces, got {separator!r}")
    gap = " " if leading_space else ""
    unique = list(dict.fromkeys(e for e in entities if e and e.strip() == e))
    # Probe "e<sep><gap>e<sep>": one token for e first, one for e later, the separator twice.
    # The separator id is read in context (SentencePiece writes "," alone as "▁,").
    probes = _encode(tokenizer, [f"{e}{separator}{gap}{e}{separator}" for e in unique])
    # an unknown word is one token too (the UNK of a word-level vocabulary): never an entity
    # nor a separator
    seen_ids: set[int] = {int(i) for i in getattr(tokenizer, "all_special_ids", []) or []}
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None:
        seen_ids.add(int(unk))
    good = [ids for ids in probes if len(ids) == 4 and ids[1] == ids[3] and ids[1] not in seen_ids]
    sep = Counter(ids[1] for ids in good).most_common(1)[0][0] if good else None
    if sep is not None:
        seen_ids.add(sep)
    kept: list[str] = []
    first: list[int] = []
    later: list[int] = []
    for entity, ids in zip(unique, probes, strict=True):
        if len(ids) != 4 or ids[1] != sep or ids[3] != sep:
            continue
        a, b = ids[0], ids[2]
        if a in seen_ids or b in seen_ids:
            continue  # special/unknown token, or two spellings of one token: keep the first
        seen_ids.update((a, b))
        kept.append(entity)
        first.append(a)
        later.append(b)
    return ListFormat(
        separator=separator,
        leading_space=leading_space,
        separator_id=sep,
        entities=tuple(kept),
        first_ids=tuple(first),
        later_ids=tuple(later),
        tokenizer_name=_name(tokenizer),
    )


def list_format(
    tokenizer: Any,
    entities: Sequence[str],
    separator: str = ",",
    leading_space: bool | None = None,
) -> ListFormat:
    """The list convention for `tokenizer` and the entities that are single tokens under it.

    `leading_space=None` tries both conventions and keeps the one with more single-token
    entities (ties: no space, GPT-2 style); True/False forces one.
    """
    if leading_space is not None:
        return _format_for(tokenizer, entities, separator, bool(leading_space))
    bare = _format_for(tokenizer, entities, separator, False)
    spaced = _format_for(tokenizer, entities, separator, True)
    return spaced if len(spaced.entities) > len(bare.entities) else bare


def single_token_entities(
    tokenizer: Any,
    entities: Sequence[str],
    separator: str = ",",
    leading_space: bool | None = None,
) -> list[str]:
    """The entities that are exactly one token as first and as later list item (order kept).

    See `list_format` for the convention choice; `list_format(...).leading_space` tells which.
    """
    return list(list_format(tokenizer, entities, separator, leading_space).entities)


def sample_selections(n_entities: int, k: int, n: int, seed: int) -> list[tuple[int, ...]]:
    """n seeded ordered selections of k distinct indices out of range(n_entities).

    No selection repeats while n <= n_entities! / (n_entities - k)!; beyond that every
    k-permutation is used as evenly as possible (shuffled rounds of all of them).
    """
    if not 1 <= k <= n_entities:
        raise ValueError(f"k must be in 1..{n_entities} (the number of entities), got {k}")
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    rng = np.random.default_rng(seed)
    total = math.perm(n_entities, k)
    if n >= total:  # all of them, in shuffled rounds
        every = list(itertools.permutations(range(n_entities), k))
        order = np.concatenate([rng.permutation(total) for _ in range(-(-n // total))])[:n]
        return [every[i] for i in order]
    if total <= 4 * n:  # dense: distinct indices, decoded in the mixed radix m, m-1, ...
        out = []
        for index in rng.choice(total, size=n, replace=False).tolist():
            pool = list(range(n_entities))
            sel = []
            for j in range(k):
                index, digit = divmod(index, n_entities - j)
                sel.append(pool.pop(digit))
            out.append(tuple(sel))
        return out
    seen: set[tuple[int, ...]] = set()
    out = []
    while len(out) < n:  # sparse: uniform k-permutations, rejecting repeats (rare)
        rows = min(max(n - len(out), 64), 65536)
        draws = rng.random((rows, n_entities)).argsort(axis=1)[:, :k]
        for row in draws.tolist():
            sel = tuple(row)
            if sel not in seen and len(out) < n:
                seen.add(sel)
                out.append(sel)
    return out


def make_icl_sequences(
    tokenizer: Any,
    category: str,
    k: int,
    n: int,
    seed: int,
    min_entities: int = DEFAULT_MIN_ENTITIES,
    *,
    separator: str = ",",
    leading_space: bool | None = None,
    entities: Sequence[str] | None = None,
    n_entities: int | None = None,
) -> list[list[int]]:
    """n seeded ICL lists of k distinct `category` entities, as token-id lists of length 2k.

    `entities` replaces the built-in list of `category`; `n_entities` uses only the first that
    many single-token entities (the paper: 25 countries, 16 animals, 15 colours). Raises a
    ValueError when fewer than max(k, min_entities) entities are single tokens.
    """
    return build_icl_lists(
        tokenizer,
        category,
        k,
        n,
        seed,
        min_entities,
        separator=separator,
        leading_space=leading_space,
        entities=entities,
        n_entities=n_entities,
    ).sequences


@dataclass(frozen=True)
class IclLists:
    """Built lists: the format, each list's entity indices (into `format.entities`) and ids."""

    format: ListFormat
    selections: list[tuple[int, ...]]
    sequences: list[list[int]]


def build_icl_lists(
    tokenizer: Any,
    category: str,
    k: int,
    n: int,
    seed: int,
    min_entities: int = DEFAULT_MIN_ENTITIES,
    *,
    separator: str = ",",
    leading_space: bool | None = None,
    entities: Sequence[str] | None = None,
    n_entities: int | None = None,
) -> IclLists:
    """`make_icl_sequences` with the list format and the selections kept (for texts, targets)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    pool = list(entities) if entities is not None else list(entity_list(category))
    fmt = list_format(tokenizer, pool, separator, leading_space)
    kept = len(fmt.entities)
    need = max(k, min_entities, n_entities or 0)
    if kept < need:
        raise ValueError(
            f"tokenizer {fmt.tokenizer_name} keeps only {kept} of {len(pool)} '{category}' "
            f"entities as single tokens in lists written {fmt.convention!r}, but {need} are "
            f"needed (k={k}, min_entities={min_entities}"
            + (f", n_entities={n_entities}" if n_entities else "")
            + "). Fix: lower k or min_entities, choose another category, try the other list "
            "convention with leading_space=True/False, use a separator that is one token in "
            "context, or pass entities= with words that are one token for this tokenizer."
        )
    if n_entities is not None:
        fmt = ListFormat(
            separator=fmt.separator,
            leading_space=fmt.leading_space,
            separator_id=fmt.separator_id,
            entities=fmt.entities[:n_entities],
            first_ids=fmt.first_ids[:n_entities],
            later_ids=fmt.later_ids[:n_entities],
            tokenizer_name=fmt.tokenizer_name,
        )
    selections = sample_selections(len(fmt.entities), k, n, seed)
    sequences = [fmt.token_ids(sel) for sel in selections]
    texts = [fmt.text(sel) for sel in selections]
    for text, built, ids in zip(texts, sequences, _encode(tokenizer, texts), strict=True):
        if ids != built:
            raise RuntimeError(
                f"the list {text!r} tokenizes to {ids} under {fmt.tokenizer_name}, not to the "
                f"{2 * k} tokens {built} built shot by shot; this tokenizer merges across the "
                "separator, so it cannot be used with these lists"
            )
    return IclLists(format=fmt, selections=selections, sequences=sequences)


def next_entity_ids(
    tokenizer: Any, built: IclLists, category: str
) -> tuple[list[list[int]], list[list[int]]]:
    """Per list, the token ids whose greedy choice next counts as correct (the ICL `acc`), and
    those that repeat a listed entity (the hallucination-like error of the paper's claim 3).

    A correct continuation starts an entity of the category that the list does not hold yet:
    the first token of each curated entity written as a later list item, minus the first
    tokens of the listed ones. A repeat starts a listed entity (as a first or a later item).
    """
    fmt = built.format
    gap = " " if fmt.leading_space else ""
    pool = entity_list(category)
    starts = tokenizer([gap + e for e in pool], add_special_tokens=False)["input_ids"]
    first_token = {e: ids[0] for e, ids in zip(pool, starts, strict=True) if ids}
    correct, repeat = [], []
    for selection in built.selections:
        listed = [fmt.entities[i] for i in selection]
        listed_starts = {first_token[e] for e in listed if e in first_token}
        listed_starts |= {fmt.later_ids[i] for i in selection}
        correct.append(
            sorted({t for e, t in first_token.items() if e not in listed} - listed_starts)
        )
        repeat.append(sorted(listed_starts))
    return correct, repeat
