"""One-class anomaly detectors exactly as Killourhy & Maxion (DSN 2009) define them.

Every detector is trained on one user's samples only (``fit(train)`` with
``train`` of shape ``(n, d)``) and returns an anomaly score per test sample
(``score(test)`` with ``test`` of shape ``(m, d)`` → shape ``(m,)``); higher means
more likely an impostor.  The scores feed :mod:`sidecar.eval.metrics`.

Where the paper leaves a numerical detail open, the choice is written in the
class docstring (pseudo-inverse for a singular covariance, a floor for zero
spreads, how k-means is seeded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import pinvh

FloatArray = NDArray[np.float64]

_SPREAD_FLOOR: Final = 1e-9
"""Spreads (std, mean absolute deviation) below this are raised to it so that a
feature that never varied in training does not divide by zero."""

__all__ = [
    "CLASSIC_DETECTORS",
    "Detector",
    "EuclideanDetector",
    "KMeansDetector",
    "MahalanobisDetector",
    "ManhattanDetector",
    "NearestNeighbourMahalanobisDetector",
    "OutlierCountDetector",
    "ScaledManhattanDetector",
    "kmeans",
]


class Detector(Protocol):
    """A one-class detector: learn one user, then score samples (high = anomalous)."""

    def fit(self, train: FloatArray) -> Detector:
        """Learn from ``train``, shape ``(n, d)``; returns ``self``."""
        ...

    def score(self, test: FloatArray) -> FloatArray:
        """Anomaly score of each row of ``test`` (shape ``(m, d)``) → shape ``(m,)``."""
        ...


def _check_train(train: FloatArray, min_rows: int = 1) -> FloatArray:
    arr = np.asarray(train, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < min_rows:
        raise ValueError(f"train must have shape (n >= {min_rows}, d), got {arr.shape}")
    return arr


def _check_test(test: FloatArray, dim: int) -> FloatArray:
    arr = np.asarray(test, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"test must have shape (m, {dim}), got {arr.shape}")
    return arr


class EuclideanDetector:
    """Squared Euclidean distance to the training mean vector."""

    def __init__(self) -> None:
        self.mean_: FloatArray = np.zeros(0)

    def fit(self, train: FloatArray) -> EuclideanDetector:
        self.mean_ = _check_train(train).mean(axis=0)
        return self

    def score(self, test: FloatArray) -> FloatArray:
        diff = _check_test(test, self.mean_.size) - self.mean_
        return np.asarray(np.einsum("ij,ij->i", diff, diff), dtype=np.float64)


class ManhattanDetector:
    """Manhattan (city-block) distance to the training mean vector."""

    def __init__(self) -> None:
        self.mean_: FloatArray = np.zeros(0)

    def fit(self, train: FloatArray) -> ManhattanDetector:
        self.mean_ = _check_train(train).mean(axis=0)
        return self

    def score(self, test: FloatArray) -> FloatArray:
        diff = np.abs(_check_test(test, self.mean_.size) - self.mean_)
        return np.asarray(diff.sum(axis=1), dtype=np.float64)


class ScaledManhattanDetector:
    """Σ |x_i − mean_i| / a_i with a_i the mean absolute deviation of feature i
    from its training mean (Araújo et al. 2004, as used by Killourhy & Maxion)."""

    def __init__(self) -> None:
        self.mean_: FloatArray = np.zeros(0)
        self.scale_: FloatArray = np.zeros(0)

    def fit(self, train: FloatArray) -> ScaledManhattanDetector:
        arr = _check_train(train)
        self.mean_ = arr.mean(axis=0)
        self.scale_ = np.maximum(np.abs(arr - self.mean_).mean(axis=0), _SPREAD_FLOOR)
        return self

    def score(self, test: FloatArray) -> FloatArray:
        diff = np.abs(_check_test(test, self.mean_.size) - self.mean_)
        return np.asarray((diff / self.scale_).sum(axis=1), dtype=np.float64)


class MahalanobisDetector:
    """(x − mean)ᵀ S⁻¹ (x − mean) with S the training covariance (``np.cov``, n−1).

    When S is singular (fewer training samples than features, as for MOBIKEY's
    "all" set) S⁻¹ is the Moore-Penrose pseudo-inverse (``scipy.linalg.pinvh``);
    the paper had more samples than features and simply inverted S.
    """

    def __init__(self) -> None:
        self.mean_: FloatArray = np.zeros(0)
        self.precision_: FloatArray = np.zeros((0, 0))

    def fit(self, train: FloatArray) -> MahalanobisDetector:
        arr = _check_train(train, min_rows=2)
        self.mean_ = arr.mean(axis=0)
        cov = np.atleast_2d(np.cov(arr, rowvar=False))
        self.precision_ = np.asarray(pinvh(cov), dtype=np.float64)
        return self

    def score(self, test: FloatArray) -> FloatArray:
        diff = _check_test(test, self.mean_.size) - self.mean_
        return np.asarray(np.einsum("ij,jk,ik->i", diff, self.precision_, diff), dtype=np.float64)


class NearestNeighbourMahalanobisDetector:
    """Mahalanobis distance (training covariance, pseudo-inverse if singular) from
    the test vector to its nearest training vector."""

    def __init__(self) -> None:
        self.train_: FloatArray = np.zeros((0, 0))
        self.precision_: FloatArray = np.zeros((0, 0))

    def fit(self, train: FloatArray) -> NearestNeighbourMahalanobisDetector:
        arr = _check_train(train, min_rows=2)
        self.train_ = arr
        self.precision_ = np.asarray(pinvh(np.atleast_2d(np.cov(arr, rowvar=False))))
        return self

    def score(self, test: FloatArray) -> FloatArray:
        x = _check_test(test, self.train_.shape[1])
        diff = x[:, None, :] - self.train_[None, :, :]  # (m, n, d)
        d2 = np.einsum("mnd,de,mne->mn", diff, self.precision_, diff)
        return np.asarray(np.sqrt(np.maximum(d2.min(axis=1), 0.0)), dtype=np.float64)


class OutlierCountDetector:
    """Number of features whose z-score against the training mean and standard
    deviation (n−1) exceeds 1.96 in absolute value (the "z-score" detector)."""

    Z_LIMIT: Final = 1.96

    def __init__(self) -> None:
        self.mean_: FloatArray = np.zeros(0)
        self.std_: FloatArray = np.zeros(0)

    def fit(self, train: FloatArray) -> OutlierCountDetector:
        arr = _check_train(train, min_rows=2)
        self.mean_ = arr.mean(axis=0)
        self.std_ = np.maximum(arr.std(axis=0, ddof=1), _SPREAD_FLOOR)
        return self

    def score(self, test: FloatArray) -> FloatArray:
        z = (_check_test(test, self.mean_.size) - self.mean_) / self.std_
        return np.asarray((np.abs(z) > self.Z_LIMIT).sum(axis=1), dtype=np.float64)


def kmeans(data: FloatArray, k: int, *, seed: int = 0, n_init: int = 10,
           max_iter: int = 100) -> FloatArray:
    """Lloyd's k-means with k-means++ seeding; best of ``n_init`` seeded runs.

    ``data`` has shape ``(n, d)``; returns the centroids, shape ``(min(k, n), d)``.
    Deterministic for a given ``seed``.
    """
    arr = _check_train(data)
    k = min(k, arr.shape[0])
    rng = np.random.default_rng(seed)
    best: FloatArray | None = None
    best_inertia = np.inf
    for _ in range(n_init):
        centroids = _kmeans_pp(arr, k, rng)
        for _ in range(max_iter):
            d2 = ((arr[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
            labels = d2.argmin(axis=1)
            new = centroids.copy()
            for j in range(k):
                members = arr[labels == j]
                if members.size:
                    new[j] = members.mean(axis=0)
            if np.allclose(new, centroids):
                centroids = new
                break
            centroids = new
        inertia = float(((arr[:, None, :] - centroids[None]) ** 2).sum(axis=2).min(axis=1).sum())
        if inertia < best_inertia:
            best, best_inertia = centroids, inertia
    assert best is not None
    return best


def _kmeans_pp(arr: FloatArray, k: int, rng: np.random.Generator) -> FloatArray:
    centroids = [arr[rng.integers(arr.shape[0])]]
    for _ in range(1, k):
        d2 = ((arr[:, None, :] - np.asarray(centroids)[None]) ** 2).sum(axis=2).min(axis=1)
        total = d2.sum()
        idx = rng.integers(arr.shape[0]) if total <= 0 else rng.choice(arr.shape[0], p=d2 / total)
        centroids.append(arr[idx])
    return np.asarray(centroids, dtype=np.float64)


class KMeansDetector:
    """k-means (k = 3) on the training vectors; the score is the Euclidean distance
    to the nearest centroid.  Seeded k-means++ and 10 restarts (see :func:`kmeans`)."""

    def __init__(self, k: int = 3, *, seed: int = 0) -> None:
        self.k = k
        self.seed = seed
        self.centroids_: FloatArray = np.zeros((0, 0))

    def fit(self, train: FloatArray) -> KMeansDetector:
        self.centroids_ = kmeans(train, self.k, seed=self.seed)
        return self

    def score(self, test: FloatArray) -> FloatArray:
        x = _check_test(test, self.centroids_.shape[1])
        d2 = ((x[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2)
        return np.asarray(np.sqrt(d2.min(axis=1)), dtype=np.float64)


CLASSIC_DETECTORS: Final[dict[str, Callable[[], Detector]]] = {
    "euclidean": EuclideanDetector,
    "manhattan": ManhattanDetector,
    "scaled-manhattan": ScaledManhattanDetector,
    "mahalanobis": MahalanobisDetector,
    "nn-mahalanobis": NearestNeighbourMahalanobisDetector,
    "outlier-count": OutlierCountDetector,
    "kmeans": KMeansDetector,
}
"""Name → factory of each classic detector (the names used on the command line)."""
