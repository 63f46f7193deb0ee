"""Distance → tail → score: chi-square, scaled and empirical calibrations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from sidecar.scoring.calibration import (
    PRIOR_SCALE,
    SCALE_BOUNDS,
    GenuineSketch,
    bonferroni_combine,
    calibrated_tail,
    chi2_cdf,
    chi2_quantile90,
    chi2_tail,
    fisher_combine,
    score_from_tail,
    tail_from_score,
)

DFS = [1, 2, 5, 9, 31, 80]
DF_IDS = [f"df{d}" for d in DFS]


@pytest.mark.parametrize("df", DFS, ids=DF_IDS)
def test_chi2_cdf_matches_scipy_stats(df: int) -> None:
    """chi2_cdf equals scipy.stats.chi2.cdf over a grid of distances."""
    d2 = np.linspace(0.0, 4.0 * df + 20, 57)
    np.testing.assert_allclose(chi2_cdf(d2, df), stats.chi2.cdf(d2, df), rtol=1e-12,
                               atol=1e-15)


@pytest.mark.parametrize("df", DFS, ids=DF_IDS)
def test_chi2_tail_matches_scipy_sf_far_into_the_tail(df: int) -> None:
    """chi2_tail equals chi2.sf, including tails far below 1 − cdf's precision."""
    for d2 in (0.5, df, 3.0 * df + 40, 10.0 * df + 200):
        assert chi2_tail(d2, df) == pytest.approx(stats.chi2.sf(d2, df), rel=1e-10)


@pytest.mark.parametrize("df", [1, 9, 64, 65, 200], ids=["df1", "df9", "df64", "df65-untabled",
                                                         "df200"])
def test_chi2_quantile90_matches_ppf(df: int) -> None:
    """The tabulated 0.9 quantile equals chi2.ppf(0.9, df)."""
    assert chi2_quantile90(df) == pytest.approx(stats.chi2.ppf(0.9, df), rel=1e-10)


@pytest.mark.parametrize(("q", "score"), [(1.0, 0.0), (0.5, 0.0670), (1e-3, 0.4988),
                                          (1e-6, 0.7488), (0.0, 1.0)],
                         ids=["certain", "coin", "one-in-1e3", "one-in-1e6", "impossible"])
def test_score_scale_named_points(q: float, score: float) -> None:
    """score = 1 − q^0.1: 0.5 ≈ 1-in-1000, 0.75 ≈ 1-in-a-million."""
    assert score_from_tail(q) == pytest.approx(score, abs=1e-4)
    if q > 0.0:
        assert tail_from_score(score_from_tail(q)) == pytest.approx(q, rel=1e-9)


def test_fisher_matches_scipy_combine_pvalues() -> None:
    """fisher_combine equals scipy.stats.combine_pvalues(method='fisher')."""
    for tails in ([0.3], [0.2, 0.04], [0.01, 0.5, 0.9], [1e-5, 1e-3, 0.2, 0.7]):
        ref = stats.combine_pvalues(tails, method="fisher").pvalue
        assert fisher_combine(tails) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("tails", [[0.01, 0.02, 0.03], [0.001, 0.002]],
                         ids=["three-mild", "two-small"])
def test_fisher_accumulates_consistent_evidence(tails: list[float]) -> None:
    """Several modalities each a bit off (an impostor) beat min-with-Bonferroni."""
    assert fisher_combine(tails) < min(tails)
    assert fisher_combine(tails) < bonferroni_combine(tails)


def test_fisher_survives_zero_tails_and_rejects_empty() -> None:
    """A zero tail is floored (no log(0)); nothing to combine is an error."""
    assert 0.0 <= fisher_combine([0.0, 0.5]) < 1e-290
    with pytest.raises(ValueError):
        fisher_combine([])


def test_sketch_scale_is_prior_when_empty_and_bounded() -> None:
    """Empty sketch → the prior scale; the scale stays within its bounds."""
    sketch = GenuineSketch(16)
    assert sketch.scale() == PRIOR_SCALE
    for _ in range(16):
        sketch.add(1e-6, 9)
    assert sketch.scale() >= SCALE_BOUNDS[0]
    for _ in range(16):
        sketch.add(1e9, 9)
    assert sketch.scale() == SCALE_BOUNDS[1]


@pytest.mark.parametrize("true_scale", [1.0, 3.0], ids=["calibrated", "inflated-x3"])
def test_sketch_recovers_the_distance_scale(true_scale: float) -> None:
    """Genuine distances s·χ²(df) give a scale near s (blended with the prior)."""
    rng = np.random.default_rng(0)
    sketch = GenuineSketch(512)
    for d2 in rng.chisquare(9, size=512) * true_scale:
        sketch.add(float(d2), 9)
    expected = (512 * true_scale + 8 * PRIOR_SCALE) / 520
    assert sketch.scale() == pytest.approx(max(expected, 1.0), rel=0.1)


@pytest.mark.parametrize("method", ["chi2", "scaled_chi2", "empirical"])
def test_calibrated_tails_are_near_uniform_for_genuine_distances(method: str) -> None:
    """For s·χ² genuine data each method puts ≈ the nominal share below q = 0.05.

    (A large sketch: this checks the method, not the noise of 64 samples.)
    """
    rng = np.random.default_rng(1)
    sketch = GenuineSketch(1024)
    scale = 1.0 if method == "chi2" else 2.0
    for d2 in rng.chisquare(6, size=1024) * scale:
        sketch.add(float(d2), 6)
    fresh = rng.chisquare(6, size=4000) * scale
    tails = np.array([calibrated_tail(float(d), 6, method, sketch) for d in fresh])
    assert np.mean(tails < 0.05) == pytest.approx(0.05, abs=0.03)
    assert np.all((tails >= 0) & (tails <= 1))


def test_empirical_tail_is_monotone_and_continues_beyond_the_sketch() -> None:
    """The empirical tail decreases with distance and keeps shrinking past the maximum."""
    rng = np.random.default_rng(2)
    sketch = GenuineSketch(64)
    for d2 in rng.chisquare(5, size=64):
        sketch.add(float(d2), 5)
    d2s = np.linspace(0.0, 200.0, 400)
    tails = [calibrated_tail(float(d), 5, "empirical", sketch) for d in d2s]
    assert all(a >= b for a, b in itertools.pairwise(tails))
    assert tails[-1] < 1e-20


def test_sketch_rejects_bad_distances_and_keeps_the_latest() -> None:
    """Non-finite distances are refused; the sketch keeps only its last ``size`` ratios."""
    sketch = GenuineSketch(4)
    with pytest.raises(ValueError):
        sketch.add(float("nan"), 3)
    for i in range(10):
        sketch.add(float(i), 1)
    assert len(sketch) == 4
    assert sketch.ratios[-1] == pytest.approx(9.0 / chi2_quantile90(1), rel=1e-6)
