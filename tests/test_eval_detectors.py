"""Tests for sidecar.eval.detectors: Killourhy & Maxion's one-class detectors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis

from sidecar.eval.detectors import (
    CLASSIC_DETECTORS,
    EuclideanDetector,
    KMeansDetector,
    MahalanobisDetector,
    ManhattanDetector,
    NearestNeighbourMahalanobisDetector,
    OutlierCountDetector,
    ScaledManhattanDetector,
    kmeans,
)


def _arr(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64)


@pytest.mark.parametrize(
    ("detector", "train", "test", "expected"),
    [
        (EuclideanDetector(), [[0, 0], [2, 0]], [[1, 0], [4, 4]], [0.0, 25.0]),
        (ManhattanDetector(), [[0, 0], [2, 0]], [[1, 0], [4, 4]], [0.0, 7.0]),
        (ScaledManhattanDetector(), [[0, 0], [2, 4]], [[2, 2], [1, 6]], [1.0, 2.0]),
        (MahalanobisDetector(), [[1, 0], [-1, 0], [0, 2], [0, -2]], [[1, 0], [0, 2], [1, 2]],
         [1.5, 1.5, 3.0]),
        (OutlierCountDetector(), [[0, 0], [2, 2]], [[1, 1], [5, 1], [5, 5], [-2, 1]],
         [0.0, 1.0, 2.0, 1.0]),
        (NearestNeighbourMahalanobisDetector(), [[1, 0], [-1, 0], [0, 2], [0, -2]],
         [[1, 0], [0, -2]], [0.0, 0.0]),
    ],
    ids=["euclidean-squared", "manhattan", "scaled-manhattan-mad", "mahalanobis-cov-n-1",
         "outlier-count-z1.96", "nn-mahalanobis-on-a-training-point"],
)
def test_detector_known_scores(detector: object, train: list[list[float]],
                               test: list[list[float]], expected: list[float]) -> None:
    """Each detector's score on a tiny hand-worked case."""
    fitted = detector.fit(_arr(train))  # type: ignore[attr-defined]
    assert fitted.score(_arr(test)).tolist() == pytest.approx(expected)


def test_mahalanobis_matches_scipy() -> None:
    """The squared distance equals scipy's mahalanobis(u, v, inv(cov)) ** 2."""
    rng = np.random.default_rng(0)
    train = rng.normal(size=(40, 4)) @ rng.normal(size=(4, 4))
    test = rng.normal(size=(5, 4))
    det = MahalanobisDetector().fit(train)
    vi = np.linalg.inv(np.cov(train, rowvar=False))
    want = [mahalanobis(t, train.mean(axis=0), vi) ** 2 for t in test]
    assert det.score(test).tolist() == pytest.approx(want)


def test_mahalanobis_with_fewer_samples_than_features_is_finite() -> None:
    """A singular covariance falls back to the pseudo-inverse and stays finite."""
    rng = np.random.default_rng(0)
    det = MahalanobisDetector().fit(rng.normal(size=(5, 12)))
    assert np.all(np.isfinite(det.score(rng.normal(size=(3, 12)))))


def test_kmeans_finds_three_separated_clusters() -> None:
    """Three tight clusters give three centroids; the score is the distance to the nearest."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    train = np.vstack([c + rng.normal(0, 0.1, size=(10, 2)) for c in centres])
    det = KMeansDetector().fit(train)
    got = sorted(map(tuple, det.centroids_.round(0).tolist()))
    assert got == sorted(map(tuple, centres.tolist()))
    assert det.score(np.array([[10.0, 0.0], [5.0, 5.0]])).tolist() == pytest.approx(
        [0.0, np.sqrt(50)], abs=0.1)


def test_kmeans_is_deterministic_for_a_seed() -> None:
    """The same seed gives the same centroids."""
    data = np.random.default_rng(0).normal(size=(30, 3))
    assert np.array_equal(kmeans(data, 3, seed=7), kmeans(data, 3, seed=7))


@pytest.mark.parametrize("name", sorted(CLASSIC_DETECTORS), ids=sorted(CLASSIC_DETECTORS))
def test_every_detector_ranks_a_shifted_impostor_higher(name: str) -> None:
    """On Gaussian data every detector scores a shifted population above the user."""
    rng = np.random.default_rng(0)
    train = rng.normal(0, 1, size=(30, 6))
    genuine = rng.normal(0, 1, size=(20, 6))
    impostor = rng.normal(3, 1, size=(20, 6))
    det = CLASSIC_DETECTORS[name]().fit(train)
    assert np.median(det.score(impostor)) > np.median(det.score(genuine))


@pytest.mark.parametrize("name", sorted(CLASSIC_DETECTORS), ids=sorted(CLASSIC_DETECTORS))
def test_wrong_test_dimension_is_rejected(name: str) -> None:
    """Scoring vectors of another dimension raises ValueError."""
    det = CLASSIC_DETECTORS[name]().fit(np.random.default_rng(0).normal(size=(10, 3)))
    with pytest.raises(ValueError):
        det.score(np.zeros((2, 4)))
