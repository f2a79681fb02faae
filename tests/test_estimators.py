"""MI estimators against closed-form ground truth, their invariants, their errors on bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lm_eval_emergence import estimate_mi, estimate_mi_many, estimator_names, estimator_options
from lm_eval_emergence.estimators import MIN_SAMPLES
from lm_eval_emergence.estimators.paper import PaperConfig, paper_lr
from studies.synthetic import (
    LinearGaussian,
    correlated_gaussian,
    discrete_deterministic,
    gaussian_mi_bits,
    rho_for_bits,
)

FAST_NEURAL = {"steps": 300, "eval_every": 50, "patience": 2}


def test_closed_form_helpers_agree():
    assert gaussian_mi_bits(3, rho_for_bits(4.5, 3)) == pytest.approx(4.5)
    assert gaussian_mi_bits(1, 0.0) == 0.0
    # -(1/2) log2(1 - 0.75) = 1 bit per coordinate pair at rho^2 = 3/4
    assert gaussian_mi_bits(2, math.sqrt(0.75)) == pytest.approx(2.0)


@pytest.mark.parametrize("bits", [0.5, 2.0, 4.0])
def test_gaussian_recovers_closed_form(bits):
    case = correlated_gaussian(4000, 8, k=2, bits=bits, seed=3)
    est = estimate_mi(case.x, case.y, estimator="gaussian")
    assert est.bits == pytest.approx(bits, abs=0.15)
    assert 0 < est.stderr_bits < 0.2
    assert est.ceiling_bits is None
    assert not est.diverged


def test_cca_reduction_finds_rotated_signal_in_high_dimension():
    # 2 correlated coordinate pairs hidden by random rotations in 128 dimensions: PCA cannot see
    # them (the covariance is isotropic); the supervised reduction keeps them.
    case = correlated_gaussian(4000, 128, k=2, bits=3.0, seed=4)
    cca = estimate_mi(case.x, case.y, estimator="gaussian", reduce="cca", reduce_dim=8)
    pca = estimate_mi(case.x, case.y, estimator="gaussian", reduce="pca", reduce_dim=8)
    assert cca.bits == pytest.approx(3.0, abs=0.5)
    assert pca.bits < 1.0


def test_infonce_recovers_closed_form_below_its_ceiling():
    case = correlated_gaussian(3000, 8, k=2, bits=2.0, seed=5)
    est = estimate_mi(case.x, case.y, estimator="infonce", **FAST_NEURAL)
    assert est.bits == pytest.approx(2.0, abs=0.4)
    assert est.ceiling_bits == pytest.approx(math.log2(est.n_test))
    assert est.n_test == 1500  # half the rows are held out for the read-out


@pytest.mark.parametrize("estimator", ["gaussian", "infonce"])
def test_independent_pair_reads_near_zero(estimator):
    case = correlated_gaussian(3000, 16, k=2, bits=0.0, seed=6)
    options = FAST_NEURAL if estimator != "gaussian" else {}
    est = estimate_mi(case.x, case.y, estimator=estimator, **options)
    assert abs(est.bits) < 0.15


def test_gaussian_is_invariant_under_invertible_linear_maps():
    case = correlated_gaussian(3000, 6, k=2, bits=2.0, seed=7)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 6, generator=g) + 3 * torch.eye(6)
    b = torch.randn(6, 6, generator=g) + 3 * torch.eye(6)
    exact = {"estimator": "gaussian", "reduce": "none", "copula": False}
    plain = estimate_mi(case.x, case.y, **exact)
    mapped = estimate_mi(case.x @ a + 5.0, case.y @ b - 2.0, **exact)
    assert mapped.bits == pytest.approx(plain.bits, abs=1e-3)


def test_gaussian_copula_is_exact_through_coordinatewise_monotone_maps():
    case = correlated_gaussian(4000, 16, k=2, bits=3.0, seed=7, nonlinear="cubic")
    copula = estimate_mi(case.x, torch.exp(case.y), estimator="gaussian")
    plain = estimate_mi(case.x, torch.exp(case.y), estimator="gaussian", copula=False)
    assert copula.bits == pytest.approx(3.0, abs=0.2)
    assert plain.bits < 2.5  # a plain Gaussian fit misses what the maps bent


def test_neural_estimate_survives_an_invertible_nonlinear_map():
    case = correlated_gaussian(3000, 4, k=2, bits=2.0, seed=8)
    y = case.y + case.y**3 / 3  # monotone in every coordinate, so MI is unchanged
    plain = estimate_mi(case.x, case.y, estimator="infonce", **FAST_NEURAL)
    mapped = estimate_mi(case.x, y, estimator="infonce", **FAST_NEURAL)
    assert mapped.bits == pytest.approx(2.0, abs=0.6)
    assert mapped.bits == pytest.approx(plain.bits, abs=0.6)


def test_noise_std_makes_a_deterministic_pair_finite_with_known_value():
    # y = x + noise of std sigma on 2 unit-variance coordinates: I = 2 * 1/2 log2(1 + 1/sigma^2)
    x = torch.randn(4000, 2, generator=torch.Generator().manual_seed(9))
    est = estimate_mi(x, x.clone(), estimator="gaussian", reduce="none", noise_std=1.0)
    assert est.bits == pytest.approx(1.0, abs=0.1)
    assert not est.diverged


def test_relative_noise_has_the_closed_form_value_at_any_scale():
    # x + k s z1 against x + k s z2 (s = each coordinate's std): correlation 1 / (1 + k^2) per
    # coordinate, so I = -1/2 log2(1 - 1 / (1 + k^2)^2) each, whatever the units of x
    x = torch.randn(20000, 2, generator=torch.Generator().manual_seed(123))
    kappa = 1.0
    truth = 2 * -0.5 * math.log2(1 - 1 / (1 + kappa**2) ** 2)
    for scale in (1.0, 100.0):
        est = estimate_mi(
            scale * x, scale * x.clone(), estimator="gaussian", reduce="none", noise_rel=kappa
        )
        assert est.bits == pytest.approx(truth, abs=0.03)
    with pytest.raises(ValueError, match="noise_rel must be a number >= 0, got -1"):
        estimate_mi(x, x, estimator="gaussian", noise_rel=-1)
    with pytest.raises(ValueError, match="noise_rel must be a number >= 0, got 'loud'"):
        estimate_mi(x, x, estimator="gaussian", noise_rel="loud")


def test_deterministic_pair_without_noise_is_flagged_not_hidden():
    x = torch.randn(1000, 3, generator=torch.Generator().manual_seed(10))
    with pytest.warns(RuntimeWarning, match="diverged"):
        est = estimate_mi(x, 2 * x + 1, estimator="gaussian", reduce="none")
    assert est.diverged
    assert math.isfinite(est.bits)


def test_infonce_reads_the_entropy_of_discrete_deterministic_data():
    case = discrete_deterministic(3000, 16, n_symbols=16, seed=11)
    est = estimate_mi(case.x, case.y, estimator="infonce", **FAST_NEURAL)
    assert est.bits == pytest.approx(case.true_bits, abs=0.3)


def test_null_option_reports_shuffled_pairs_near_zero():
    case = correlated_gaussian(3000, 8, k=2, bits=3.0, seed=12)
    est = estimate_mi(case.x, case.y, estimator="gaussian", null=True)
    assert est.bits > 2.5
    assert est.null_bits is not None and abs(est.null_bits) < 0.1


@pytest.mark.parametrize("estimator", ["gaussian", "infonce", "mine", "smile"])
def test_same_seed_same_number(estimator):
    case = correlated_gaussian(1000, 6, k=2, bits=1.5, seed=13)
    options = FAST_NEURAL if estimator != "gaussian" else {}
    first = estimate_mi(case.x, case.y, estimator=estimator, seed=5, **options)
    second = estimate_mi(case.x, case.y, estimator=estimator, seed=5, **options)
    other = estimate_mi(case.x, case.y, estimator=estimator, seed=6, **options)
    assert first.bits == second.bits
    assert first.seed == 5 and other.seed == 6
    assert other.bits != first.bits  # another seed draws another split


@pytest.mark.parametrize("estimator", ["gaussian", "infonce", "mine"])
def test_batched_path_equals_single_path(estimator):
    cases = [
        correlated_gaussian(1000, 6, k=2, bits=b, seed=20 + i) for i, b in enumerate([0.5, 2, 3])
    ]
    options = FAST_NEURAL if estimator != "gaussian" else {}
    batched = estimate_mi_many(
        [c.x for c in cases], [c.y for c in cases], estimator=estimator, seed=3, **options
    )
    for case, together in zip(cases, batched, strict=True):
        alone = estimate_mi(case.x, case.y, estimator=estimator, seed=3, **options)
        assert together.bits == pytest.approx(alone.bits, abs=1e-4)
        assert together.steps == alone.steps


def test_estimate_mi_many_accepts_a_stack_and_mixed_shapes():
    a = correlated_gaussian(500, 4, k=1, bits=1.0, seed=30)
    b = correlated_gaussian(500, 6, k=1, bits=2.0, seed=31)
    out = estimate_mi_many([a.x, b.x], [a.y, b.y], estimator="gaussian")
    assert [round(e.bits) for e in out] == [1, 2]
    stacked = estimate_mi_many(
        torch.stack([a.x, a.x]), torch.stack([a.y, a.y]), estimator="gaussian"
    )
    assert stacked[0].bits == stacked[1].bits == pytest.approx(out[0].bits)


def test_numpy_input_and_record_fields():
    case = correlated_gaussian(800, 4, k=1, bits=1.0, seed=32)
    est = estimate_mi(case.x.numpy().astype(np.float64), case.y.numpy(), estimator="gaussian")
    record = est.to_dict()
    json.dumps(record, allow_nan=False)
    assert record["nats"] == pytest.approx(est.bits * math.log(2))
    assert record["estimator"] == "gaussian" and record["n"] == 800 and record["seed"] == 0
    assert est.n_train + est.n_test == 800
    assert record["options"]["reduce"] == "cca"


def test_mine_paper_configuration_runs_and_reads_the_max_over_steps(monkeypatch):
    from lm_eval_emergence.estimators import paper

    scores = []  # the critic's joint and shuffled scores, step by step
    real_pairs = paper.ConcatCritic.pairs

    def recording_pairs(self, x, y):
        out = real_pairs(self, x, y)
        scores.append(out.detach().clone())
        return out

    monkeypatch.setattr(paper.ConcatCritic, "pairs", recording_pairs)
    case = correlated_gaussian(256, 4, k=1, bits=1.0, seed=33)
    est = estimate_mi(case.x, case.y, estimator="mine-paper", steps=30)
    assert est.estimator == "mine-paper"
    assert est.ceiling_bits == pytest.approx(8.0)  # log2(256): all pairs form the batch
    assert est.n_train == est.n_test == 256 and est.steps == 30
    # the DV bound at each of the 30 steps; the estimate is its maximum, the stderr its spread
    dv = torch.stack(
        [
            j.mean(-1) - (torch.logsumexp(m, -1) - math.log(256))
            for j, m in zip(scores[0::2], scores[1::2], strict=True)
        ]
    )[:, 0]
    assert len(dv) == 30 and int(dv.argmax()) < 29  # the last step is not the best here
    assert est.bits == pytest.approx(float(dv.max()) / math.log(2), rel=1e-6)
    assert est.stderr_bits == pytest.approx(float(dv.std()) / math.log(2), rel=1e-5)


def test_paper_learning_rate_schedule():
    config = PaperConfig()
    assert paper_lr(1, config) == pytest.approx(2e-5)  # warm-up: 1/5 of 1e-4
    assert paper_lr(5, config) == pytest.approx(1e-4)
    assert paper_lr(10_000, config) == pytest.approx(1e-8)
    mid = paper_lr(5 + (10_000 - 5) // 2, config)
    assert mid == pytest.approx((1e-4 - 1e-8) * 0.5**3 + 1e-8, rel=1e-3)


def test_every_estimator_lists_its_options():
    for estimator in estimator_names():
        options = estimator_options(estimator)
        assert "noise_std" in options and "null" in options
    assert "steps" in estimator_options("mine-paper")
    assert estimator_options("mine-paper")["steps"] == 10_000


# --- bad input -------------------------------------------------------------------------------


def _xy(n=200, d=3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)


def test_mismatched_sample_counts():
    x, y = _xy()
    with pytest.raises(ValueError, match="x has 200 samples and y has 150"):
        estimate_mi(x, y[:150])


def test_too_few_samples():
    x, y = _xy(n=MIN_SAMPLES - 1)
    with pytest.raises(ValueError, match=f"below the minimum of {MIN_SAMPLES}"):
        estimate_mi(x, y)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_values(bad):
    x, y = _xy()
    x[5, 1] = bad
    with pytest.raises(ValueError, match="NaN or inf in 1 of 200 rows"):
        estimate_mi(x, y)


def test_wrong_rank():
    x, y = _xy()
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)"):
        estimate_mi(x[:, 0], y)
    with pytest.raises(ValueError, match="expected rank 2"):
        estimate_mi(x[None], y)
    with pytest.raises(TypeError, match="torch.Tensor or numpy.ndarray"):
        estimate_mi(x.tolist(), y)


def test_unknown_estimator_lists_choices():
    x, y = _xy()
    with pytest.raises(ValueError, match="unknown MI estimator 'kraskov'") as caught:
        estimate_mi(x, y, estimator="kraskov")
    listed = str(caught.value).split("choose one of: ", 1)[1].rstrip(".").split(", ")
    known = {"gaussian", "infonce", "smile", "mine", "gaussian-floor", "mine-paper", "v-linear"}
    assert set(listed) == known  # every registered one, in whatever order they registered


def test_unknown_option_lists_accepted_ones():
    x, y = _xy()
    with pytest.raises(ValueError, match="unknown option.*'stepz'.*accepts:.*steps"):
        estimate_mi(x, y, estimator="infonce", stepz=10)
    with pytest.raises(ValueError, match="unknown reduction 'svd'"):
        estimate_mi(x, y, reduce="svd")
    with pytest.raises(ValueError, match="noise_std must be a number >= 0"):
        estimate_mi(x, y, noise_std=-1.0)


def test_a_diverging_critic_is_flagged_with_a_warning(monkeypatch):
    from lm_eval_emergence.estimators import neural

    real_loss = neural._training_loss

    def nan_for_second_pair(*args, **kwargs):
        loss, ema = real_loss(*args, **kwargs)
        return loss + torch.tensor([0.0, float("nan")]), ema

    monkeypatch.setattr(neural, "_training_loss", nan_for_second_pair)
    cases = [correlated_gaussian(500, 4, k=2, bits=2.0, seed=34 + i) for i in range(2)]
    with pytest.warns(RuntimeWarning, match="1 of 2 infonce estimates diverged"):
        fine, broken = estimate_mi_many(
            [c.x for c in cases], [c.y for c in cases], estimator="infonce", **FAST_NEURAL
        )
    assert not fine.diverged and broken.diverged
    assert math.isfinite(broken.bits)  # the value of the last finite checkpoint, flagged


def test_bad_numeric_options_name_the_fix():
    x, y = _xy()
    with pytest.raises(ValueError, match="batch_size must be an integer >= 2"):
        estimate_mi(x, y, estimator="infonce", batch_size=1)
    with pytest.raises(ValueError, match="eval_every must be an integer >= 1"):
        estimate_mi(x, y, estimator="infonce", eval_every=0)
    with pytest.raises(ValueError, match="shrinkage must be 'ledoit-wolf' or a number"):
        estimate_mi(x, y, estimator="gaussian", shrinkage="lw")


def test_gaussian_refuses_fewer_held_out_rows_than_dimensions():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(100, 40, generator=g), torch.randn(100, 40, generator=g)
    with pytest.raises(ValueError, match="25 held-out rows cannot fit a Gaussian in 32 dimensions"):
        estimate_mi(x, y, estimator="gaussian")


def test_batched_path_equals_single_path_across_readout_chunks():
    # the held-out read-out runs in chunks of 16 pairs: pairs on both sides of a boundary agree
    cases = [correlated_gaussian(300, 3, k=1, bits=0.1 * i, seed=40 + i) for i in range(18)]
    batched = estimate_mi_many(
        [c.x for c in cases], [c.y for c in cases], estimator="infonce", seed=1, **FAST_NEURAL
    )
    for i in (0, 15, 16, 17):
        alone = estimate_mi(cases[i].x, cases[i].y, estimator="infonce", seed=1, **FAST_NEURAL)
        assert batched[i].bits == pytest.approx(alone.bits, abs=1e-4)


def test_an_estimator_is_one_registered_function(monkeypatch):
    """A new estimator is a decorated function; the pipeline, options and IE settings see it."""
    from lm_eval_emergence.estimators import registry
    from lm_eval_emergence.settings import EstimationSettings

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @registry.register_estimator("constant-one", options={**registry.COMMON_OPTIONS, "nats": 1.0})
    def constant(x, y, rows, options, seed):
        n_pairs = x.shape[0]
        return registry.Outcome(
            nats=torch.full((n_pairs,), options["nats"]),
            stderr_nats=torch.zeros(n_pairs),
            diverged=torch.zeros(n_pairs, dtype=torch.bool),
            steps=torch.zeros(n_pairs),
            ceiling_bits=None,
        )

    case = correlated_gaussian(200, 4, k=1, bits=1.0, seed=0)
    est = estimate_mi(case.x, case.y, estimator="constant-one", nats=math.log(2))
    assert est.bits == pytest.approx(1.0) and est.n_test == 100 and est.estimator == "constant-one"
    assert "constant-one" in estimator_names()
    assert EstimationSettings("constant-one", {"nats": 2.0}).resolved_options()["nats"] == 2.0
    with pytest.raises(ValueError, match="already registered"):
        registry.register_estimator("constant-one", options={})(lambda *a: None)
    # reloading a module registers its own definitions again (notebooks' autoreload)
    import importlib

    from lm_eval_emergence.estimators import neural

    importlib.reload(neural)
    assert registry.get_estimator("infonce").estimate.__module__ == neural.__name__


def _floor_truth_bits(d: int, rho: float, kappa: float) -> float:
    """I(x + kappa z1; y + kappa z2) for d coordinate pairs of unit variance and correlation rho."""
    v = 1.0 + kappa**2
    return d * 0.5 * math.log2(v * v / (v * v - rho * rho))


@pytest.mark.parametrize("kappa", [0.5, 1.0, 2.0])
def test_gaussian_floor_recovers_its_closed_form(kappa):
    g = torch.Generator().manual_seed(0)
    n, d, rho = 40_000, 4, 0.8
    x = torch.randn(n, d, generator=g)
    y = rho * x + math.sqrt(1 - rho * rho) * torch.randn(n, d, generator=g)
    est = estimate_mi(x, 3.0 * y + 1.0, estimator="gaussian-floor", kappa=kappa)  # scale-free
    assert est.bits == pytest.approx(_floor_truth_bits(d, rho, kappa), abs=0.01)
    assert est.ceiling_bits is None and est.n_test == n and 0 < est.stderr_bits < 0.02


def test_gaussian_floor_is_finite_on_a_deterministic_map():
    """The case IE is made of: y a function of x. The floor gives rho = 1 its finite value."""
    x = torch.randn(5000, 3, generator=torch.Generator().manual_seed(1))
    est = estimate_mi(x, 2.0 * x - 1.0, estimator="gaussian-floor", kappa=1.0)
    assert est.bits == pytest.approx(_floor_truth_bits(3, 1.0, 1.0), abs=1e-4)
    assert not est.diverged


def test_gaussian_floor_stderr_matches_the_spread_over_samples():
    values, errors = [], []
    for seed in range(30):
        g = torch.Generator().manual_seed(100 + seed)
        x = torch.randn(2000, 4, generator=g)
        y = 0.6 * x + 0.8 * torch.randn(2000, 4, generator=g)
        est = estimate_mi(x, y, estimator="gaussian-floor", seed=seed)
        values.append(est.bits)
        errors.append(est.stderr_bits)
    spread = float(torch.tensor(values).std())
    assert 0.6 < (sum(errors) / len(errors)) / spread < 1.6


@pytest.mark.parametrize("kappa", [0, -1.0, "big", True])
def test_gaussian_floor_rejects_a_kappa_that_is_not_positive(kappa):
    x = torch.randn(100, 2)
    with pytest.raises(ValueError, match="kappa must be a number > 0"):
        estimate_mi(x, x, estimator="gaussian-floor", kappa=kappa)


def test_v_linear_recovers_the_gaussian_mi_and_reads_zero_on_independent_pairs():
    """With a vanishing floor the held-out linear-Gaussian usable information is the MI."""
    g = torch.Generator().manual_seed(0)
    n, d, rho = 20_000, 4, 0.8
    x = torch.randn(n, d, generator=g)
    y = rho * x + math.sqrt(1 - rho * rho) * torch.randn(n, d, generator=g)
    est = estimate_mi(x, y, estimator="v-linear", kappa=1e-3, ridge=1e-6)
    truth = -0.5 * d * math.log2(1 - rho * rho)
    assert abs(est.bits - truth) < 3 * est.stderr_bits + 0.01 and est.n_test == n // 2
    independent = estimate_mi(x, torch.randn(n, d, generator=g), estimator="v-linear")
    assert abs(independent.bits) < 3 * independent.stderr_bits + 0.005


def test_v_linear_is_finite_on_a_deterministic_map_with_its_known_value():
    # residuals are 0, so log q(y|x) is the floor's density at 0 and the gain is
    # d/2 log((1 + k^2) / k^2) + d/2 * 1 / (1 + k^2) nats on standardised coordinates
    x = torch.randn(4000, 3, generator=torch.Generator().manual_seed(2))
    est = estimate_mi(x, 2.0 * x + 1.0, estimator="v-linear", kappa=0.1, ridge=1e-9)
    k2 = 0.01
    truth_nats = 1.5 * math.log((1 + k2) / k2) + 1.5 / (1 + k2)
    assert est.bits == pytest.approx(truth_nats / math.log(2), abs=0.15)  # sd about 0.04


def test_v_linear_rejects_a_floor_that_is_not_positive():
    x = torch.randn(100, 2)
    with pytest.raises(ValueError, match="kappa must be a number > 0 \\(the covariance floor"):
        estimate_mi(x, x, estimator="v-linear", kappa=0.0)


# --------------------------------------------------------------------------------------------
# Streamed second moments (moments.py)


def _correlated(p: int = 3, n: int = 3000, d: int = 8, seed: int = 0):
    """Pairs with large means and scales (as residual streams have) and a known dependence."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(p, n, d, generator=g) * 4 + 300
    y = 0.3 * (x - 300) @ torch.randn(d, d, generator=g) + torch.randn(p, n, d, generator=g) - 80
    return x, y


def test_moments_in_batches_give_the_sample_covariances():
    from lm_eval_emergence.estimators.moments import PairMoments, jackknife_fold_ids

    x, y = _correlated()
    folds = jackknife_fold_ids(x.shape[1], 10, seed=0)
    moments = PairMoments.empty(10, 3, 8, 8)
    for start in range(0, x.shape[1], 257):  # uneven batches
        rows = slice(start, start + 257)
        moments.add_rows(x[:, rows], y[:, rows], folds[rows])
    covs = moments.covariances()
    z = torch.cat([x, y], dim=-1).double()
    expected = torch.stack([torch.cov(zp.T) for zp in z])
    torch.testing.assert_close(covs[0], expected, rtol=1e-10, atol=1e-9)
    keep = folds != 4
    torch.testing.assert_close(
        covs[5], torch.stack([torch.cov(zp[keep].T) for zp in z]), rtol=1e-10, atol=1e-9
    )
    assert moments.n == 3000 and covs.shape == (11, 3, 16, 16)


def test_packed_moments_hold_half_the_numbers_and_the_same_covariances():
    """What a capture streams into (issue 35): each fold's cross-products as the upper
    triangle, float64, in half the bytes; the covariances, merges and fold groups of the full
    matrices."""
    from lm_eval_emergence.estimators.moments import PairMoments, jackknife_fold_ids

    x, y = _correlated()
    folds = jackknife_fold_ids(x.shape[1], 10, seed=0)
    full = [PairMoments.empty(10, 3, 8, 8) for _ in range(2)]
    packed = [PairMoments.empty(10, 3, 8, 8, packed=True) for _ in range(2)]
    for start in range(0, x.shape[1], 257):
        rows = slice(start, start + 257)
        for part in (full, packed):
            part[(start // 257) % 2].add_rows(x[:, rows], y[:, rows], folds[rows])
    assert packed[0].cross.shape == (10, 3, 16 * 17 // 2)
    assert packed[0].cross.dtype == torch.float64 and packed[0].packed
    assert packed[0].nbytes - packed[0].sums.nbytes - 80 == 10 * 3 * 136 * 8
    assert full[0].nbytes - full[0].sums.nbytes - 80 == 10 * 3 * 256 * 8
    one, merged = full[0].merged(full[1:]), packed[0].merged(packed[1:])
    assert merged.packed
    torch.testing.assert_close(merged.covariances(), one.covariances(), rtol=1e-12, atol=1e-12)
    halves = [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    torch.testing.assert_close(
        merged.grouped_folds(halves).covariances(), one.grouped_folds(halves).covariances()
    )
    torch.testing.assert_close(
        merged.select([2]).covariances(), one.covariances()[:, 2:], rtol=1e-12, atol=1e-12
    )


def test_streamed_floor_equals_the_estimate_on_samples_and_ranks_merge():
    """Two 'ranks' streaming disjoint rows, merged, give the in-memory gaussian-floor numbers."""
    from lm_eval_emergence.estimators.api import estimate_mi_from_moments
    from lm_eval_emergence.estimators.moments import PairMoments, jackknife_fold_ids

    x, y = _correlated()
    on_samples = estimate_mi_many(list(x), list(y), estimator="gaussian-floor", seed=3)
    folds = jackknife_fold_ids(x.shape[1], 10, seed=3)
    ranks = [PairMoments.empty(10, 3, 8, 8) for _ in range(2)]
    for start in range(0, x.shape[1], 100):
        rows = slice(start, start + 100)
        ranks[(start // 100) % 2].add_rows(x[:, rows], y[:, rows], folds[rows])
    merged = ranks[0].merged(ranks[1:])
    streamed = estimate_mi_from_moments(merged, estimator="gaussian-floor", seed=3)
    for a, b in zip(on_samples, streamed, strict=True):
        assert b.bits == pytest.approx(a.bits, abs=1e-5)
        assert b.stderr_bits == pytest.approx(a.stderr_bits, abs=1e-6)
        assert b.n == a.n == 3000
    assert on_samples[0].bits > 1.0  # a real dependence, not two zeros agreeing


def test_weighted_rows_are_repeated_rows():
    from lm_eval_emergence.estimators.moments import PairMoments

    x, y = _correlated(p=1, n=5)
    counts = torch.tensor([[2.0, 0.0, 1.0, 3.0, 1.0], [0.0, 1.0, 1.0, 0.0, 2.0]])
    weighted = PairMoments.empty(2, 1, 8, 8)
    weighted.add_weighted(x, y, counts)
    repeated = PairMoments.empty(2, 1, 8, 8)
    for fold in range(2):
        index = torch.repeat_interleave(torch.arange(5), counts[fold].long())
        repeated.add_rows(x[:, index], y[:, index], torch.full((len(index),), fold))
    torch.testing.assert_close(weighted.covariances(), repeated.covariances())


def test_moments_flag_a_constant_side_and_refuse_what_needs_samples():
    from lm_eval_emergence.estimators.api import estimate_mi_from_moments, moments_unsupported
    from lm_eval_emergence.estimators.moments import PairMoments

    x, y = _correlated(p=2, n=200)
    x[1] = 5.0  # pair 1: x the same in every row
    moments = PairMoments.empty(10, 2, 8, 8)
    moments.add_rows(x, y, torch.arange(200) % 10)
    assert moments.constant().tolist() == [False, True]
    assert moments_unsupported("gaussian-floor", {}) is None
    assert "needs the samples" in moments_unsupported("infonce", {})
    assert "noise_std" in moments_unsupported("gaussian-floor", {"noise_std": 0.1})
    with pytest.raises(ValueError, match="estimate from the samples"):
        estimate_mi_from_moments(moments, estimator="gaussian-floor", null=True)


# --------------------------------------------------------------------------------------------
# Finite-sample bias corrections (option `bias`)


#: (k, N) where the plug-in gaussian-floor misses max(0.05 bit, 2%): k not small against N.
_PLUGIN_BIASED = {(32, 256), (64, 256), (64, 1024)}


@pytest.mark.parametrize("k", [8, 32, 64])
def test_floor_corrections_land_within_the_gate_of_the_truth(k):
    """Mean of 3 draws at N = 256 ... 8,192: the jackknife within max(0.05 bit, 2%) of the
    known MI everywhere, the first-order analytic one everywhere but k = 64 at N = 256; the
    plug-in outside it exactly where k is not small against N."""
    case = LinearGaussian.of(k, seed=k)
    truth = case.floor_bits(0.25)
    tol = max(0.05, 0.02 * truth)
    for n in (256, 1024, 4096, 8192):
        bits = {b: 0.0 for b in ("none", "jackknife", "analytic")}
        for rep, z in enumerate(case.samples(n, 3, seed=n + k)):
            for b in bits:
                est = estimate_mi(z[:, :k], z[:, k:], estimator="gaussian-floor", bias=b, seed=rep)
                bits[b] += est.bits / 3
        error = {b: v - truth for b, v in bits.items()}
        assert abs(error["jackknife"]) <= tol, (n, error)
        if (k, n) != (64, 256):  # first order is not enough at 128 dimensions on 256 rows
            assert abs(error["analytic"]) <= tol, (n, error)
        assert (error["none"] > tol) is ((k, n) in _PLUGIN_BIASED), (n, error)  # biased up


def test_the_corrected_value_s_stderr_is_its_spread_over_fresh_samples():
    values, stderrs = [], []
    for rep, z in enumerate(LinearGaussian.of(8, seed=1).samples(1024, 30, seed=7)):
        est = estimate_mi(
            z[:, :8], z[:, 8:], estimator="gaussian-floor", bias="jackknife", seed=rep
        )
        values.append(est.bits)
        stderrs.append(est.stderr_bits)
    spread = float(torch.tensor(values).std())
    assert 0.67 < sum(stderrs) / len(stderrs) / spread < 1.5


@pytest.mark.parametrize("bias", ["jackknife", "analytic"])
def test_streamed_corrections_equal_the_corrections_on_samples(bias):
    from lm_eval_emergence.estimators.api import estimate_mi_from_moments
    from lm_eval_emergence.estimators.moments import PairMoments, jackknife_fold_ids

    x, y = _correlated()
    on_samples = estimate_mi_many(list(x), list(y), estimator="gaussian-floor", seed=3, bias=bias)
    folds = jackknife_fold_ids(x.shape[1], 10, seed=3)
    moments = PairMoments.empty(10, 3, 8, 8)
    moments.add_rows(x, y, folds)
    streamed = estimate_mi_from_moments(moments, estimator="gaussian-floor", seed=3, bias=bias)
    plain = estimate_mi_many(list(x), list(y), estimator="gaussian-floor", seed=3, bias="none")
    for a, b, c in zip(on_samples, streamed, plain, strict=True):
        assert b.bits == pytest.approx(a.bits, abs=1e-5)
        assert b.stderr_bits == pytest.approx(a.stderr_bits, abs=1e-6)
        assert a.bits < c.bits  # the correction removes an upward bias


def test_jackknife_bias_correction_removes_a_known_one_over_n_term():
    from lm_eval_emergence.estimators.moments import jackknife_bias_corrected

    rows = torch.tensor([1000.0, 900.0, 899.0, 901.0, 880.0], dtype=torch.float64)
    values = 2.0 + 7.0 / rows  # a value with bias exactly 7 / n
    assert float(jackknife_bias_corrected(values, rows)) == pytest.approx(2.0, abs=1e-12)


def test_v_linear_jackknife_removes_the_fitting_bias():
    """Fitted on N/2 rows, the held-out gain is biased down by the fit's noise; the jackknife
    over the training rows lands within the gate where the plain value does not."""
    k = 32
    case = LinearGaussian.of(k, seed=2)
    truth = case.v_linear_bits(0.1)
    tol = max(0.05, 0.02 * truth)
    for n, plain_fails in ((2048, True), (8192, False)):
        bits = {"none": 0.0, "jackknife": 0.0}
        for rep, z in enumerate(case.samples(n, 3, seed=n)):
            for b in bits:
                est = estimate_mi(
                    z[:, :k], z[:, k:], estimator="v-linear", bias=b, ridge=1e-6, seed=rep
                )
                bits[b] += est.bits / 3
        assert abs(bits["jackknife"] - truth) <= tol, (n, bits, truth)
        assert (bits["none"] < truth - tol) is plain_fails, (n, bits, truth)


def test_an_unknown_bias_correction_is_named():
    x = torch.randn(300, 4)
    with pytest.raises(ValueError, match="bias must be one of none, jackknife, analytic"):
        estimate_mi(x, x + 1, estimator="gaussian-floor", bias="bootstrap")
    with pytest.raises(ValueError, match="bias must be one of none, jackknife"):
        estimate_mi(x, x + 1, estimator="v-linear", bias="analytic")
