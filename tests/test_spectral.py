"""The state statistics (`metrics/spectral.py`, `metrics/dispersion.py`) and the scored next
token: known spectra and dispersions, states of known covariance, streamed = kept, a calibrated
stderr, Diff-eRank's sign and pairing."""

from __future__ import annotations

import math

import pytest
import torch

from lm_eval_emergence.capture import (
    Capture,
    CaptureInfo,
    StreamSpec,
    TokenTable,
    capture_moments,
    capture_states,
    plan_capture,
)
from lm_eval_emergence.metrics.dispersion import dispersion, dispersion_from_sums
from lm_eval_emergence.metrics.spectral import (
    effective_rank,
    erank,
    matrix_entropy,
    matrix_entropy_bits,
    paired_difference,
)
from lm_eval_emergence.settings import CaptureSettings


def shannon(p: list[float]) -> float:
    return -sum(v * math.log(v) for v in p if v > 0)


def rotated(values: list[float], seed: int = 0) -> torch.Tensor:
    """A covariance with eigenvalues `values` in a random orthonormal basis."""
    q, _ = torch.linalg.qr(torch.randn(len(values), len(values), generator=_gen(seed)))
    return q @ torch.diag(torch.tensor(values, dtype=torch.float32)) @ q.T


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------ known spectra


def test_effective_rank_of_known_spectra():
    assert float(effective_rank(torch.eye(4))) == pytest.approx(4.0, abs=1e-12)
    assert float(effective_rank(torch.diag(torch.tensor([3.0, 0, 0, 0])))) == pytest.approx(1.0)
    values = [4.0, 2.0, 1.0, 1.0]  # p = 1/2, 1/4, 1/8, 1/8: H = 1.75 ln 2
    assert float(effective_rank(rotated(values))) == pytest.approx(2**1.75, rel=1e-5)
    # scale-free, and batched over leading dimensions
    batch = torch.stack([rotated(values), 7 * rotated(values, seed=1), torch.eye(4)])
    assert effective_rank(batch).tolist() == pytest.approx([2**1.75, 2**1.75, 4.0], rel=1e-5)


def test_matrix_entropy_of_known_spectra():
    p = [0.5, 0.25, 0.25]
    m = rotated([2.0, 1.0, 1.0])
    assert float(matrix_entropy_bits(m)) == pytest.approx(1.5, rel=1e-5)
    assert float(matrix_entropy_bits(m, alpha=2)) == pytest.approx(
        -math.log2(sum(v * v for v in p)), rel=1e-5
    )
    for alpha in (0.5, 1.0, 2.0, 3.0):  # a flat spectrum has log2 k bits at every order
        assert float(matrix_entropy_bits(torch.eye(8), alpha)) == pytest.approx(3.0, abs=1e-9)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        matrix_entropy_bits(torch.eye(2), alpha=0)
    with pytest.raises(ValueError, match="no variance"):
        effective_rank(torch.zeros(3, 3))


# ------------------------------------------------------------------------------ from states


def synthetic_capture(x: torch.Tensor, y: torch.Tensor) -> Capture:
    """A Capture of given macro states [L, N, k] at the last of T = 2 positions."""
    n_layers, n, k = y.shape
    info = CaptureInfo(
        settings=CaptureSettings(projection_dim=None),
        layers=list(range(n_layers)),
        bos_token_id=None,
        hidden_dim=k,
        state_dim=k,
        projections=1,
        model_name="synthetic",
        n_parameters=0,
        model_dtype="float32",
    )
    table = TokenTable(
        torch.arange(2), torch.zeros(n_layers, 2, k), torch.zeros(n_layers, 2, k), info.layers
    )
    return Capture(
        info=info,
        token_ids=torch.zeros(n, 2, dtype=torch.long),
        positions=[1],
        macro_inputs=x[:, :, None],
        macro_outputs=y[:, :, None],
        micro=table,
    )


def gaussian_rows(n: int, values: list[float], mean: list[float], seed: int) -> torch.Tensor:
    z = torch.randn(n, len(values), generator=_gen(seed), dtype=torch.float64)
    return (z * torch.tensor(values, dtype=torch.float64).sqrt() + torch.tensor(mean)).float()


def test_spectrum_of_states_of_known_covariance_and_mean():
    """Rows N(mu, diag(values)): erank from the covariance, matrix entropy from the raw second
    moment diag(values) + mu mu^T; both within sampling error of their closed forms."""
    values, mean = [4.0, 2.0, 1.0, 1.0], [0.0, 3.0, 0.0, 0.0]
    y = torch.stack([gaussian_rows(40_000, values, mean, seed) for seed in (1, 2)])
    capture = synthetic_capture(torch.randn(y.shape, generator=_gen(3)), y)
    rank, entropy = erank(capture), matrix_entropy(capture)
    raw = torch.diag(torch.tensor(values, dtype=torch.float64))
    raw += torch.outer(torch.tensor(mean), torch.tensor(mean)).double()
    want_entropy = float(matrix_entropy_bits(raw))
    assert rank.value == pytest.approx(2**1.75, rel=0.01)
    assert entropy.value == pytest.approx(want_entropy, rel=0.01)
    assert [r.layer for r in rank.per_layer] == [0, 1]
    for row in rank.per_layer:
        assert row.value == pytest.approx(2**1.75, rel=0.01)
        assert 0 < row.stderr < 0.02
    # the stated centring: the mean moves the matrix entropy, not the erank
    centred = synthetic_capture(torch.randn(y.shape), y - torch.tensor(mean))
    assert erank(centred).value == pytest.approx(rank.value, rel=1e-4)
    assert matrix_entropy(centred).value == pytest.approx(math.log2(rank.value), rel=0.01)
    assert (rank.n, rank.n_folds, entropy.options) == (40_000, 10, {"alpha": 1.0})


def test_jackknife_stderr_matches_the_spread_over_fresh_samples():
    values = [8.0, 4.0, 2.0, 1.0, 1.0, 0.5]
    eranks, stderrs = [], []
    for seed in range(30):
        y = gaussian_rows(512, values, [0.0] * 6, seed)[None]
        result = erank(synthetic_capture(torch.zeros_like(y), y), seed=seed)
        eranks.append(result.value)
        stderrs.append(result.stderr)
    spread = torch.tensor(eranks).std().item()
    mean_se = sum(stderrs) / len(stderrs)
    assert 0.67 < mean_se / spread < 1.5, (mean_se, spread)


def test_streamed_moments_give_the_spectrum_of_the_kept_states(tiny_gpt2):
    ids = torch.randint(0, 128, (300, 6), generator=_gen(5))
    plan = plan_capture(tiny_gpt2, None, CaptureSettings(bos=None, projection_dim=16))
    captured = capture_states(tiny_gpt2, ids, plan)
    for statistic in (erank, matrix_entropy, dispersion):
        kept = statistic(captured, folds=10, seed=3)
        for target in ("output", "update"):
            stream = StreamSpec(rows=300, folds=10, seed=3, target=target)
            streamed = statistic(capture_moments(tiny_gpt2, ids, plan, stream))
            assert streamed.value == pytest.approx(kept.value, rel=1e-6)
            assert streamed.stderr == pytest.approx(kept.stderr, rel=1e-5)
            a, b = kept.spread, streamed.spread
            assert b["left_out"] == pytest.approx(a["left_out"], rel=1e-6)
            flat = lambda rows: [v for row in rows for v in row]  # noqa: E731
            assert flat(b["projections"]) == pytest.approx(flat(a["projections"]), rel=1e-6)
        assert kept.projections == 4 and len(kept.spread["projections"][0]) == 4


def test_diff_erank_is_control_minus_model_with_a_paired_stderr():
    values_model, values_control = [9.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]
    y = gaussian_rows(2000, values_model, [0.0] * 4, seed=1)[None]
    y_control = gaussian_rows(2000, values_control, [0.0] * 4, seed=2)[None]
    model = erank(synthetic_capture(torch.zeros_like(y), y))
    control = erank(synthetic_capture(torch.zeros_like(y), y_control))
    value, se = paired_difference(model, control)
    assert value == pytest.approx(control.value - model.value, abs=1e-12)
    assert value > 0  # the paper's sign: training (here: the model) has the lower rank
    assert value == pytest.approx(4.0 - math.exp(shannon([0.75, 1 / 12, 1 / 12, 1 / 12])), abs=0.1)
    folds = torch.tensor(control.spread["left_out"], dtype=torch.float64) - torch.tensor(
        model.spread["left_out"], dtype=torch.float64
    )
    # one block, not projected: the paired jackknife of the differences alone
    assert se == pytest.approx(math.sqrt(0.9 * ((folds - folds.mean()) ** 2).sum()), rel=1e-9)
    other = erank(synthetic_capture(torch.zeros_like(y[:, :1000]), y[:, :1000]))
    with pytest.raises(ValueError, match="same documents, folds, blocks and projections"):
        paired_difference(other, control)


# ------------------------------------------------------------------------------ dispersion


def test_dispersion_of_known_directions():
    """Unit vectors spread evenly on a circle have mean pairwise cosine distance
    1 + 1 / (N - 1) (the sum of all of them is 0); N copies of one direction have 0; a mean
    direction far from the origin brings it towards 0, whatever the scale of the states."""
    n = 400
    angles = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
    circle = torch.stack([angles.cos(), angles.sin()], dim=1).float()
    y = torch.stack([circle, torch.ones(n, 2) * 3.0])  # block 0: the circle; block 1: one ray
    result = dispersion(synthetic_capture(torch.zeros_like(y), y))
    assert [r.value for r in result.per_layer] == pytest.approx([1 + 1 / (n - 1), 0.0], abs=1e-9)
    assert result.value == pytest.approx((1 + 1 / (n - 1)) / 2, abs=1e-9)
    scaled = dispersion(synthetic_capture(torch.zeros_like(y), 7 * y))
    assert scaled.value == pytest.approx(result.value, abs=1e-9)
    shifted = dispersion(synthetic_capture(torch.zeros_like(y), y + torch.tensor([5.0, 0.0])))
    assert shifted.per_layer[0].value < 0.1


def test_dispersion_is_the_mean_pairwise_cosine_distance():
    y = torch.randn(1, 300, 6, generator=_gen(4)) + torch.tensor([1.0, 0, 0, 0, 0, 0])
    u = y[0].double() / y[0].double().norm(dim=1, keepdim=True)
    cosine = u @ u.T
    pairwise = float((1 - cosine).sum() / (300 * 299))  # the diagonal adds 0
    result = dispersion(synthetic_capture(torch.zeros_like(y), y))
    assert result.value == pytest.approx(pairwise, rel=1e-10)
    assert float(dispersion_from_sums(u.sum(0), torch.tensor(300.0))) == pytest.approx(pairwise)
    # its jackknife matches the spread over fresh draws
    values, stderrs = [], []
    for seed in range(30):
        draw = torch.randn(1, 500, 6, generator=_gen(100 + seed)) + torch.tensor([1.0] + [0] * 5)
        r = dispersion(synthetic_capture(torch.zeros_like(draw), draw), seed=seed)
        values.append(r.value)
        stderrs.append(r.stderr)
    ratio = sum(stderrs) / len(stderrs) / torch.tensor(values).std().item()
    assert 0.67 < ratio < 1.5, ratio


# ------------------------------------------------------------------------------ scored tokens


def test_scored_next_token_is_the_log_probability_mass_of_the_ids(tiny_gpt2):
    ids = torch.randint(0, 128, (10, 5), generator=_gen(7))
    score = [[3], [4, 9], [1, 2, 3], [127], [0, 5], [6], [7, 8], [10], [11, 12, 13], [14]]
    plan = plan_capture(tiny_gpt2, None, CaptureSettings(bos=None, batch_size=4))
    captured = capture_states(tiny_gpt2, ids, plan, next_token=True, score_ids=score)
    with torch.no_grad():
        logp = torch.log_softmax(tiny_gpt2(input_ids=ids).logits[:, -1].double(), -1)
    want = [float(torch.logsumexp(logp[i, s], 0)) for i, s in enumerate(score)]
    assert captured.next_logprobs.tolist() == pytest.approx(want, abs=1e-5)
    assert captured.subset(n=3).next_logprobs.tolist() == pytest.approx(want[:3], abs=1e-5)
    with pytest.raises(ValueError, match="needs next_token=True"):
        capture_states(tiny_gpt2, ids, plan, score_ids=score)
    with pytest.raises(ValueError, match="sequences \\[1\\] are empty"):
        capture_states(tiny_gpt2, ids, plan, next_token=True, score_ids=[[1], [], *score[2:]])
    with pytest.raises(ValueError, match="must lie in \\[0, 127\\]"):
        capture_states(tiny_gpt2, ids, plan, next_token=True, score_ids=[[128]] * 10)
