"""The data: synthetic ICL lists (single-token entities, list conventions, seeded sampling) and
windows of natural text."""

from __future__ import annotations

import math

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from lm_eval_emergence.data import (
    ANIMALS,
    CATEGORIES,
    COLOURS,
    COUNTRIES,
    entity_list,
    list_format,
    make_icl_sequences,
    sample_selections,
    single_token_entities,
)
from lm_eval_emergence.data.windows import sentence_starts, windows_from_texts

GPT2_STYLE_WORDS = ["France", "Spain", "China", "Japan", "India", "Italy", "Peru", "Chile"]


def word_level_tokenizer(
    words: list[str], *, sentencepiece: bool = False
) -> PreTrainedTokenizerFast:
    """An offline word-level tokenizer that splits off punctuation.

    GPT-2 style: bare words, spaces dropped. SentencePiece style: words carry "▁" and are only
    known in that form ("France, Spain," -> ▁France , ▁Spain ,), so "France,Spain," is not
    representable: the later "Spain" is unknown.
    """
    vocab = {"[UNK]": 0, ",": 1, ";": 2}
    for w in words:
        vocab["▁" + w if sentencepiece else w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    if sentencepiece:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Punctuation(), pre_tokenizers.Metaspace(prepend_scheme="first")]
        )
        tok.decoder = decoders.Metaspace(prepend_scheme="first")
    else:
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


@pytest.fixture(scope="module")
def gpt2_style():
    return word_level_tokenizer(GPT2_STYLE_WORDS)


@pytest.fixture(scope="module")
def sp_style():
    return word_level_tokenizer(GPT2_STYLE_WORDS, sentencepiece=True)


def decode_entities(tokenizer, ids: list[int]) -> list[str]:
    return [tokenizer.decode([i]).strip() for i in ids[0::2]]


# --------------------------------------------------------------------------------------------
# Entity lists


def test_entity_lists_are_curated_and_distinct():
    assert len(COUNTRIES) >= 60 and len(ANIMALS) >= 40 and len(COLOURS) >= 25
    for entities in CATEGORIES.values():
        assert len(set(entities)) == len(entities)
        assert all(e == e.strip() and " " not in e for e in entities)
    assert entity_list("countries") is COUNTRIES
    assert entity_list("color") is COLOURS
    with pytest.raises(ValueError, match="country, animal, colour"):
        entity_list("planet")


# --------------------------------------------------------------------------------------------
# Conventions


def test_gpt2_style_keeps_known_words_and_drops_unknown(gpt2_style):
    kept = single_token_entities(gpt2_style, [*GPT2_STYLE_WORDS, "Greece", "Norway"])
    assert kept == GPT2_STYLE_WORDS  # unknown words map to [UNK]: one token, but not an entity
    fmt = list_format(gpt2_style, GPT2_STYLE_WORDS)
    assert fmt.leading_space is False  # both conventions keep all: the tie goes to GPT-2 style
    assert fmt.first_ids == fmt.later_ids
    assert fmt.convention == "e1,e2,...,ek,"


def test_sentencepiece_style_is_detected(sp_style):
    assert list_format(sp_style, GPT2_STYLE_WORDS, leading_space=False).entities == ()
    fmt = list_format(sp_style, GPT2_STYLE_WORDS)
    assert fmt.leading_space is True
    assert fmt.entities == tuple(GPT2_STYLE_WORDS)
    seqs = make_icl_sequences(sp_style, "country", 3, 50, 0, min_entities=3, entities=fmt.entities)
    assert all(len(s) == 6 for s in seqs)
    assert sp_style.decode(seqs[0]).count(", ") == 2  # "e1, e2, e3,"


def test_separator_must_be_one_token(gpt2_style):
    fmt = list_format(gpt2_style, GPT2_STYLE_WORDS, separator=",;")
    assert fmt.entities == ()
    with pytest.raises(ValueError, match="separator"):
        make_icl_sequences(
            gpt2_style, "country", 2, 10, 0, entities=GPT2_STYLE_WORDS, separator=",;"
        )


# --------------------------------------------------------------------------------------------
# Sequences


@pytest.mark.parametrize("k", [1, 3, 5])
def test_lists_have_2k_tokens_and_distinct_entities(gpt2_style, k):
    seqs = make_icl_sequences(gpt2_style, "country", k, 200, 7, min_entities=5,
                              entities=GPT2_STYLE_WORDS)  # fmt: skip
    assert len(seqs) == 200
    comma = gpt2_style.convert_tokens_to_ids(",")
    for ids in seqs:
        assert len(ids) == 2 * k
        assert ids[1::2] == [comma] * k
        assert len(set(ids[0::2])) == k  # without replacement within a list
        text = gpt2_style.decode(ids).replace(" ", "")
        assert gpt2_style(text, add_special_tokens=False).input_ids == ids
    total = math.perm(8, k)  # 8, 336, 6720
    distinct = len({tuple(s) for s in seqs})
    assert distinct == min(200, total)  # no duplicate list while n <= 8Pk


def test_lists_are_seeded(gpt2_style):
    args = (gpt2_style, "country", 3, 100)
    kw = {"min_entities": 5, "entities": GPT2_STYLE_WORDS}
    assert make_icl_sequences(*args, 0, **kw) == make_icl_sequences(*args, 0, **kw)
    assert make_icl_sequences(*args, 0, **kw) != make_icl_sequences(*args, 1, **kw)


def test_too_few_entities_error(gpt2_style):
    with pytest.raises(ValueError) as err:
        make_icl_sequences(gpt2_style, "country", 4, 100, 0, min_entities=10)
    msg = str(err.value)
    name = type(gpt2_style).__name__
    assert name in msg and "only 8 of" in msg and "10 are needed" in msg and "Fix" in msg
    with pytest.raises(ValueError, match="9 are needed"):
        make_icl_sequences(gpt2_style, "country", 9, 10, 0, min_entities=2)


def test_n_entities_limits_the_pool(gpt2_style):
    seqs = make_icl_sequences(gpt2_style, "country", 2, 12, 0, min_entities=2, n_entities=4,
                              entities=GPT2_STYLE_WORDS)  # fmt: skip
    used = {e for s in seqs for e in decode_entities(gpt2_style, s)}
    assert used == set(GPT2_STYLE_WORDS[:4])  # 4P2 = 12: all permutations, so all four appear
    assert len({tuple(s) for s in seqs}) == 12


# --------------------------------------------------------------------------------------------
# Sampling


def test_sample_selections_paths():
    # n == total: every permutation exactly once
    sel = sample_selections(5, 2, 20, 0)
    assert len(set(sel)) == 20
    # n > total: balanced repeats
    sel = sample_selections(4, 2, 30, 0)
    counts = {s: sel.count(s) for s in set(sel)}
    assert len(counts) == 12 and set(counts.values()) <= {2, 3}
    # dense (total <= 4n) and sparse (rejection) paths: distinct, k distinct entries each
    for m, k, n in [(6, 3, 100), (30, 4, 500)]:
        sel = sample_selections(m, k, n, 3)
        assert len(sel) == n and len(set(sel)) == n
        assert all(len(set(s)) == k and all(0 <= i < m for i in s) for s in sel)
        assert sel == sample_selections(m, k, n, 3)
    assert math.perm(6, 3) == 120
    with pytest.raises(ValueError, match="k must be"):
        sample_selections(3, 4, 10, 0)


@pytest.mark.parametrize(("m", "k", "n"), [(10, 2, 4000), (20, 2, 100), (40, 3, 4000)])
def test_sample_selections_are_roughly_uniform(m, k, n):
    # all-permutations, dense and rejection paths: every entity equally often in every slot
    sel = sample_selections(m, k, n, 0)
    for slot in range(k):
        counts = [0] * m
        for s in sel:
            counts[s[slot]] += 1
        expected = n / m
        assert max(abs(c - expected) for c in counts) < 5 * math.sqrt(expected) + 1


# --------------------------------------------------------------------------------------------
# The real tokenizer


@pytest.mark.slow
def test_smollm2_country_lists(smollm2):
    _, tok = smollm2
    fmt = list_format(tok, COUNTRIES)
    assert fmt.leading_space is False  # byte-level BPE: the bare first item is the limit
    assert len(fmt.entities) >= 10 and "France" in fmt.entities and "Greece" not in fmt.entities
    spaced = list_format(tok, COUNTRIES, leading_space=True)
    assert spaced.first_ids != spaced.later_ids  # "France" vs " France"
    for leading in (False, True):
        seqs = make_icl_sequences(tok, "country", 4, 256, 0, leading_space=leading)
        assert all(len(s) == 8 for s in seqs)
        text = tok.decode(seqs[0])
        assert tok(text, add_special_tokens=False).input_ids == seqs[0]
        assert (", " in text) is leading


def test_sentence_starts_and_windows():
    text = "The cat sat on the mat. A dog ran to the door! Why not? Then it rained."
    starts = sentence_starts(text)
    assert [text[s : s + 4] for s in starts] == ["The ", "A do", "Why ", "Then"]

    class Words:  # a whitespace tokenizer
        vocab: dict[str, int] = {}

        def __call__(self, texts, add_special_tokens=False):
            return {
                "input_ids": [
                    [self.vocab.setdefault(w, len(self.vocab)) for w in t.split()] for t in texts
                ]
            }

        def decode(self, ids):
            inverse = {v: k for k, v in self.vocab.items()}
            return " ".join(inverse[i] for i in ids)

    tok = Words()
    windows = windows_from_texts(tok, [text], 4)
    # "Why not? Then" holds '?': rejected (the paper's filter); "Then it rained." is too short
    assert [w.text for w in windows] == ["The cat sat on", "A dog ran to"]
    assert windows_from_texts(tok, [text], 4, reject_chars="")[-1].text == "Why not? Then it"
    with pytest.raises(ValueError, match="fewer than the window of 4"):
        windows_from_texts(tok, ["Too short."], 4, require_first=True)
