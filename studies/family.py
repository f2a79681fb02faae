"""A family of small causal LMs trained here from scratch: a series whose answer is known.

The ICL ability of the lists task (name an entity of the list's category that the list does not
hold yet) is absent at initialisation and grows over training and with width, offline and in
minutes on a CPU. docs/validity.md asks whether an IE protocol follows it. The models see the
lists in a compact vocabulary (the tokens the lists use), so a width of 64 trains at about 60
steps a second on 2 cores; `studies/validity/probe.py --series family` builds and measures
the family, and the tests train a tiny one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from lm_eval_emergence.controls import random_weights_from_config

__all__ = [
    "ListData",
    "build_family_model",
    "icl_accuracy",
    "list_data_from_icl",
    "synthetic_list_data",
    "train_checkpoints",
]


@dataclass(frozen=True)
class ListData:
    """Lists in a compact vocabulary: ids [N, T] and, per list, the ids that are a correct next
    token (an unlisted entity of its category)."""

    ids: torch.Tensor
    correct_next: list[frozenset[int]]
    vocab_size: int

    def __post_init__(self) -> None:
        if self.ids.ndim != 2 or len(self.correct_next) != self.ids.shape[0]:
            raise ValueError(
                f"ids must be [N, T] with one set of correct next ids per list; got ids of "
                f"shape {tuple(self.ids.shape)} and {len(self.correct_next)} sets"
            )


def synthetic_list_data(
    n: int, k: int, n_categories: int, per_category: int, seed: int
) -> ListData:
    """Lists of k distinct entities of one category, each followed by the separator (id 0);
    category c owns ids 1 + c * per_category ... (for the tests: no tokenizer needed)."""
    if per_category <= k:
        raise ValueError(f"per_category ({per_category}) must exceed k ({k}): no entity left")
    gen = torch.Generator().manual_seed(seed)
    cats = torch.randint(0, n_categories, (n,), generator=gen)
    ids = torch.zeros(n, 2 * k, dtype=torch.long)
    correct = []
    for i, c in enumerate(cats.tolist()):
        pool = 1 + c * per_category + torch.randperm(per_category, generator=gen)
        ids[i, 0::2] = pool[:k]
        correct.append(frozenset(pool[k:].tolist()))
    return ListData(ids, correct, 1 + n_categories * per_category)


def list_data_from_icl(
    lists: Sequence[Sequence[int]], correct_next: Sequence[Sequence[int]], vocab: Sequence[int]
) -> ListData:
    """Tokenizer ids (`data.icl` lists and their `next_entity_ids`) mapped into the compact
    vocabulary `vocab` (sorted distinct tokenizer ids); correct ids outside it are dropped."""
    index = {t: i for i, t in enumerate(vocab)}
    missing = sorted({t for seq in lists for t in seq} - set(index))
    if missing:
        raise ValueError(f"token ids {missing[:10]} of the lists are not in the vocabulary")
    ids = torch.tensor([[index[t] for t in seq] for seq in lists], dtype=torch.long)
    correct = [frozenset(index[t] for t in ok if t in index) for ok in correct_next]
    return ListData(ids, correct, len(vocab))


def build_family_model(vocab_size: int, width: int, n_layers: int, seed: int) -> nn.Module:
    """A Llama-architecture causal LM of `width` and `n_layers` blocks, seeded initialisation."""
    from transformers import LlamaConfig

    heads = max(1, width // 16)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=width,
        intermediate_size=int(width * 8 / 3) // 8 * 8,
        num_hidden_layers=n_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=64,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    return random_weights_from_config(config, seed)


def train_checkpoints(
    model: nn.Module,
    data: ListData,
    checkpoints: Sequence[int],
    *,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
) -> Iterator[tuple[int, nn.Module]]:
    """Train `model` on next-token prediction over `data` (AdamW, cosine schedule to the last
    checkpoint) and yield (step, a copy in eval mode) at each step of `checkpoints` (0: the
    initialisation). Minibatches are drawn with `seed`."""
    steps = sorted(set(int(s) for s in checkpoints))
    if not steps or steps[0] < 0:
        raise ValueError(f"checkpoints must be steps >= 0, got {list(checkpoints)}")
    total = steps[-1]
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
            if total > 0
            else 1.0
        ),
    )
    step = 0
    for target in steps:
        model.train()
        while step < target:
            batch = data.ids[torch.randint(0, data.ids.shape[0], (batch_size,), generator=gen)]
            loss = model(input_ids=batch, labels=batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            step += 1
        model.eval()
        yield step, copy.deepcopy(model)


@torch.no_grad()
def icl_accuracy(model: nn.Module, data: ListData, batch_size: int = 512) -> float:
    """Fraction of lists whose greedy next token (after the last separator) is correct."""
    hits = 0
    for start in range(0, data.ids.shape[0], batch_size):
        ids = data.ids[start : start + batch_size]
        greedy = model(input_ids=ids).logits[:, -1].argmax(-1).tolist()
        oks = data.correct_next[start : start + batch_size]
        hits += sum(g in ok for g, ok in zip(greedy, oks, strict=True))
    return hits / data.ids.shape[0]
