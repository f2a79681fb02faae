"""The emergence tasks' documents, built offline for the tokenizer of the running model.

Each function is a task's `custom_dataset`: lm-eval calls it with the task's metadata (YAML
`metadata`, the model arguments, `--metadata`) and takes a `{"test": Dataset}` back. Its options
are parsed once, by `options.TaskOptions` (the one table of options and defaults; a misspelt
option is an error). Documents depend on the tokenizer (entities must be single tokens, windows
are token windows), so they are built with the tokenizer of the live `hf-emergence` model, which
lm-eval creates before it loads the tasks; the cloze task needs none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets

from ..data.cloze import cloze_items
from ..data.icl import build_icl_lists, next_entity_ids
from ..data.windows import corpus_sentences, sample_windows, windows_from_texts
from ..settings import EmergenceConfigError
from .model import live_model, tokenizer_fingerprint
from .options import TaskOptions

__all__ = [
    "cloze_documents",
    "icl_documents",
    "natural_documents",
    "options_of",
    "shots_documents",
    "text_documents",
]

MODEL_REQUIRED = (
    "the emergence tasks are served by the 'hf-emergence' model, which captures hidden states; "
    "run them with --model hf-emergence (lm-eval-emergence uses it by default), e.g. "
    "lm-eval-emergence --model hf-emergence --model_args pretrained=<model> --tasks emergence_icl"
)


def options_of(kind: str, metadata: dict[str, Any]) -> TaskOptions:
    """The parsed options of a task of `kind`, checked against the live model's arguments."""
    model = live_model()
    return TaskOptions.of(kind, metadata, None if model is None else set(model.argument_names))


def _tokenizer() -> Any:
    model = live_model()
    if model is None:
        raise EmergenceConfigError(MODEL_REQUIRED)
    return model.tokenizer


def _dataset(rows: list[dict[str, Any]]) -> dict[str, datasets.Dataset]:
    return {"test": datasets.Dataset.from_list(rows)}


def _icl_rows(tokenizer: Any, options: TaskOptions, k: int) -> list[dict]:
    category = options.category
    try:
        built = build_icl_lists(
            tokenizer, category, k, options.n_docs, options.data_seed, options.min_entities
        )
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


def icl_documents(**metadata: Any) -> dict[str, datasets.Dataset]:
    """Seeded lists "e1,e2,...,ek," of single-token entities of one category."""
    options = options_of("icl", metadata)
    return _dataset(_icl_rows(_tokenizer(), options, options.k))


def shots_documents(**metadata: Any) -> dict[str, datasets.Dataset]:
    """Lists of `max_shots` (<= 10) entities; E is read at the end of every shot."""
    options = options_of("shots", metadata)
    return _dataset(_icl_rows(_tokenizer(), options, options.max_shots))


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


def natural_documents(**metadata: Any) -> dict[str, datasets.Dataset]:
    """Windows of the shipped public-domain corpus, anchored at sentence starts."""
    options = options_of("natural", metadata)
    tokenizer = _tokenizer()
    windows = windows_from_texts(
        tokenizer,
        corpus_sentences(),
        options.window,
        reject_chars=options.reject_chars,
        every_sentence=False,
    )
    sampled = sample_windows(windows, options.n_docs, options.data_seed)
    return _dataset(_window_rows(sampled, tokenizer))


def _read_jsonl(path: Path, field: str) -> list[str]:
    try:
        return _jsonl_texts(path, field)
    except UnicodeDecodeError as exc:
        raise EmergenceConfigError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); emergence_text reads "
            "UTF-8 JSONL: convert the file first, e.g. iconv -f latin1 -t utf-8"
        ) from None


def _jsonl_texts(path: Path, field: str) -> list[str]:
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


def text_documents(**metadata: Any) -> dict[str, datasets.Dataset]:
    """Windows of the user's own texts (JSONL at `text_path`), anchored at sentence starts."""
    options = options_of("text", metadata)
    raw = options.text_path
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
    texts = _read_jsonl(path, options.text_field)
    tokenizer = _tokenizer()
    try:
        windows = windows_from_texts(
            tokenizer,
            texts,
            options.window,
            reject_chars=options.reject_chars,
            every_sentence=True,
            require_first=True,
        )
    except ValueError as exc:
        raise EmergenceConfigError(f"{path}: {exc}") from None
    sampled = sample_windows(windows, options.n_docs, options.data_seed)
    return _dataset(_window_rows(sampled, tokenizer))


def cloze_documents(**metadata: Any) -> dict[str, datasets.Dataset]:
    """The cloze task's items of the shipped corpus (any lm-eval model runs it)."""
    options = options_of("cloze", metadata)
    try:
        rows = cloze_items(corpus_sentences(), options.cloze_count, options.n_choices,
                           options.data_seed)  # fmt: skip
    except ValueError as exc:
        raise EmergenceConfigError(
            f"emergence_cloze: {exc}; lower cloze_items or n_choices in --metadata, e.g. "
            '--metadata \'{"cloze_items": 500, "n_choices": 4}\''
        ) from None
    return _dataset(rows)
