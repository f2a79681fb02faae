"""The emergence tasks' documents, built offline for the tokenizer of the running model.

Each function is a task's `custom_dataset`: lm-eval calls it with the task's metadata (YAML
`metadata`, then `--metadata`, then the model arguments) and takes a `{"test": Dataset}` back.
Documents depend on the tokenizer (entities must be single tokens, windows are token windows),
so they are built with the tokenizer of the live `hf-emergence` model, which lm-eval creates
before it loads the tasks.

Options (task metadata / `--metadata`):
    n_docs      documents per task (ICL 2000, natural text 4000, own texts all windows;
                raise it towards the paper's 300,000)
    data_seed   seed of the document sampling (default 1234)
    category, k ICL category and list length; max_shots for emergence_icl_shots
    window      tokens per window (natural text and emergence_text, default 8)
    text_path   JSONL file of the user's texts (emergence_text); text_field names the field
    reject_chars  windows containing any of these characters are dropped (paper: ": \\n ? - ;")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import datasets

from ..data.icl import DEFAULT_MIN_ENTITIES, build_icl_lists, next_entity_ids
from ..data.windows import (
    PAPER_REJECT_CHARS,
    corpus_sentences,
    sample_windows,
    windows_from_texts,
)
from ..metrics.table import MAX_SHOTS
from ..settings import EmergenceConfigError, parse_int
from .model import live_model, tokenizer_fingerprint

__all__ = [
    "MAX_SHOTS",
    "max_shots",
    "icl_documents",
    "natural_documents",
    "shots_documents",
    "text_documents",
]

DEFAULT_N_DOCS = 2000
#: Windows of the shipped corpus used by default (SmolLM2 finds 17,481 in all).
DEFAULT_NATURAL_DOCS = 4000
DEFAULT_DATA_SEED = 1234
DEFAULT_WINDOW = 8

MODEL_REQUIRED = (
    "the emergence tasks are served by the 'hf-emergence' model, which captures hidden states; "
    "run them with --model hf-emergence (lm-eval-emergence uses it by default), e.g. "
    "lm-eval-emergence --model hf-emergence --model_args pretrained=<model> --tasks emergence_icl"
)


def _tokenizer() -> Any:
    model = live_model()
    if model is None:
        raise EmergenceConfigError(MODEL_REQUIRED)
    return model.tokenizer


def _int_option(options: dict[str, Any], name: str, default: int, low: int) -> int:
    return cast(int, parse_int(name, options.get(name, default), low, allow_none=False))


def _dataset(rows: list[dict[str, Any]]) -> dict[str, datasets.Dataset]:
    return {"test": datasets.Dataset.from_list(rows)}


def _icl_rows(tokenizer: Any, category: str, k: int, options: dict[str, Any]) -> list[dict]:
    n_docs = _int_option(options, "n_docs", DEFAULT_N_DOCS, 1)
    seed = _int_option(options, "data_seed", DEFAULT_DATA_SEED, 0)
    min_entities = _int_option(options, "min_entities", DEFAULT_MIN_ENTITIES, 1)
    try:
        built = build_icl_lists(tokenizer, category, k, n_docs, seed, min_entities)
    except ValueError as exc:
        raise EmergenceConfigError(str(exc)) from None
    fmt = built.format
    fingerprint = tokenizer_fingerprint(tokenizer)
    rows = []
    correct, repeat = next_entity_ids(tokenizer, built, category)
    for selection, ids, ok, again in zip(
        built.selections, built.sequences, correct, repeat, strict=True
    ):
        listed = [fmt.entities[i] for i in selection]
        rows.append(
            {
                "text": fmt.text(selection),
                "token_ids": ids,
                "entities": listed,
                "category": category,
                "convention": fmt.convention,
                "next_ok_ids": ok,
                "next_repeat_ids": again,
                "tokenizer": fingerprint,
            }
        )
    return rows


def icl_documents(**options: Any) -> dict[str, datasets.Dataset]:
    """Seeded lists "e1,e2,...,ek," of single-token entities of one category."""
    tokenizer = _tokenizer()
    category = str(options.get("category", "country"))
    k = _int_option(options, "k", 4, 1)
    return _dataset(_icl_rows(tokenizer, category, k, options))


def max_shots(options: dict[str, Any]) -> int:
    """The shots task's `max_shots` option, checked: 2..MAX_SHOTS, default MAX_SHOTS (the task's
    documents and its metric keys both read it here)."""
    shots = _int_option(options, "max_shots", MAX_SHOTS, 2)
    if shots > MAX_SHOTS:
        raise EmergenceConfigError(
            f"max_shots={shots} is above the {MAX_SHOTS} shots the task reports; use at most "
            f"{MAX_SHOTS}"
        )
    return shots


def shots_documents(**options: Any) -> dict[str, datasets.Dataset]:
    """Lists of `max_shots` (<= 10) entities; E is read at the end of every shot."""
    tokenizer = _tokenizer()
    category = str(options.get("category", "country"))
    return _dataset(_icl_rows(tokenizer, category, max_shots(options), options))


def _window_rows(windows: list, tokenizer: Any) -> list[dict]:
    fingerprint = tokenizer_fingerprint(tokenizer)
    return [
        {
            "text": w.text,
            "token_ids": list(w.token_ids),
            "source": w.source,
            "offset": w.offset,
            "tokenizer": fingerprint,
        }
        for w in windows
    ]


def _window_size(options: dict[str, Any]) -> int:
    return _int_option(options, "window", DEFAULT_WINDOW, 2)


def natural_documents(**options: Any) -> dict[str, datasets.Dataset]:
    """Windows of the shipped public-domain corpus, anchored at sentence starts."""
    tokenizer = _tokenizer()
    window = _window_size(options)
    reject = str(options.get("reject_chars", PAPER_REJECT_CHARS))
    windows = windows_from_texts(
        tokenizer, corpus_sentences(), window, reject_chars=reject, every_sentence=False
    )
    n = _int_option(options, "n_docs", DEFAULT_NATURAL_DOCS, 1)
    seed = _int_option(options, "data_seed", DEFAULT_DATA_SEED, 0)
    return _dataset(_window_rows(sample_windows(windows, n, seed), tokenizer))


def _read_jsonl(path: Path, field: str) -> list[str]:
    texts = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EmergenceConfigError(
                    f"{path}:{number} is not valid JSON ({exc.msg}); emergence_text reads one JSON "
                    f'object per line, e.g. {{"{field}": "Some text."}}'
                ) from None
            if not isinstance(record, dict) or not isinstance(record.get(field), str):
                raise EmergenceConfigError(
                    f"{path}:{number} has no string field {field!r}; each line must be a JSON "
                    f"object with the text under {field!r} (or set text_field in --metadata)"
                )
            texts.append(record[field])
    if not texts:
        raise EmergenceConfigError(f"{path} holds no texts; emergence_text needs a JSONL of texts")
    return texts


def text_documents(**options: Any) -> dict[str, datasets.Dataset]:
    """Windows of the user's own texts (JSONL at `text_path`), anchored at sentence starts."""
    raw = options.get("text_path")
    if not raw:
        raise EmergenceConfigError(
            "emergence_text needs a JSONL file of texts: pass --metadata "
            '\'{"text_path": "/path/texts.jsonl"}\' (one {"text": "..."} object per line)'
        )
    path = Path(str(raw)).expanduser()
    if not path.is_file():
        raise EmergenceConfigError(
            f"text_path {str(path)!r} does not exist or is not a file; pass the path of a JSONL "
            'file with one {"text": "..."} object per line'
        )
    field = str(options.get("text_field", "text"))
    texts = _read_jsonl(path, field)
    tokenizer = _tokenizer()
    window = _window_size(options)
    reject = str(options.get("reject_chars", PAPER_REJECT_CHARS))
    try:
        windows = windows_from_texts(
            tokenizer, texts, window, reject_chars=reject, every_sentence=True, require_first=True
        )
    except ValueError as exc:
        raise EmergenceConfigError(f"{path}: {exc}") from None
    n_docs = options.get("n_docs")
    n = None if n_docs is None else _int_option(options, "n_docs", DEFAULT_N_DOCS, 1)
    seed = _int_option(options, "data_seed", DEFAULT_DATA_SEED, 0)
    return _dataset(_window_rows(sample_windows(windows, n, seed), tokenizer))
