"""The tasks' document options, parsed and checked once: one table of options and defaults.

lm-eval hands a task's `custom_dataset` (and the task class) the task's metadata: the YAML's
`metadata`, the model arguments and `--metadata`, merged. `TaskOptions.of(task kind, metadata)`
is the one reader of the options that shape the documents (`OPTIONS`), with one default per
option and task kind (`DEFAULTS`); the `ie_*` keys are the settings' own (`settings.py`). A key
that is neither is a model argument or a typo: with the `hf-emergence` model the task knows its
arguments, so any other key is an error naming the valid options; with another model (the cloze
task runs with any) only a key close to an option's name is, since model arguments cannot be
listed.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..data.icl import DEFAULT_MIN_ENTITIES
from ..data.windows import PAPER_REJECT_CHARS
from ..metrics.table import MAX_SHOTS
from ..settings import EmergenceConfigError, parse_int

__all__ = ["KINDS", "OPTIONS", "TaskOptions"]

#: The task kinds and the options each reads (the rest of the table is ignored by it).
KINDS: dict[str, tuple[str, ...]] = {
    "icl": ("n_docs", "data_seed", "category", "k", "min_entities"),
    "shots": ("n_docs", "data_seed", "category", "max_shots", "min_entities"),
    "natural": ("n_docs", "data_seed", "window", "reject_chars"),
    "text": ("n_docs", "data_seed", "window", "reject_chars", "text_path", "text_field"),
    "cloze": ("cloze_items", "n_docs", "n_choices", "data_seed"),
}
#: Keys of a task's metadata that are not options: lm-eval's own (the YAML's version, where the
#: config came from) and the plugin's record.
NOT_OPTIONS = {"version", "config_source", "config", "_metadata", "emergence_protocol",
               "emergence_evidence"}  # fmt: skip


def _int(low: int, high: int | None = None) -> Callable[[str, Any], int]:
    def parse(name: str, value: Any) -> int:
        number = int(parse_int(name, value, low, allow_none=False))  # type: ignore[arg-type]
        if high is not None and number > high:
            raise EmergenceConfigError(f"{name} must be at most {high}, got {number}")
        return number

    return parse


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise EmergenceConfigError(f"{name} must be a string, got {value!r}")
    return value


def _optional_int(name: str, value: Any) -> int | None:
    return None if value is None else _int(1)(name, value)


#: Every option: its parser (name, value) -> value, and what it sets.
OPTIONS: dict[str, tuple[Callable[[str, Any], Any], str]] = {
    "n_docs": (_optional_int, "documents per task (none: a text task's every window)"),
    "data_seed": (_int(0), "seed of the document sampling"),
    "category": (_text, "ICL category: country, animal or color"),
    "k": (_int(1), "ICL list length"),
    "min_entities": (_int(1), "single-token entities a category must keep"),
    "max_shots": (_int(2, MAX_SHOTS), f"shots of the shots task (2..{MAX_SHOTS})"),
    "window": (_int(2), "tokens per window"),
    "reject_chars": (_text, "windows holding any of these characters are dropped"),
    "text_path": (_text, "JSONL file of the user's texts (emergence_text)"),
    "text_field": (_text, "the JSONL field holding a text"),
    "cloze_items": (_optional_int, "the cloze task's own item count (default n_docs, else 500)"),
    "n_choices": (_int(2), "choices per cloze item"),
}
#: Each option's default, by task kind where it differs.
DEFAULTS: dict[str, Any] = {
    "n_docs": {"icl": 2000, "shots": 2000, "natural": 4000, "text": None, "cloze": None},
    "data_seed": 1234,
    "category": "country",
    "k": 4,
    "min_entities": DEFAULT_MIN_ENTITIES,
    "max_shots": MAX_SHOTS,
    "window": 8,
    "reject_chars": PAPER_REJECT_CHARS,
    "text_path": None,
    "text_field": "text",
    "cloze_items": None,
    "n_choices": 4,
}
#: The cloze task's items where neither cloze_items nor n_docs is given.
DEFAULT_CLOZE_ITEMS = 500


def _default(name: str, kind: str) -> Any:
    value = DEFAULTS[name]
    return value[kind] if isinstance(value, dict) else value


@dataclass(frozen=True)
class TaskOptions:
    """The document options of one task, parsed and checked (`TaskOptions.of`)."""

    kind: str
    n_docs: int | None
    data_seed: int
    category: str
    k: int
    min_entities: int
    max_shots: int
    window: int
    reject_chars: str
    text_path: str | None
    text_field: str
    cloze_items: int | None
    n_choices: int

    @classmethod
    def of(
        cls, kind: str, metadata: Mapping[str, Any], model_arguments: set[str] | None = None
    ) -> TaskOptions:
        """The options of a task of `kind` from its metadata; a misspelt key is an error
        naming the valid ones. `model_arguments`: the keys the model was built with (lm-eval
        merges them into the metadata); None where they are not known."""
        if kind not in KINDS:
            raise ValueError(f"unknown task kind {kind!r}; the kinds are {', '.join(KINDS)}")
        _check_keys(metadata, model_arguments)
        values = {}
        for name in (f.name for f in fields(cls) if f.name != "kind"):
            raw = metadata.get(name)
            if raw is None or name not in KINDS[kind]:
                values[name] = _default(name, kind)
            else:
                values[name] = OPTIONS[name][0](name, raw)
        return cls(kind=kind, **values)

    @property
    def cloze_count(self) -> int:
        """The cloze task's items: cloze_items, else n_docs, else DEFAULT_CLOZE_ITEMS."""
        for count in (self.cloze_items, self.n_docs):
            if count is not None:
                return count
        return DEFAULT_CLOZE_ITEMS


def _check_keys(metadata: Mapping[str, Any], model_arguments: set[str] | None) -> None:
    known = set(OPTIONS) | NOT_OPTIONS | (model_arguments or set())
    unknown = sorted(
        k for k in metadata if isinstance(k, str) and not k.startswith("ie_") and k not in known
    )
    if model_arguments is None:  # a model argument cannot be told from a typo: only near misses
        unknown = [k for k in unknown if difflib.get_close_matches(k, list(OPTIONS), n=1)]
    if unknown:
        hints = []
        for key in unknown:
            near = difflib.get_close_matches(key, list(OPTIONS), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
        raise EmergenceConfigError(
            f"unknown task option {', '.join(hints)}; the options are: {', '.join(OPTIONS)} "
            "(and the ie_* settings)"
        )
