"""Tests of hidden-state capture: hooks vs output_hidden_states, micro lookup, block discovery."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch
import transformers as tf
from torch import nn
from transformers import AutoModelForCausalLM

from lm_eval_emergence.capture import (
    BlocksNotFoundError,
    Capture,
    CapturePlan,
    RandomProjection,
    StreamSpec,
    TokenTable,
    capture_moments,
    capture_states,
    capture_token_table,
    find_blocks,
    merge_tables,
    model_bos_token_id,
    plan_capture,
)
from lm_eval_emergence.settings import CaptureSettings


def plan_for(
    model: nn.Module,
    *,
    layers=None,
    batch_size: int = 64,
    projection_dim: int | None = None,
    bos: int | None = None,
    seed: int = 0,
) -> CapturePlan:
    """A capture plan of `model` (full width and no BOS unless asked for)."""
    settings = CaptureSettings(
        layers=layers, projection_dim=projection_dim, bos=bos, batch_size=batch_size, seed=seed
    )
    return plan_capture(model, None, settings)


def captured(
    model: nn.Module, ids, *, positions="last", table: TokenTable | None = None, **settings
) -> Capture:
    """`capture_states` under `plan_for(model, **settings)`: macro states [L, N, P, k] in
    `.macro_inputs`/`.macro_outputs`, micro states [L, N, T, k] from `.micro_states()`."""
    return capture_states(model, ids, plan_for(model, **settings), positions=positions, table=table)


def assert_states_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal up to ~1e-5 relative to the tensor's scale (float32 round-off)."""
    expected = expected.detach().float().cpu()
    scale = max(1.0, float(expected.abs().max()))
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * scale)


def reference_hidden_states(model: nn.Module, ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return model(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states


def count_calls(module: nn.Module) -> tuple[list[int], object]:
    """Count forward calls of `module`; returns (counter, hook handle)."""
    counter = [0]

    def pre_hook(mod, args):
        counter[0] += 1

    return counter, module.register_forward_pre_hook(pre_hook)


def n_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def check_against_hidden_states(model: nn.Module, ids: torch.Tensor) -> None:
    """inputs[i] == hidden_states[i] for every block; outputs[i] == hidden_states[i+1] but last."""
    n_blocks = len(find_blocks(model))
    hs = reference_hidden_states(model, ids)
    assert len(hs) == n_blocks + 1
    last = captured(model, ids, positions="last")
    full = captured(model, ids, positions="all")
    T = ids.shape[1]
    assert last.positions == [T - 1] and full.positions == list(range(T))
    assert last.layers == full.layers == list(range(n_blocks))
    assert full.macro_inputs.shape == (n_blocks, ids.shape[0], T, hs[0].shape[-1])
    assert full.macro_inputs.dtype == torch.float32 and full.macro_inputs.device.type == "cpu"
    for i in range(n_blocks):
        assert_states_close(full.macro_inputs[i], hs[i])
        assert_states_close(last.macro_inputs[i], hs[i][:, -1:])
    for i in range(n_blocks - 1):
        assert_states_close(full.macro_outputs[i], hs[i + 1])
        assert_states_close(last.macro_outputs[i], hs[i + 1][:, -1:])


# --------------------------------------------------------------------------------------------
# Hooks capture the block input / raw output


def test_hooks_match_hidden_states_gpt2(tiny_gpt2):
    ids = torch.randint(0, 128, (4, 7), generator=torch.Generator().manual_seed(1))
    check_against_hidden_states(tiny_gpt2, ids)


def test_last_block_output_is_not_final_hidden_state(tiny_gpt2):
    """hidden_states[-1] is ln_f(last block output): the reason the hooks exist."""
    ids = torch.randint(0, 128, (3, 5), generator=torch.Generator().manual_seed(2))
    hs = reference_hidden_states(tiny_gpt2, ids)
    st = captured(tiny_gpt2, ids, positions="all")
    assert not torch.allclose(st.macro_outputs[-1], hs[-1], atol=1e-3)
    with torch.no_grad():
        assert_states_close(tiny_gpt2.transformer.ln_f(st.macro_outputs[-1]), hs[-1])


def test_positions_and_batching(tiny_gpt2):
    """Positions are token indices, negative ones from the end, kept sorted and distinct."""
    ids = torch.randint(0, 128, (5, 6), generator=torch.Generator().manual_seed(3))
    full = captured(tiny_gpt2, ids, positions="all")
    some = captured(tiny_gpt2, ids.tolist(), positions=[5, 0, -1, 2], batch_size=2)
    assert some.positions == [0, 2, 5]  # -1 is 5: sorted, the duplicate dropped
    assert some.macro_inputs.shape == (3, 5, 3, 32)
    assert_states_close(some.macro_inputs, full.macro_inputs[:, :, [0, 2, 5]])
    assert_states_close(some.macro_outputs, full.macro_outputs[:, :, [0, 2, 5]])


def test_layer_subset_stops_early(tiny_gpt2):
    """Layers [0, 1] equal the full capture's; block 2 and the LM head never run."""
    ids = torch.randint(0, 128, (4, 5), generator=torch.Generator().manual_seed(4))
    full = captured(tiny_gpt2, ids, positions="all")
    sub_plan = plan_for(tiny_gpt2, layers=[1, 0], batch_size=2)
    also_plan = plan_for(tiny_gpt2, layers=[-1])
    # the micro tables first, so that only the macro passes are counted below
    sub_table = capture_token_table(tiny_gpt2, ids, sub_plan)
    also_table = capture_token_table(tiny_gpt2, ids, also_plan)
    blocks = find_blocks(tiny_gpt2)
    calls_b2, h1 = count_calls(blocks[2])
    calls_head, h2 = count_calls(tiny_gpt2.lm_head)
    calls_b0, h3 = count_calls(blocks[0])
    try:
        sub = capture_states(tiny_gpt2, ids, sub_plan, positions="all", table=sub_table)
        also = capture_states(tiny_gpt2, ids, also_plan, positions="all", table=also_table)
    finally:
        for h in (h1, h2, h3):
            h.remove()
    assert sub.layers == [0, 1]
    assert_states_close(sub.macro_inputs, full.macro_inputs[:2])
    assert_states_close(sub.macro_outputs, full.macro_outputs[:2])
    assert also.layers == [2]
    assert_states_close(also.macro_outputs, full.macro_outputs[2:])
    assert calls_b0[0] == 3  # 2 batches of the subset + 1 of the last-layer capture
    assert calls_b2[0] == 1  # only for layers=[-1]
    assert calls_head[0] == 0  # the LM head never runs


def test_hooks_removed_and_model_state_restored(tiny_gpt2):
    ids = torch.randint(0, 128, (2, 4), generator=torch.Generator().manual_seed(5))
    reference_hidden_states(tiny_gpt2, ids)  # let transformers install its own permanent hooks
    before = n_hooks(tiny_gpt2)
    st = captured(tiny_gpt2, ids, layers=[0])
    assert n_hooks(tiny_gpt2) == before
    # The early stop leaves no state behind: a normal forward still reports all hidden states.
    hs = reference_hidden_states(tiny_gpt2, ids)
    assert len(hs) == 4
    assert_states_close(st.macro_inputs[0], hs[0][:, -1:])

    # A failure inside the forward also removes the hooks.
    block = find_blocks(tiny_gpt2)[1]

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    block.forward = boom
    try:
        with pytest.raises(RuntimeError, match="boom"):
            captured(tiny_gpt2, ids)
    finally:
        del block.forward
    assert n_hooks(tiny_gpt2) == before

    # Train mode: captured in eval mode (no dropout), then restored.
    tiny_gpt2.train()
    try:
        st_train = captured(tiny_gpt2, ids, layers=[0])
        assert tiny_gpt2.training
    finally:
        tiny_gpt2.eval()
    assert_states_close(st_train.macro_outputs, st.macro_outputs)
    assert_states_close(st_train.micro_states()[1], st.micro_states()[1])


# --------------------------------------------------------------------------------------------
# Micro capture


def single_token_states(model, tok: int, bos: int | None) -> Capture:
    """The in-context capture of the one-token sequence [tok] (or [bos, tok]), at its end."""
    ids = torch.tensor([[tok]] if bos is None else [[bos, tok]])
    return captured(model, ids, positions="last")


@pytest.mark.parametrize("bos", [None, 0])
def test_micro_equals_single_token_forward(tiny_gpt2, bos):
    ids = torch.tensor([[5, 9, 5], [17, 9, 42]])
    cap = captured(tiny_gpt2, ids, bos=bos, positions="all")
    assert cap.info.bos_token_id == bos
    assert cap.positions == [0, 1, 2]
    assert cap.micro.token_ids.tolist() == [5, 9, 17, 42]  # each distinct token once
    micro_in, micro_out = cap.micro_states()
    assert micro_in.shape == micro_out.shape == (3, 2, 3, 32)
    for tok, (i, t) in [(5, (0, 0)), (42, (1, 2))]:
        hs = reference_hidden_states(
            tiny_gpt2, torch.tensor([[tok]] if bos is None else [[bos, tok]])
        )
        pos = 0 if bos is None else 1  # the token's own position
        for layer in range(3):
            assert_states_close(micro_in[layer, i, t], hs[layer][0, pos])
        for layer in range(2):
            assert_states_close(micro_out[layer, i, t], hs[layer + 1][0, pos])
        ref = single_token_states(tiny_gpt2, tok, bos)  # covers the last block's raw output
        assert_states_close(micro_out[:, i, t], ref.macro_outputs[:, 0, 0])
    other = captured(tiny_gpt2, ids, bos=None if bos is not None else 0)
    # BOS changes the state (position 1)
    assert not torch.allclose(other.micro_states()[0], micro_in)


def test_micro_lookup_one_batch(tiny_gpt2):
    gen = torch.Generator().manual_seed(6)
    ids = torch.randint(0, 20, (12, 8), generator=gen)  # many repeats: <= 20 distinct tokens
    n_distinct = int(torch.unique(ids).numel())
    plan = plan_for(tiny_gpt2)
    small = plan_for(tiny_gpt2, batch_size=4)
    assert small.micro_batch_size == 64  # micro batches are never below 64 rows
    small = dataclasses.replace(small, micro_batch_size=4)
    block0 = find_blocks(tiny_gpt2)[0]
    calls, handle = count_calls(block0)
    try:
        table = capture_token_table(tiny_gpt2, ids, plan)
        assert calls[0] == 1  # one forward pass over the distinct tokens, not 12 * 8
        table_small = capture_token_table(tiny_gpt2, ids, small)
        assert calls[0] == 1 + math.ceil(n_distinct / 4)
    finally:
        handle.remove()
    assert table.token_ids.tolist() == torch.unique(ids).tolist()
    micro_in, micro_out = table.lookup(ids)
    assert micro_in.shape == (3, 12, 8, 32)
    small_in, small_out = table_small.lookup(ids)
    assert_states_close(small_in, micro_in)
    assert_states_close(small_out, micro_out)
    # capture_states looks its micro states up in the same table
    cap_in, cap_out = captured(tiny_gpt2, ids).micro_states()
    assert torch.equal(cap_in, micro_in) and torch.equal(cap_out, micro_out)
    refs = {}
    for tok in torch.unique(ids).tolist():
        refs[tok] = single_token_states(tiny_gpt2, tok, None)
    for i in range(ids.shape[0]):
        for t in range(ids.shape[1]):
            ref = refs[int(ids[i, t])]
            assert_states_close(micro_in[:, i, t], ref.macro_inputs[:, 0, 0])
            assert_states_close(micro_out[:, i, t], ref.macro_outputs[:, 0, 0])


def test_micro_first_position_matches_macro(tiny_gpt2):
    """Without BOS, the micro state of the first token is its in-context state at position 0."""
    ids = torch.randint(0, 128, (4, 5), generator=torch.Generator().manual_seed(7))
    macro = captured(tiny_gpt2, ids, positions=[0])
    micro = captured(tiny_gpt2, ids, layers=[0, 2])
    assert micro.layers == [0, 2] and micro.micro.layers == [0, 2]
    micro_in, micro_out = micro.micro_states()
    assert_states_close(micro_in[:, :, 0], macro.macro_inputs[[0, 2], :, 0])
    assert_states_close(micro_out[:, :, 0], macro.macro_outputs[[0, 2], :, 0])


# --------------------------------------------------------------------------------------------
# Projection


def test_random_projection(tiny_gpt2):
    ids = torch.randint(0, 128, (3, 5), generator=torch.Generator().manual_seed(8))
    proj = RandomProjection(32, 8, seed=123, blocks=[0, 1, 2], replicates=2)
    assert proj.seed == 123 and [m.shape for m in proj.matrices] == [(32, 16)] * 3
    again = RandomProjection(32, 8, 123, blocks=[0, 1, 2], replicates=2)
    assert all(torch.equal(a, b) for a, b in zip(proj.matrices, again.matrices, strict=True))
    other_seed = RandomProjection(32, 8, 124, blocks=[0, 1, 2], replicates=2)
    salted = RandomProjection(32, 8, 123, blocks=[0, 1, 2], replicates=2, salt=7)
    # every block, projection, seed and salt draws its own matrix
    halves = [m[:, h * 8 : (h + 1) * 8] for p in (proj, other_seed, salted) for m in p.matrices
              for h in range(2)]  # fmt: skip
    assert len({tuple(h.flatten().tolist()) for h in halves}) == len(halves) == 18
    # columns scaled by 1/sqrt(k): squared norms preserved on average
    assert abs(float(proj.matrices[0].pow(2).sum(0).mean()) * 8 / 32 - 1) < 0.3
    plan = plan_capture(
        tiny_gpt2, None, CaptureSettings(projection_dim=8, projections=2, seed=123, bos=None)
    )
    assert all(
        torch.equal(a, b) for a, b in zip(plan.projection.matrices, proj.matrices, strict=True)
    )
    assert (plan.info.state_dim, plan.info.hidden_dim, plan.info.projections) == (8, 32, 2)
    raw = captured(tiny_gpt2, ids, positions="all")
    projected = capture_states(tiny_gpt2, ids, plan, positions="all")
    assert projected.macro_inputs.shape == (3, 3, 5, 16) == projected.macro_outputs.shape
    micro_raw_in, micro_raw_out = raw.micro_states()
    micro_in, micro_out = projected.micro_states()
    assert micro_in.shape == (3, 3, 5, 16) == micro_out.shape
    for slot, matrix in enumerate(proj.matrices):  # block slot l's own matrices, side by side
        assert_states_close(projected.macro_inputs[slot], raw.macro_inputs[slot] @ matrix)
        assert_states_close(projected.macro_outputs[slot], raw.macro_outputs[slot] @ matrix)
        assert_states_close(micro_in[slot], micro_raw_in[slot] @ matrix)
        assert_states_close(micro_out[slot], micro_raw_out[slot] @ matrix)
    unprojected = plan_for(tiny_gpt2, projection_dim=None)
    assert unprojected.projection is None and unprojected.info.projections == 1
    with pytest.raises(ValueError, match="expects 16 channels"):
        RandomProjection(16, 8)(torch.zeros(2, 32))


# --------------------------------------------------------------------------------------------
# Input validation


def test_bad_inputs(tiny_gpt2):
    plan = plan_for(tiny_gpt2)
    ones = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="equal token length"):
        capture_states(tiny_gpt2, [[1, 2, 3], [4, 5]], plan)
    with pytest.raises(ValueError, match="equal token length"):
        capture_moments(tiny_gpt2, [[1, 2, 3], [4, 5]], plan, StreamSpec(2, 2, 0, "output"))
    with pytest.raises(ValueError, match="2-D"):
        capture_states(tiny_gpt2, torch.tensor([1, 2, 3]), plan)
    with pytest.raises(ValueError, match="2-D"):
        capture_states(tiny_gpt2, [1, 2, 3], plan)
    with pytest.raises(ValueError, match="integer"):
        capture_states(tiny_gpt2, torch.zeros(2, 3), plan)
    with pytest.raises(
        ValueError,
        match=r"layer 3 is out of range: this model has 3 blocks, valid indices are 0\.\.2",
    ):
        plan_for(tiny_gpt2, layers=[3])
    with pytest.raises(
        ValueError, match=r"layer -4 is out of range: .* valid indices are 0\.\.2 \(or -3\.\.-1\)"
    ):
        plan_for(tiny_gpt2, layers=[-4])
    with pytest.raises(
        ValueError,
        match=r"position 3 is out of range: the sequences have 3 tokens, valid indices are "
        r"0\.\.2 \(or -3\.\.-1\)",
    ):
        capture_states(tiny_gpt2, ones, plan, positions=[3])
    with pytest.raises(ValueError, match="position -4 is out of range"):
        capture_states(tiny_gpt2, ones, plan, positions=[0, -4])
    with pytest.raises(ValueError, match="positions must be"):
        capture_states(tiny_gpt2, ones, plan, positions="first")
    with pytest.raises(ValueError, match="vocabulary"):
        capture_states(tiny_gpt2, torch.full((2, 3), 128), plan)


# --------------------------------------------------------------------------------------------
# Finding the blocks

_COMMON = dict(
    vocab_size=128,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    max_position_embeddings=64,
)
_ARCHS = {
    "gpt2": (
        lambda: tf.GPT2Config(vocab_size=128, n_positions=64, n_embd=32, n_layer=2, n_head=2),
        "transformer.h",
    ),
    "gpt_neox": (
        lambda: tf.GPTNeoXConfig(
            vocab_size=128,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=64,
        ),
        "gpt_neox.layers",
    ),
    "llama": (lambda: tf.LlamaConfig(**_COMMON), "model.layers"),
    "gemma": (lambda: tf.GemmaConfig(**_COMMON, head_dim=16), "model.layers"),
    "gemma2": (lambda: tf.Gemma2Config(**_COMMON, head_dim=16), "model.layers"),
    "gemma3_text": (lambda: tf.Gemma3TextConfig(**_COMMON, head_dim=16), "model.layers"),
    "qwen2": (lambda: tf.Qwen2Config(**_COMMON), "model.layers"),
    "qwen3": (lambda: tf.Qwen3Config(**_COMMON, head_dim=16), "model.layers"),
    "mistral": (lambda: tf.MistralConfig(**_COMMON), "model.layers"),
    "phi": (
        lambda: tf.PhiConfig(
            vocab_size=128,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=64,
        ),
        "model.layers",
    ),
    "opt": (
        lambda: tf.OPTConfig(
            vocab_size=128,
            hidden_size=32,
            ffn_dim=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=64,
            word_embed_proj_dim=32,
        ),
        "model.decoder.layers",
    ),
}


@pytest.mark.parametrize("arch", list(_ARCHS))
def test_find_blocks_architectures(arch):
    make_config, path = _ARCHS[arch]
    config = make_config()
    config.bos_token_id = config.eos_token_id = config.pad_token_id = 0
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    if arch == "gemma3_text":
        assert type(model).__name__ == "Gemma3ForCausalLM"
    blocks = find_blocks(model)
    assert blocks is model.get_submodule(path)
    assert len(blocks) == 2
    ids = torch.randint(1, 128, (2, 4), generator=torch.Generator().manual_seed(9))
    check_against_hidden_states(model, ids)


def test_find_blocks_multimodal_gemma3():
    """Gemma3ForConditionalGeneration: text config layer count; language model, not vision."""
    text = tf.Gemma3TextConfig(**{**_COMMON, "vocab_size": 300}, head_dim=16)
    vision = tf.SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=28,
        patch_size=14,
    )
    config = tf.Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=4,
        image_token_index=299,
        boi_token_index=297,
        eoi_token_index=298,
    )
    model = tf.Gemma3ForConditionalGeneration(config).eval()
    assert find_blocks(model) is model.model.language_model.layers
    ids = torch.randint(1, 200, (2, 4), generator=torch.Generator().manual_seed(10))
    check_against_hidden_states(model, ids)


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return x + self.lin(x)


def test_find_blocks_prefers_homogeneous_named_list():
    class Toy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = SimpleNamespace(num_hidden_layers=2)
            self.extras = nn.ModuleList([nn.Linear(4, 4), nn.ReLU()])
            self.layers = nn.ModuleList([_Block(), _Block()])
            self.inner = nn.Module()
            self.inner.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])

    toy = Toy()
    assert find_blocks(toy) is toy.layers


def test_find_blocks_error_lists_candidates():
    model = nn.Sequential(nn.Linear(4, 4), nn.ModuleList([_Block(), _Block(), _Block()]))
    model.config = SimpleNamespace(num_hidden_layers=2)
    with pytest.raises(ValueError, match="Could not find the decoder blocks of Sequential") as info:
        find_blocks(model)
    message = str(info.value)
    assert "1 (len 3)" in message  # the ModuleList looked at, with its length
    assert "2 (config.num_hidden_layers)" in message
    assert "num_hidden_layers" in message and "Check" in message
    assert info.type is BlocksNotFoundError  # a ValueError subclass, as caught above

    bare = nn.Sequential(nn.ModuleList([_Block()]))
    with pytest.raises(BlocksNotFoundError, match="config"):
        find_blocks(bare)


# --------------------------------------------------------------------------------------------
# BOS choice


class _Tok:
    def __init__(self, bos, prepends=False, add_bos_token=None):
        self.bos_token_id = bos
        self._prepends = prepends
        if add_bos_token is not None:
            self.add_bos_token = add_bos_token

    def __call__(self, text):
        ids = [7]
        return SimpleNamespace(input_ids=[self.bos_token_id, *ids] if self._prepends else ids)


def test_model_bos_token_id():
    llama = SimpleNamespace(config=SimpleNamespace(model_type="llama"))
    gpt2 = SimpleNamespace(config=SimpleNamespace(model_type="gpt2"))
    assert model_bos_token_id(gpt2, _Tok(None)) is None
    assert model_bos_token_id(gpt2, _Tok(3, prepends=True)) == 3
    assert model_bos_token_id(gpt2, _Tok(3, add_bos_token=True)) == 3
    assert model_bos_token_id(gpt2, _Tok(3)) is None
    assert model_bos_token_id(llama, _Tok(3)) == 3  # family rule when the tokenizer is silent
    assert model_bos_token_id(llama, _Tok(3, add_bos_token=False)) is None  # tokenizer wins


# --------------------------------------------------------------------------------------------
# SmolLM2 (real model)


@pytest.mark.slow
def test_smollm2_hooks_match_hidden_states(smollm2):
    model, tokenizer = smollm2
    texts = [
        "The cat sat on the mat all day long.",
        "Paris is the capital city of France.",
        "One, two, three, four, five, six.",
    ]
    rows = [tokenizer(t).input_ids[:6] for t in texts]
    assert all(len(r) == 6 for r in rows)
    check_against_hidden_states(model, torch.tensor(rows))


@pytest.mark.slow
def test_smollm2_micro(smollm2):
    model, tokenizer = smollm2
    bos = model_bos_token_id(model, tokenizer)
    assert bos is None  # see model_bos_token_id: SmolLM2's tokenizer never prepends <|im_start|>
    ids = torch.tensor([tokenizer("red, green, blue,").input_ids[:5]] * 2)
    layers = [0, 5, 29]
    for use_bos in (None, tokenizer.bos_token_id):
        cap = captured(model, ids, bos=use_bos, layers=layers)
        assert cap.info.bos_token_id == use_bos and cap.layers == layers
        micro_in, micro_out = cap.micro_states()
        assert micro_in.shape == (3, 2, 5, 576)
        tok = int(ids[0, 1])
        hs = reference_hidden_states(
            model, torch.tensor([[tok]] if use_bos is None else [[1, tok]])
        )
        pos = 0 if use_bos is None else 1
        for j, layer in enumerate(layers):
            assert_states_close(micro_in[j, 0, 1], hs[layer][0, pos])
            assert_states_close(micro_in[j, 1, 1], hs[layer][0, pos])
        assert_states_close(micro_out[1, 0, 1], hs[6][0, pos])


# --------------------------------------------------------------------------------------------
# Default model location (no loading)


def test_token_table_lookup_and_merge():
    a = TokenTable(
        torch.tensor([5, 2]), torch.arange(4.0).reshape(1, 2, 2), -torch.ones(1, 2, 2), [0]
    )
    b = TokenTable(torch.tensor([2, 9]), torch.full((1, 2, 2), 7.0), torch.zeros(1, 2, 2), [0])
    merged = merge_tables([a, b, a])
    ids = torch.tensor([[2, 9], [5, 5]])
    inputs, outputs = merged.lookup(ids)
    assert inputs.shape == (1, 2, 2, 2)
    assert inputs[0, 0, 0].tolist() == [2.0, 3.0]  # token 2 keeps its first entry (table a)
    assert inputs[0, 0, 1].tolist() == [7.0, 7.0]
    assert inputs[0, 1, 0].tolist() == [0.0, 1.0]
    with pytest.raises(RuntimeError, match="no micro state"):
        a.lookup(torch.tensor([[9]]))


def test_capture_states_is_macro_and_micro_under_one_bos_rule(tiny_gpt2):
    ids = torch.randint(1, 100, (9, 4), generator=torch.Generator().manual_seed(2))
    plan = plan_capture(tiny_gpt2, None, CaptureSettings(projection_dim=8, seed=3, bos=7))
    assert plan.info.bos_token_id == 7 and plan.info.layers == [0, 1, 2]
    assert (plan.info.state_dim, plan.info.hidden_dim) == (8, 32)
    assert (plan.batch_size, plan.micro_batch_size) == (64, 64)
    got = capture_states(tiny_gpt2, ids, plan, positions=[0, 3])
    assert got.positions == [0, 3]  # token indices: BOS is not counted
    with_bos = torch.cat([torch.full((9, 1), 7), ids], dim=1)
    ref = captured(tiny_gpt2, with_bos, positions=[1, 4], projection_dim=8, seed=3)
    assert ref.info.bos_token_id is None
    assert torch.equal(got.macro_inputs, ref.macro_inputs)
    assert torch.equal(got.macro_outputs, ref.macro_outputs)
    micro_in, _ = got.micro_states()
    # the micro reference: each distinct token after BOS, [7, tok], read in context at position 1
    distinct = torch.unique(ids)
    pairs = torch.stack([torch.full_like(distinct, 7), distinct], dim=1)
    alone = captured(tiny_gpt2, pairs, positions=[1], projection_dim=8, seed=3)
    ref_micro = alone.macro_inputs[:, :, 0][:, torch.searchsorted(distinct, ids)]
    assert ref_micro.shape == micro_in.shape == (3, 9, 4, 4 * 8)  # 4 projections side by side
    assert_states_close(micro_in, ref_micro)
    # a shared table is reused, not recaptured; a subset keeps the rows and blocks asked for
    table = capture_token_table(tiny_gpt2, ids, plan)
    again = capture_states(tiny_gpt2, ids, plan, table=table)
    assert again.micro is table and again.positions == [3]
    with pytest.raises(ValueError, match=r"blocks \[5\] were not captured"):
        got.subset(layers=[2, 5])
    part = got.subset(n=5, layers=[2])
    assert part.layers == [2] and part.token_ids.shape == (5, 4)
    assert torch.equal(part.macro_inputs[0], got.macro_inputs[2, :5])
    assert torch.equal(part.micro_states()[0][0], micro_in[2, :5])


def test_plan_capture_rejects_a_block_out_of_range(tiny_gpt2):
    with pytest.raises(ValueError, match="layer 3 is out of range: this model has 3 blocks"):
        plan_capture(tiny_gpt2, None, CaptureSettings(layers=(3,)))
    # no projection wider than the model, and the full width when asked for none
    assert plan_capture(tiny_gpt2, None, CaptureSettings(projection_dim=64)).projection is None
    assert plan_capture(tiny_gpt2, None, CaptureSettings(projection_dim=None)).info.state_dim == 32


# --------------------------------------------------------------------------------------------
# Memory and dtype: what a user can change, named


@pytest.fixture
def fails_above_64_tokens(tiny_gpt2):
    """The tiny model, out of memory on batches of more than 64 tokens."""

    def hook(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids.numel() > 64:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    handle = tiny_gpt2.register_forward_pre_hook(hook, with_kwargs=True)
    yield tiny_gpt2
    handle.remove()


def test_auto_batch_size_halves_until_the_pass_fits(fails_above_64_tokens):
    from lm_eval_emergence.capture import fitting_batch_size

    assert fitting_batch_size(fails_above_64_tokens, seq_len=9, start=64) == 4  # 36 tokens
    assert fitting_batch_size(fails_above_64_tokens, seq_len=9, start=6) == 6  # 54 tokens fit


def test_out_of_memory_names_the_batch_size_to_change(fails_above_64_tokens):
    from lm_eval_emergence.capture import CaptureResourceError, capture_states, plan_capture
    from lm_eval_emergence.settings import CaptureSettings

    plan = plan_capture(fails_above_64_tokens, None, CaptureSettings(bos=None, batch_size=16))
    ids = torch.randint(0, 128, (64, 6), generator=torch.Generator().manual_seed(0))
    with pytest.raises(CaptureResourceError, match=r"batch size 16 .*--batch_size auto"):
        capture_states(fails_above_64_tokens, ids, plan)
    plan = plan_capture(fails_above_64_tokens, None, CaptureSettings(bos=None, batch_size=8))
    assert capture_states(fails_above_64_tokens, ids, plan).macro_inputs.shape[1] == 64


def test_a_dtype_the_device_lacks_names_the_dtype_setting(tiny_gpt2):
    from lm_eval_emergence.capture import CaptureResourceError, capture_states, plan_capture
    from lm_eval_emergence.settings import CaptureSettings

    def hook(module, args, kwargs):
        raise RuntimeError("\"addmm_impl_cpu_\" not implemented for 'Half'")

    handle = tiny_gpt2.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        plan = plan_capture(tiny_gpt2, None, CaptureSettings(bos=None))
        with pytest.raises(CaptureResourceError, match="dtype=float32"):
            capture_states(tiny_gpt2, torch.zeros(64, 4, dtype=torch.long), plan)
    finally:
        handle.remove()


@pytest.mark.slow
def test_bfloat16_capture_gives_the_float32_numbers_within_half_a_bit(smollm2):
    """SmolLM2 run in bfloat16 (the dtype users pick on GPUs) against float32, on 256 country
    lists: the IE of the default protocol moves by less than 0.5 bit (measured: 0.22 bit at 512
    lists, docs/performance.md), each block's plug-in macro term by less than 1 bit. The
    difference is the bf16 model's own arithmetic (its residual stream is rounded to 8 bits of
    mantissa), not the capture's: states are projected and accumulated in float32. Blocks are
    compared on the plug-in value (bias=none) because the default's jackknife correction
    multiplies a block's difference by up to K - 1 (block 1: 0.57 bit plug-in, 1.05 corrected)."""
    import copy

    from lm_eval_emergence import make_icl_sequences
    from lm_eval_emergence.metrics.emergence import measure
    from lm_eval_emergence.settings import IESettings

    model, tok = smollm2
    seqs = make_icl_sequences(tok, "country", 4, 256, seed=0)
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    default = IESettings.from_mapping({"ie_batch_size": 64})
    full = measure(model, tok, seqs, default)
    half = measure(bf16, tok, seqs, default)
    assert half.ie_bits == pytest.approx(full.ie_bits, abs=0.5)
    plug_in = IESettings.from_mapping({"ie_batch_size": 64, "ie_options": "bias=none"})
    full_plug, half_plug = measure(model, tok, seqs, plug_in), measure(bf16, tok, seqs, plug_in)
    for a, b in zip(full_plug.per_layer, half_plug.per_layer, strict=True):
        assert b.macro_bits == pytest.approx(a.macro_bits, abs=1.0), a.layer
    assert full.ie_bits > 10  # a trained model's number, not two zeros agreeing
