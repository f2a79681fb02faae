"""The ± of every reported value: a jackknife over document folds plus the projections' spread.

Ground truth here is replication: synthetic profiles drawn afresh (documents, and projections
where they are measured) whose Monte Carlo mean is the estimator's expected value, so that a
90% t-interval must hold it about 90% of the time; and cases whose answer is known by
construction (blocks that are copies of one another, a bias of exactly c / N).
"""

from __future__ import annotations

import math
import statistics

import pytest
import torch
from scipy import stats

from lm_eval_emergence.capture import Capture, CaptureInfo, RandomProjection, TokenTable
from lm_eval_emergence.estimators.api import outcome_from_moments
from lm_eval_emergence.estimators.moments import jackknife_fold_ids, moments_of_samples
from lm_eval_emergence.metrics.emergence import emergence_from_moments, emergence_from_states
from lm_eval_emergence.pairs import PairTable
from lm_eval_emergence.settings import CaptureSettings, EstimationSettings
from lm_eval_emergence.uncertainty import Spread, jackknife_stderr, n_check, standard_error

BLOCKS, TOKENS, VOCAB, WIDTH = 3, 3, 12, 4


# ------------------------------------------------------------------------ the arithmetic


def test_standard_error_adds_the_projections_spread_to_the_documents_jackknife():
    left_out = (1.0, 1.2, 0.9, 1.1)
    projections = ((0.5, 0.7, 0.6), (0.2, 0.2, 0.5))  # two blocks, three projections each
    se = standard_error(Spread(1.35, left_out, projections))
    documents = math.sqrt(3 / 4 * sum((v - 1.05) ** 2 for v in left_out))
    per_block = [statistics.variance(b) / 3 for b in projections]  # each block's mean over 3
    assert se.documents == pytest.approx(documents, rel=1e-12)
    assert se.projections == pytest.approx(math.sqrt(sum(per_block)), rel=1e-12)
    assert se.total == pytest.approx(math.hypot(documents, math.sqrt(sum(per_block))), rel=1e-12)
    parts = [(documents**2, 3)] + [(v, 2) for v in per_block]  # Welch-Satterthwaite
    dof = sum(v for v, _ in parts) ** 2 / sum(v * v / d for v, d in parts)
    assert se.dof == pytest.approx(dof, rel=1e-12) and se.method == "jackknife"
    # one projection: nothing to measure its spread with, and the error says so
    single = standard_error(Spread(1.0, left_out, ((0.5,), (0.5,))))
    assert single.projections is None and single.total == pytest.approx(documents)
    assert single.dof == 3
    # the trained bounds have no folds: their own errors in quadrature, named so
    quadrature = standard_error(Spread(1.0, None, None, quadrature=0.25))
    assert (quadrature.total, quadrature.method, quadrature.dof) == (0.25, "quadrature", None)


def test_a_paired_difference_cancels_what_both_sides_share():
    shared = (0.3, -0.2, 0.1, 0.05)  # a document effect both sides carry
    model = Spread(5.0, tuple(5 + s for s in shared), ((1.0, 1.4), (2.0, 2.4)))
    control = Spread(2.0, tuple(2 + s for s in shared), ((0.5, 0.9), (1.0, 1.4)))
    difference = model.minus(control)
    assert difference.value == 3.0 and difference.left_out == pytest.approx((3.0,) * 4)
    assert [list(b) for b in difference.projections] == [pytest.approx([0.5] * 2), [1.0] * 2]
    se = standard_error(difference)
    assert se.total == pytest.approx(0.0, abs=1e-12)  # nothing moves the difference here
    assert standard_error(model).total > 0.3


# ------------------------------------------------------------------------ synthetic profiles


def _mixing(seed: int, width: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(BLOCKS, width, width, generator=g),
        torch.randn(BLOCKS, width, width, generator=g),
        torch.randn(BLOCKS, VOCAB, width, generator=g),
        torch.randn(BLOCKS, VOCAB, width, generator=g),
    )


def synthetic_states(n: int, seed: int, width: int = WIDTH, same_blocks: bool = False):
    """Macro states of every block driven by one latent per document (so the blocks' errors
    are correlated through the documents), random tokens whose states fed alone come from a
    fixed table, in `width` channels: (ids, x [L, n, width], y [L, n, width], table x, y)."""
    a, b, tx, ty = _mixing(123, width)
    if same_blocks:
        a, b, tx, ty = (t[:1].expand_as(t) for t in (a, b, tx, ty))
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, width, generator=g)
    noise = 0.5 * torch.randn(1 if same_blocks else BLOCKS, n, width, generator=g)
    x = torch.einsum("lij,nj->lni", a, z) + noise
    y = x + 0.3 * torch.einsum("lij,nj->lni", b, z) + 0.8 * noise.flip(-1)
    ids = torch.randint(0, VOCAB, (n, TOKENS), generator=g)
    return ids, x, y, tx, tx + 0.7 * ty


def synthetic_capture(
    n: int, seed: int, *, same_blocks: bool = False, project: tuple[int, int] | None = None
) -> Capture:
    """A `Capture` of `synthetic_states`; `project=(k, R)` reads 4 * WIDTH channels through R
    independent projections to k per block, drawn with `seed` (as the capture does)."""
    width = WIDTH if project is None else 4 * WIDTH
    ids, x, y, tx, ty = synthetic_states(n, seed, width, same_blocks)
    k, replicates = (width, 1) if project is None else project
    if project is not None:
        projection = RandomProjection(width, k, seed, blocks=range(BLOCKS), replicates=replicates)
        proj = lambda s: torch.stack([projection(s[i], i) for i in range(BLOCKS)])  # noqa: E731
        x, y, tx, ty = proj(x), proj(y), proj(tx), proj(ty)
    settings = CaptureSettings(projection_dim=k if project else None, projections=replicates)
    layers = list(range(BLOCKS))
    info = CaptureInfo(settings, layers, None, width, k, replicates, "synthetic", 0, "float32")
    table = TokenTable(torch.arange(VOCAB), tx, ty, layers)
    return Capture(info, ids, [TOKENS - 1], x[:, :, None], y[:, :, None], table)


def _coverage(results: list, mean: float, level: float = 0.90) -> float:
    hits = 0
    for r in results:
        q = stats.t.ppf(0.5 + level / 2, r.ie_stderr_dof)
        hits += abs(r.ie_bits - mean) <= q * r.ie_stderr_bits
    return hits / len(results)


@pytest.mark.parametrize("bias", ["none", "jackknife"])
def test_the_documents_jackknife_covers_the_expected_value(bias):
    """400 fresh draws of documents: 90% t-intervals (folds - 1 degrees of freedom) hold the
    Monte Carlo mean of the estimator in 86-94% of them (a calibrated ± misses this about
    0.6% of the time); for the plug-in and for the bias-corrected default alike."""
    estimation = EstimationSettings("gaussian-floor", {"bias": bias}, target="update")
    results = [emergence_from_states(synthetic_capture(400, s), estimation) for s in range(400)]
    assert {r.ie_stderr_dof for r in results} == {9.0}  # ten folds, nothing projected
    mean = statistics.mean(r.ie_bits for r in results)
    assert 0.86 <= _coverage(results, mean) <= 0.94


def test_the_documents_and_the_projections_together_are_covered():
    """400 draws of documents and projections together (R = 4 per block): the total ± (the
    jackknife plus the projections' spread) is the spread of the values, and its t-interval
    (Welch-Satterthwaite degrees of freedom, often few) covers the mean. Such an interval errs
    on the wide side: over 1,200 other draws (seeds 1000-2199) it held the mean in 92.5% at
    90% with the rms ± 1.01 times the spread, so the band is 86-96%."""
    estimation = EstimationSettings("gaussian-floor", {}, target="update")
    results = [
        emergence_from_states(synthetic_capture(300, s, project=(WIDTH, 4)), estimation)
        for s in range(400)
    ]
    assert all(r.ie_stderr_projections_bits > 0 for r in results)
    mean = statistics.mean(r.ie_bits for r in results)
    assert 0.86 <= _coverage(results, mean) <= 0.96
    spread = statistics.stdev(r.ie_bits for r in results)
    rms = math.sqrt(statistics.mean(r.ie_stderr_bits**2 for r in results))
    assert 0.8 <= rms / spread <= 1.25
    # and the projections' part is not a rounding error: without it the ± undercovers
    documents_only = statistics.mean(r.ie_stderr_documents_bits for r in results)
    assert documents_only < 0.5 * spread


def test_blocks_that_are_copies_give_ie_the_error_of_one_block():
    """IE over L identical blocks is one block's E: its error is that block's, not 1/sqrt(L)
    of it, as combining the blocks as if independent would say."""
    estimation = EstimationSettings("gaussian-floor", {}, target="update")
    result = emergence_from_states(synthetic_capture(400, 1, same_blocks=True), estimation)
    rows = result.per_layer
    assert [r.emergence_bits for r in rows] == pytest.approx([rows[0].emergence_bits] * BLOCKS)
    assert result.ie_stderr_bits == pytest.approx(rows[0].stderr_bits, rel=1e-9)
    independent = math.sqrt(sum(r.stderr_bits**2 for r in rows)) / BLOCKS
    assert result.ie_stderr_bits == pytest.approx(math.sqrt(BLOCKS) * independent, rel=1e-9)


def test_the_streamed_error_is_the_jackknife_of_moments_taken_from_the_states():
    """IE's left-out values, recomputed by hand from moments of a small array of states (each
    pair's plug-in with a fold left out, combined as IE is), equal the profile's."""
    capture = synthetic_capture(200, 4)
    estimation = EstimationSettings("gaussian-floor", {}, target="update", seed=3)
    result = emergence_from_states(capture, estimation)
    folds = jackknife_fold_ids(200, 10, seed=3)
    ids = capture.token_ids
    micro_x, micro_y = capture.micro_states()  # [L, n, T, k]
    by_fold = torch.zeros(10, BLOCKS, dtype=torch.float64)  # E(l) with each fold left out
    for slot in range(BLOCKS):
        x = capture.macro_inputs[slot, :, 0]
        y = capture.macro_outputs[slot, :, 0] - x
        pairs_x = [x] + [micro_x[slot, :, t] for t in range(TOKENS)]
        pairs_y = [y] + [micro_y[slot, :, t] - micro_x[slot, :, t] for t in range(TOKENS)]
        for p, (px, py) in enumerate(zip(pairs_x, pairs_y, strict=True)):
            moments = moments_of_samples(px[None], py[None], 10, seed=3)
            assert torch.equal(jackknife_fold_ids(200, 10, 3), folds)
            left = outcome_from_moments(moments, "gaussian-floor", {}).fold_nats[1:, 0]
            by_fold[:, slot] += left.double() / math.log(2) * (1 if p == 0 else -1 / TOKENS)
    assert ids.shape == (200, TOKENS)
    expected = by_fold.mean(1)
    assert list(result.ie_spread["left_out"]) == pytest.approx(expected.tolist(), rel=1e-6)
    assert result.ie_stderr_documents_bits == pytest.approx(
        jackknife_stderr(expected.tolist()), rel=1e-6
    )


def test_streamed_and_kept_states_give_the_same_error(tiny_gpt2):
    from lm_eval_emergence.capture import StreamSpec, capture_moments, capture_states, plan_capture

    ids = torch.randint(0, 128, (240, 5), generator=torch.Generator().manual_seed(2))
    plan = plan_capture(tiny_gpt2, None, CaptureSettings(projection_dim=8, bos=None))
    estimation = EstimationSettings.of_protocol("floor-update", seed=5)
    kept = emergence_from_states(capture_states(tiny_gpt2, ids, plan), estimation)
    stream = StreamSpec(rows=240, folds=10, seed=5, target="update")
    streamed = emergence_from_moments(capture_moments(tiny_gpt2, ids, plan, stream), estimation)
    assert kept.projections == streamed.projections == 4
    for name in ("ie_bits", "ie_stderr_bits", "ie_stderr_documents_bits"):
        assert getattr(streamed, name) == pytest.approx(getattr(kept, name), rel=1e-6)
    assert streamed.ie_stderr_projections_bits == pytest.approx(
        kept.ie_stderr_projections_bits, rel=1e-6
    )
    assert streamed.n_check["change"] == pytest.approx(kept.n_check["change"], abs=1e-6)


# ------------------------------------------------------------------------ the N/2 check


def _table(values: torch.Tensor, left: torch.Tensor, half: torch.Tensor, pair: torch.Tensor,
           half_left: torch.Tensor, n: int) -> PairTable:  # fmt: skip
    k = values.shape[0]
    return PairTable(
        keys=[("macro", 0, 0, i) for i in range(k)],
        value=values,
        stderr=torch.zeros(k, dtype=torch.float64),
        diverged=torch.zeros(k, dtype=torch.bool),
        exact=torch.zeros(k, dtype=torch.bool),
        null=None,
        left_out=left,
        half=half,
        pair_left_out=pair,
        half_left_out=half_left,
        n=n,
        n_half=n // 2,
        n_blocks=1,
        projections=1,
        estimator_options={},
        ceiling_bits=None,
        seconds=0.0,
    )


def test_a_bias_of_c_over_n_moves_the_value_by_c_over_n_from_half_the_documents():
    """A value theta + c / n read on n rows, on each half (n / 2) and with folds left out: the
    change is -c / n exactly, with no spread, and the check flags it only beyond the allowance."""
    theta, n, m = 3.0, 1000, 5

    def at(rows: float) -> float:
        return theta + c / rows

    for c, flagged in ((40.0, False), (80.0, True)):  # -0.04 and -0.08 bit; allowance 0.06
        value = torch.tensor([at(n)], dtype=torch.float64)
        left = torch.full((2 * m, 1), at(0.9 * n), dtype=torch.float64)
        half = torch.tensor([at(n / 2)], dtype=torch.float64)
        pair = torch.full((m, 1), at(0.8 * n), dtype=torch.float64)
        half_left = torch.full((m, 1), at(0.4 * n), dtype=torch.float64)
        check = _table(value, left, half, pair, half_left, n).check(torch.ones(1).double())
        assert check.change == pytest.approx(-c / n, abs=1e-12)
        assert check.change_stderr == pytest.approx(0.0, abs=1e-12)
        assert check.allowance == pytest.approx(max(0.05, 0.02 * at(n)))
        assert check.flagged is flagged


def test_the_plug_in_moves_by_its_first_order_bias_and_the_corrected_value_does_not():
    """The Gaussian floor's plug-in is biased by about c / n: from N/2 to N it moves by -c / N
    (c from the Wishart expansion of the population, `_analytic_bias`), the jackknife-corrected
    value by much less; both within their standard errors over 40 draws."""
    from lm_eval_emergence.estimators.noise_floor import _analytic_bias
    from studies.synthetic import LinearGaussian

    k, n = 8, 600
    case = LinearGaussian.of(k, seed=2)
    c_nats = float(_analytic_bias(case.correlation, k, 0.25, torch.tensor(1.0)))
    expected = -c_nats / math.log(2) / n  # bits
    for bias, want in (("none", expected), ("jackknife", 0.0)):
        changes, stderrs = [], []
        for z in case.samples(n, 40, seed=11):
            moments = moments_of_samples(z[None, :, :k], z[None, :, k:], 10, seed=0)
            halves = [moments.grouped_folds([[h * 5 + j] for j in range(5)]) for h in (0, 1)]
            options = {"bias": bias}
            whole = outcome_from_moments(moments, "gaussian-floor", options)
            parts = [outcome_from_moments(h, "gaussian-floor", options) for h in halves]
            change = float(whole.nats[0] - (parts[0].nats[0] + parts[1].nats[0]) / 2)
            changes.append(change / math.log(2))
            pair = outcome_from_moments(
                moments.grouped_folds([[j, 5 + j] for j in range(5)]), "gaussian-floor", options
            ).fold_nats[1:, 0]
            half_left = (parts[0].fold_nats[1:, 0] + parts[1].fold_nats[1:, 0]) / 2
            change_left_out = ((pair - half_left) / math.log(2)).tolist()
            check = n_check(n, n // 2, 0.0, -changes[-1], change_left_out)
            stderrs.append(check.change_stderr)
        mean, sd = statistics.mean(changes), statistics.stdev(changes)
        assert abs(mean - want) < 3 * sd / math.sqrt(40) + 0.1 * abs(expected)
        # the change's jackknife is not too small (Efron-Stein: it errs on the large side)
        assert 1.0 <= statistics.mean(stderrs) / sd <= 2.0
    assert expected < -0.02  # a bias the check can see
