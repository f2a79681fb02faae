"""A template's prose holds no number of its own: every literal is a declared constant.

A template declares its constants (gate thresholds, settings, names such as an arXiv id) in a
comment on its first line, `{#- constants: 0.8 2,000 2405.12617 -#}`. Every other number must
come from an expression (`{{ ... }}`). Not prose, so not read: Jinja tags and comments, inline
code spans, fenced blocks of commands or code (bash, sh, python, yaml, toml), link targets, an
ordered list's markers, and digits that are part of a word (SmolLM2, 135M, Qwen2.5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONSTANTS = re.compile(r"\A\{#-?\s*constants:(?P<body>.*?)-?#\}", re.S)
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_CODE_FENCE = re.compile(r"^```(bash|sh|python|yaml|toml)\b.*?^```", re.S | re.M)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\]\([^)\s]*\)|https?://\S+")
_LIST_MARKER = re.compile(r"^(\s*)\d+\.(?=\s)", re.M)
NUMBER = re.compile(r"(?<![\w.])[−-]?\d+(?:[.,]\d+)*(?![\w])")


@dataclass(frozen=True)
class Literal:
    """A number in a template's prose that it does not declare."""

    template: str
    line: int
    text: str

    def __str__(self) -> str:
        return (
            f"{self.template}:{self.line}: literal number {self.text!r} in prose; print it "
            "through an expression of the results, or declare it in the template's constants"
        )


def declared_constants(source: str) -> set[str]:
    """The constants a template declares on its first line (none without the comment)."""
    match = CONSTANTS.match(source)
    return set(match.group("body").split()) if match else set()


def _blank(match: re.Match) -> str:
    """The match replaced by spaces, its line breaks kept (so line numbers hold)."""
    return re.sub(r"[^\n]", " ", match.group(0))


def prose(source: str) -> str:
    """`source` with everything that is not prose blanked out, line for line."""
    text = source
    for pattern in (_JINJA, _CODE_FENCE, _CODE_SPAN, _LINK):
        text = pattern.sub(_blank, text)
    return _LIST_MARKER.sub(lambda m: m.group(1) + " " * (len(m.group(0)) - len(m.group(1))), text)


def literals(name: str, source: str) -> list[Literal]:
    """The numbers in the prose of template `name` that it does not declare."""
    allowed = declared_constants(source)
    found = []
    for lineno, line in enumerate(prose(source).splitlines(), start=1):
        for match in NUMBER.finditer(line):
            token = match.group(0)
            if token not in allowed and token.lstrip("−-") not in allowed:
                found.append(Literal(name, lineno, token))
    return found
