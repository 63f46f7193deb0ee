"""OnlineShrunkGaussian against naive batch references."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy.linalg import pinvh
from scipy.spatial.distance import mahalanobis

from sidecar.scoring.estimator import OnlineShrunkGaussian, whitening_matrix


def _data(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d))
    return rng.standard_normal((n, d)) @ mix + rng.standard_normal(d) * 3


def _fit(x: np.ndarray, **kw: Any) -> OnlineShrunkGaussian:
    est = OnlineShrunkGaussian(x.shape[1], **kw)
    for row in x:
        est.learn_one(row)
    return est


@pytest.mark.parametrize(("n", "d"), [(2, 1), (3, 4), (50, 9), (200, 31)],
                         ids=["n2-d1", "n3-d4", "n50-d9", "n200-d31"])
def test_no_forgetting_no_shrinkage_equals_batch(n: int, d: int) -> None:
    """half_life=inf, prior 0, shrinkage 0: exactly np.mean and np.cov(bias=True)."""
    x = _data(n, d)
    est = _fit(x, half_life=math.inf, prior_strength=0.0, shrinkage=0.0)
    np.testing.assert_allclose(est.location_, x.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.covariance_, np.atleast_2d(np.cov(x.T, bias=True)),
                               rtol=1e-9, atol=1e-12)
    assert est.n_seen_ == n
    assert est.n_effective_ == pytest.approx(n)


@pytest.mark.parametrize("half_life", [1.0, 7.5, 50.0], ids=["hl1", "hl7.5", "hl50"])
def test_exponential_weights_equal_weighted_batch(half_life: float) -> None:
    """With forgetting, mean/cov equal an explicitly weighted batch computation."""
    x = _data(80, 5, seed=1)
    est = _fit(x, half_life=half_life, prior_strength=0.0, shrinkage=0.0)
    w = 0.5 ** (np.arange(len(x))[::-1] / half_life)
    mean = (w[:, None] * x).sum(0) / w.sum()
    dev = x - mean
    cov = (w[:, None, None] * dev[:, :, None] * dev[:, None, :]).sum(0) / w.sum()
    np.testing.assert_allclose(est.location_, mean, rtol=1e-10)
    np.testing.assert_allclose(est.covariance_, cov, rtol=1e-8, atol=1e-12)
    assert est.n_effective_ == pytest.approx(w.sum() ** 2 / (w ** 2).sum())


def test_shrinkage_and_prior_follow_the_documented_formula() -> None:
    """Σ = (n_eff·((1−ρ)C + ρ·diag C) + ν₀·diag(prior)) / (n_eff + ν₀)."""
    x = _data(12, 4, seed=2)
    prior = np.array([0.5, 1.0, 2.0, 4.0])
    est = _fit(x, half_life=math.inf, prior_strength=3.0, prior_variance=prior,
               shrinkage=0.25)
    c = np.cov(x.T, bias=True)
    c_rho = 0.75 * c + 0.25 * np.diag(np.diag(c))
    expected = (12 * c_rho + 3.0 * np.diag(prior)) / 15.0
    np.testing.assert_allclose(est.covariance_, expected, rtol=1e-10)


def test_default_shrinkage_fades_with_data() -> None:
    """The automatic ρ = d/(d + n_eff) is strong early and small later."""
    x = _data(400, 6, seed=3)
    early = _fit(x[:3], half_life=math.inf, prior_strength=0.0)
    late = _fit(x, half_life=math.inf, prior_strength=0.0)
    c = np.cov(x.T, bias=True)
    off = ~np.eye(6, dtype=bool)
    assert np.abs(early.covariance_[off]).sum() < np.abs(np.cov(x[:3].T, bias=True)[off]).sum()
    np.testing.assert_allclose(late.covariance_[off], c[off] * (1 - 6 / 406), rtol=1e-9)


@pytest.mark.parametrize("n", [1, 2, 3], ids=["1-window", "2-windows", "3-windows"])
def test_defaults_give_positive_definite_covariance_from_few_windows(n: int) -> None:
    """Default shrinkage keeps the covariance positive definite after 1–3 windows."""
    est = _fit(_data(n, 9, seed=4))
    assert np.linalg.eigvalsh(est.covariance_).min() > 0.0
    assert np.all(np.isfinite(est.precision_))


def test_covariance_before_any_window_is_the_prior() -> None:
    """An unlearned estimator reports the prior diagonal."""
    est = OnlineShrunkGaussian(3, prior_variance=[1.0, 2.0, 3.0])
    np.testing.assert_array_equal(est.covariance_, np.diag([1.0, 2.0, 3.0]))


def test_precision_is_pinvh_of_covariance() -> None:
    """precision_ is the (pseudo-)inverse of covariance_."""
    est = _fit(_data(30, 7, seed=5))
    np.testing.assert_allclose(est.precision_, pinvh(est.covariance_), rtol=1e-8, atol=1e-10)


def test_whitening_of_singular_covariance_is_the_pseudo_inverse() -> None:
    """A rank-deficient covariance whitens like pinvh (null directions dropped)."""
    v = np.array([[1.0, 2.0, 0.0]])
    cov = v.T @ v
    a = whitening_matrix(cov)
    assert a.shape == (1, 3)
    np.testing.assert_allclose(a.T @ a, pinvh(cov), atol=1e-12)


@pytest.mark.parametrize("d", [2, 9, 31], ids=["d2", "d9", "d31"])
def test_squared_mahalanobis_matches_scipy(d: int) -> None:
    """squared_mahalanobis == scipy's mahalanobis(u, v, VI) ** 2 with VI = precision_."""
    x = _data(60, d, seed=6)
    est = _fit(x)
    rng = np.random.default_rng(7)
    for u in rng.standard_normal((5, d)) * 3:
        ref = mahalanobis(u, est.location_, est.precision_) ** 2
        assert est.squared_mahalanobis(u) == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("observed", [[0], [0, 2], [1, 3, 4], [0, 1, 2, 3, 4]],
                         ids=["one", "two", "three", "all"])
def test_masked_distance_is_the_naive_marginal(observed: list[int]) -> None:
    """With a mask, the distance uses the sub-mean and sub-covariance of observed dims."""
    x = _data(40, 5, seed=8)
    est = _fit(x)
    mask = np.zeros(5, dtype=bool)
    mask[observed] = True
    u = np.random.default_rng(9).standard_normal(5) * 2
    u_masked = u.copy()
    u_masked[~mask] = 1e6  # ignored features may hold anything
    sub = est.covariance_[np.ix_(mask, mask)]
    diff = u[mask] - est.location_[mask]
    naive = float(diff @ np.linalg.inv(sub) @ diff)
    assert est.squared_mahalanobis(u_masked, mask) == pytest.approx(naive, rel=1e-9)


def test_learning_with_missing_features_keeps_their_variance() -> None:
    """Conditional imputation keeps an often-missing feature's variance honest."""
    rng = np.random.default_rng(10)
    cov = np.array([[1.0, 0.6, 0.0], [0.6, 1.0, 0.0], [0.0, 0.0, 4.0]])
    x = rng.multivariate_normal([0.0, 1.0, 2.0], cov, size=3000)
    masks = np.ones_like(x, dtype=bool)
    masks[rng.random(len(x)) < 0.5, 2] = False
    est = OnlineShrunkGaussian(3, half_life=math.inf, prior_strength=1.0)
    for row, m in zip(x, masks, strict=True):
        est.learn_one(row, m)
    np.testing.assert_allclose(est.location_, [0.0, 1.0, 2.0], atol=0.15)
    np.testing.assert_allclose(np.diag(est.covariance_), np.diag(cov), rtol=0.12)


@pytest.mark.parametrize(("x", "mask", "match"), [
    ([np.nan, 0.0], None, "finite"),
    ([0.0, 0.0], [False, False], "no observed"),
], ids=["nan", "nothing-observed"])
def test_learn_one_rejects_bad_input(x: list[float], mask: list[bool] | None,
                                     match: str) -> None:
    """Non-finite observed values and empty masks are rejected."""
    est = OnlineShrunkGaussian(2)
    with pytest.raises(ValueError, match=match):
        est.learn_one(x, mask)


def test_missing_values_may_be_nan() -> None:
    """A masked-out feature may be NaN."""
    est = OnlineShrunkGaussian(2)
    est.learn_one([1.0, 2.0])
    est.learn_one([np.nan, 2.5], [False, True])
    assert np.all(np.isfinite(est.location_))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"dim": 0}, "dim"),
    ({"half_life": 0.0}, "half_life"),
    ({"prior_strength": -1.0}, "prior_strength"),
    ({"prior_variance": 0.0}, "prior_variance"),
    ({"shrinkage": 1.5}, "shrinkage"),
], ids=["dim", "half-life", "prior-strength", "prior-variance", "shrinkage"])
def test_constructor_validates(kwargs: dict[str, Any], match: str) -> None:
    """Bad hyper-parameters are rejected with a message naming them."""
    args: dict[str, Any] = {"dim": 2, **kwargs}
    dim = int(args.pop("dim"))
    with pytest.raises(ValueError, match=match):
        OnlineShrunkGaussian(dim, **args)


def test_from_state_restores_an_equivalent_estimator() -> None:
    """from_state rebuilds the same covariance and distances."""
    est = _fit(_data(20, 4, seed=11))
    copy = OnlineShrunkGaussian.from_state(
        est.prior_variance_, half_life=est.half_life, prior_strength=est.prior_strength,
        location=est.location_.copy(), scatter=est.scatter_.copy(),
        weight_sum=est.weight_sum_, weight_sq_sum=est.weight_sq_sum_, n_seen=est.n_seen_)
    np.testing.assert_array_equal(copy.covariance_, est.covariance_)
    u = np.ones(4)
    assert copy.squared_mahalanobis(u) == est.squared_mahalanobis(u)
    with pytest.raises(ValueError, match="weights"):
        OnlineShrunkGaussian.from_state(
            est.prior_variance_, half_life=50.0, prior_strength=1.0,
            location=est.location_, scatter=est.scatter_, weight_sum=est.weight_sum_,
            weight_sq_sum=est.weight_sum_ ** 2 * 2, n_seen=est.n_seen_)
