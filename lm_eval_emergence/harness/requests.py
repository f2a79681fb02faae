"""What an emergence request carries from the task to the model: typed, never re-parsed.

A task builds one `RequestContext` per run and tokenizer (its resolved capture settings, the
model settings it resolved them against, how to stream), shared by reference by every request;
each document adds a `RequestSpec` (its token ids, where its states are kept, whether its next
token is read and scored). The model checks a context once (`HFEmergenceLM._check`), so the
settings are parsed once, where the task resolves them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..capture import StreamSpec
from ..settings import CaptureSettings, IESettings

__all__ = ["RequestContext", "RequestSpec"]


@dataclass(frozen=True)
class RequestContext:
    """What every request of one task's run shares."""

    tokenizer: str  # fingerprint of the tokenizer that built the documents
    capture: CaptureSettings  # the task's resolved capture settings
    model_settings: IESettings | None  # the hf-emergence model's settings they were resolved on
    stream: StreamSpec | None  # None: keep the states; else stream them into moments


@dataclass(frozen=True)
class RequestSpec:
    """One document's request: its token ids and what the capture keeps of it."""

    token_ids: tuple[int, ...]
    positions: tuple[int, ...]  # token indices whose in-context states are kept
    next_token: bool  # also read the greedy continuation
    score_ids: tuple[int, ...] | None  # ids whose next-token log-probability mass is kept
    context: RequestContext
