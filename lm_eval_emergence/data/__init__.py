"""Data for emergence measurements: frozen entity lists and synthetic ICL lists (the paper's)."""

from .entities import ANIMALS, CATEGORIES, COLOURS, COUNTRIES, entity_list
from .icl import (
    ListFormat,
    list_format,
    make_icl_sequences,
    sample_selections,
    single_token_entities,
)

__all__ = [
    "ANIMALS",
    "CATEGORIES",
    "COLOURS",
    "COUNTRIES",
    "ListFormat",
    "entity_list",
    "list_format",
    "make_icl_sequences",
    "sample_selections",
    "single_token_entities",
]
